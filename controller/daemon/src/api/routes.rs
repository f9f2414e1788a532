//! The `/v1` routes: status, specs, apply, delete. Every error is an [`ErrorBody`].

use ds01_spec::EventType;
use std::sync::{Arc, PoisonError};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, DefaultBodyLimit, Path, State, rejection::BytesRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use ds01_spec::{
    Kind, Source,
    api::{ApiError, ApplyRequest, ApplyResponse, ApplyResult, ErrorBody, MAX_REQUEST_BYTES},
};
use serde_json::{Value, json};

use super::{AdminPolicy, Peer};
use crate::{
    inventory::SharedInventory,
    recorder::Recorder,
    spec_store::{ApplyOutcome, SpecStore, SpecStoreError},
};

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
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

/// The router.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/specs", get(list_specs))
        .route("/v1/apply", post(apply))
        .route("/v1/specs/{kind}/{name}", delete(delete_spec))
        .route("/v1/events", get(super::events::events))
        .route("/v1/containers", get(super::views::containers))
        .route("/v1/containers/{container}", get(super::views::container))
        .route("/v1/gpus", get(super::views::gpus))
        .route("/v1/processes", get(super::views::processes))
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

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Failure> {
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

fn forbidden(peer: &Peer, admin: &AdminPolicy) -> Failure {
    let who = peer.uid.map_or_else(
        || "an unknown user".to_owned(),
        |uid| format!("user {} (uid {uid})", ds01_host::users::user_name(uid)),
    );
    Failure::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "{who} may not change specs: only root and members of group `{}` may",
            admin.group
        ),
    )
}

async fn apply(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ApplyResponse>, Failure> {
    let body = body_bytes(body)?;
    let request: ApplyRequest = serde_json::from_slice(&body).map_err(|error| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not an apply request: {error}"),
        )
    })?;
    if !request.dry_run && !state.admin.is_admin(&peer) {
        return Err(forbidden(&peer, &state.admin));
    }
    let sources: Vec<Source> = request
        .files
        .into_iter()
        .map(|file| Source {
            name: file.name,
            text: file.text,
        })
        .collect();
    let mut store = state.store.lock().await;
    let invalid = |error: SpecStoreError| match error {
        SpecStoreError::Invalid(diagnostics) => {
            let mut failure = Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_specs",
                format!(
                    "{} problem(s) in the submitted specs; nothing was applied",
                    diagnostics.0.len()
                ),
            );
            failure.1.diagnostics = diagnostics.0;
            failure
        }
        other => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            crate::inventory::docker_watch::error_chain(&other),
        ),
    };
    let mut to_preview = Vec::new();
    let outcomes: Vec<(String, ApplyOutcome)> = if request.dry_run {
        let planned = store.plan(&sources).map_err(invalid)?;
        for (item, _) in &planned {
            if let ds01_spec::SpecBody::ContainerLifecyclePolicy(spec) = &item.resource.spec {
                to_preview.push((
                    item.resource.reference(),
                    item.resource.metadata.name.clone(),
                    spec.clone(),
                ));
            }
        }
        planned
            .into_iter()
            .map(|(item, outcome)| (item.resource.reference(), outcome))
            .collect()
    } else {
        store
            .apply(&sources, jiff::Timestamp::now())
            .map_err(invalid)?
    };
    let mut results = Vec::new();
    for (reference, outcome) in outcomes {
        let current = reference
            .split_once('/')
            .and_then(|(kind, name)| store.get(kind.parse().ok()?, name))
            .map_or(0, |spec| spec.generation);
        let generation = if request.dry_run && outcome != ApplyOutcome::Unchanged {
            current + 1
        } else {
            current
        };
        if !request.dry_run && outcome != ApplyOutcome::Unchanged {
            if let Some((kind, name)) = reference
                .split_once('/')
                .and_then(|(kind, name)| Some((kind.parse::<Kind>().ok()?, name)))
            {
                (state.notify)(kind, name);
            }
            let user = peer.uid.map(ds01_host::users::user_name);
            state.recorder.emit(
                EventType::SpecApplied,
                user.as_deref(),
                json!({ "resource": reference, "outcome": outcome, "generation": generation }),
            );
        }
        let outcome = serde_json::to_value(outcome)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        results.push(ApplyResult {
            resource: reference,
            outcome,
            generation,
        });
    }
    drop(store);
    let mut preview = Vec::new();
    let admin = state.admin.is_admin(&peer);
    for (reference, name, spec) in to_preview {
        preview.extend(preview_policy(&state, &reference, &name, &spec, admin).await);
    }
    Ok(Json(ApplyResponse {
        results,
        dry_run: request.dry_run,
        preview,
    }))
}

