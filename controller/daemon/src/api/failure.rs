//! How a `/v1` request fails: one JSON error shape ([`ErrorBody`]) with an HTTP status, a code
//! and a sentence — also for bodies that are too large and for callers who may only read.

use axum::{
    Json,
    body::Bytes,
    extract::rejection::BytesRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use ds01_spec::{
    Diagnostic,
    api::{ApiError, ErrorBody, MAX_NON_ADMIN_REQUEST_BYTES, MAX_REQUEST_BYTES},
};

use super::{AdminPolicy, Peer};

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

/// The body, or the failure that explains why there is none.
pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Failure> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body is too large: at most {MAX_REQUEST_BYTES} bytes from an \
                     admin, {MAX_NON_ADMIN_REQUEST_BYTES} from anyone else"
                ),
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
