//! The `/v1` routes and what they share: the state, the error shape ([`ErrorBody`]), the
//! body limit.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, rejection::BytesRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use ds01_spec::{
    Diagnostic, Kind,
    api::{ApiError, ErrorBody, MAX_REQUEST_BYTES},
};

use super::{AdminPolicy, Peer};
use crate::{inventory::SharedInventory, recorder::Recorder, spec_store::SpecStore};

/// Called with the kind and name of a spec that was applied or deleted.
pub type SpecChanged = Arc<dyn Fn(Kind, &str) + Send + Sync>;

/// What the handlers share.
pub struct ApiState {
    /// Applied specs.
    pub store: Arc<tokio::sync::Mutex<SpecStore>>,
    /// What the controllers report.
    pub board: crate::controllers::status::StatusBoard,
    /// Tells the controllers a spec changed.
    pub notify: SpecChanged,
    /// Lifecycle facts per container.
    pub lifecycle: crate::controllers::lifecycle::view::LifecycleViews,
    /// What lifecycle previews read.
    pub lifecycle_preview: crate::controllers::lifecycle::preview::PreviewSources,
    /// The lifecycle controller: manual stops and the notices kept for users.
    pub lifecycle_context: Arc<
        crate::controllers::lifecycle::executor::LifecycleContext<
            crate::controllers::engine::Docker,
        >,
    >,
    /// What the controller observes.
    pub inventory: SharedInventory,
    /// Event sink.
    pub recorder: Arc<Recorder>,
    /// Start time.
    pub started: jiff::Timestamp,
    /// Who may change things.
    pub admin: AdminPolicy,
    /// Cancelled when the controller stops: ends `events --follow` streams.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// A failed request.
#[derive(Debug)]
pub(super) struct Failure(StatusCode, ApiError);

impl Failure {
    pub(super) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Failure(
            status,
            ApiError {
                code: code.to_owned(),
                message: message.into(),
                diagnostics: Vec::new(),
            },
        )
    }

    /// 422 `invalid_specs` with every problem; nothing was applied.
    pub(super) fn invalid(diagnostics: Vec<Diagnostic>) -> Self {
        let mut failure = Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_specs",
            format!(
                "{} problem(s) in the submitted specs; nothing was applied",
                diagnostics.len()
            ),
        );
        failure.1.diagnostics = diagnostics;
        failure
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

/// The router.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/status", get(super::status::status))
        .route("/v1/specs", get(super::apply::list_specs))
        .route("/v1/apply", post(super::apply::apply))
        .route("/v1/specs/{kind}/{name}", delete(super::apply::delete_spec))
        .route("/v1/events", get(super::events::events))
        .route("/v1/events/summary", get(super::events::summary))
        .route("/v1/containers", get(super::views::containers))
        .route("/v1/containers/{container}", get(super::views::container))
        .route(
            "/v1/containers/{container}/stop",
            post(super::stop::stop_container),
        )
        .route("/v1/notices", get(super::notices::list))
        .route("/v1/notices/seen", post(super::notices::seen))
        .route("/v1/gpus", get(super::views::gpus))
        .route("/v1/processes", get(super::views::processes))
        .route("/v1/limits", get(super::limits::limits))
        .fallback(|| async {
            Failure::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such API path (this controller serves /v1)",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

/// The body, or the failure that explains why there is none.
pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Failure> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("requests may be at most {MAX_REQUEST_BYTES} bytes"),
            )
        } else {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                rejection.body_text(),
            )
        }
    })
}

/// 403 for a change by someone who may only read.
pub(super) fn forbidden(peer: &Peer, admin: &AdminPolicy) -> Failure {
    forbidden_to(peer, admin, "change specs")
}

/// 403: `peer` may not do `what` (`stop containers`).
pub(super) fn forbidden_to(peer: &Peer, admin: &AdminPolicy, what: &str) -> Failure {
    let who = peer.uid.map_or_else(
        || "an unknown user".to_owned(),
        |uid| format!("user {} (uid {uid})", peer.name),
    );
    Failure::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "{who} may not {what}: only root and members of group `{}` may",
            admin.group
        ),
    )
}