/// What a lifecycle policy would do now. Only an admin's preview reads the members files the
/// spec names; anyone else's reads no server file.
async fn preview_policy(
    state: &ApiState,
    reference: &str,
    name: &str,
    spec: &ds01_spec::ContainerLifecyclePolicySpec,
    admin: bool,
) -> Vec<ds01_spec::api::PreviewAction> {
    use crate::controllers::lifecycle::{members, preview};
    let membership = if admin {
        members::MembersFiles::default().read(spec).await
    } else {
        members::Membership {
            problems: spec
                .groups
                .values()
                .filter_map(|group| group.members_file.as_ref())
                .map(|path| format!("membersFile {path} not read: previews by users who are not admins read no server files"))
                .collect(),
            ..members::Membership::default()
        }
    };
    let inventory = state
        .inventory
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    preview::preview(
        reference,
        name,
        spec,
        &inventory,
        &state.lifecycle_preview,
        &membership,
        jiff::Timestamp::now(),
    )
}

async fn delete_spec(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Json<Value>, Failure> {
    if !state.admin.is_admin(&peer) {
        return Err(forbidden(&peer, &state.admin));
    }
    let kind: Kind = kind
        .parse()
        .map_err(|message: String| Failure::new(StatusCode::BAD_REQUEST, "bad_request", message))?;
    let deleted = state
        .store
        .lock()
        .await
        .delete(kind, &name)
        .map_err(|error| {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                crate::inventory::docker_watch::error_chain(&error),
            )
        })?;
    let reference = format!("{}/{name}", kind.lowercase());
    if !deleted {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{reference} is not applied"),
        ));
    }
    let user = peer.uid.map(ds01_host::users::user_name);
    state.recorder.emit(
        EventType::SpecDeleted,
        user.as_deref(),
        json!({ "resource": reference }),
    );
    Ok(Json(json!({ "resource": reference, "deleted": true })))
}

async fn list_specs(State(state): State<Arc<ApiState>>) -> Json<Value> {
    let store = state.store.lock().await;
    let specs: Vec<Value> = store
        .all()
        .map(|spec| {
            json!({
                "kind": spec.resource.kind().as_str(),
                "name": spec.resource.metadata.name,
                "generation": spec.generation,
                "appliedAt": format!("{:.3}", spec.applied_at),
                "document": spec.written,
                "resolved": spec.resource.to_json(),
            })
        })
        .collect();
    Json(json!({ "specs": specs }))
}

async fn status(State(state): State<Arc<ApiState>>) -> Json<Value> {
    let resources: Vec<Value> = {
        let store = state.store.lock().await;
        store
            .all()
            .map(|spec| {
                let kind = spec.resource.kind();
                let name = &spec.resource.metadata.name;
                match state.board.get(kind, name) {
                    Some(reported) => json!({
                        "kind": kind.as_str(),
                        "name": name,
                        "generation": spec.generation,
                        "observedGeneration": reported.observed_generation,
                        "conditions": reported.conditions,
                        "details": reported.details,
                    }),
                    None => json!({
                        "kind": kind.as_str(),
                        "name": name,
                        "generation": spec.generation,
                        "observedGeneration": null,
                        "conditions": [{
                            "type": "Ready",
                            "status": "Unknown",
                            "reason": "AwaitingController",
                            "message": "applied; no controller has reconciled it yet",
                            "lastTransitionTime": format!("{:.3}", spec.applied_at),
                        }],
                    }),
                }
            })
            .collect()
    };
    let inventory = state
        .inventory
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let now = jiff::Timestamp::now();
    let containers = inventory.containers.values();
    let running = inventory
        .containers
        .values()
        .filter(|record| record.info.state.is_live())
        .count();
    let with_gpu = inventory
        .containers
        .values()
        .filter(|record| record.info.gpu.has_gpu)
        .count();
    Json(json!({
        "controller": {
            "version": env!("CARGO_PKG_VERSION"),
            "startedAt": format!("{:.3}", state.started),
            "uptimeSeconds": now.duration_since(state.started).as_secs(),
            "docker": inventory.docker,
            "gpu": inventory.gpu,
            "eventLogError": state.recorder.last_error(),
            "conditions": state.board.controller_conditions(),
        },
        "resources": resources,
        "counts": {
            "containers": containers.count(),
            "running": running,
            "withGpu": with_gpu,
            "gpus": inventory.gpus.gpus.len(),
            "hostGpuProcesses": inventory.host_processes.len(),
        },
    }))
}
