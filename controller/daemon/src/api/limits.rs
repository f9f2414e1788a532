//! `GET /v1/limits?user=U&type=T&at=RFC3339&policy=NAME`: the lifecycle limits that apply to a
//! user's containers of one type under the applied policy, with each value's source. Read-only;
//! anyone may ask. Built by `ds01_spec::limits_view`, the same code `ds01ctl limits -f` runs
//! offline, so both give the same answer for the same specs.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use ds01_spec::{
    ContainerLifecyclePolicySpec, Kind, SpecBody,
    limits_view::{
        DEFAULT_CONTAINER_TYPE, LimitsView, PolicyChoiceError, choose_policy, limits_view,
    },
    names::read_members_files,
};
use serde::Deserialize;

use super::{ApiState, routes::Failure};

/// Query parameters.
#[derive(Debug, Default, Deserialize)]
pub struct LimitsQuery {
    /// The user (required).
    user: Option<String>,
    /// Container type; the lab tools' type when absent.
    #[serde(rename = "type")]
    container_type: Option<String>,
    /// Resolve as of this time (exemptions); now when absent.
    at: Option<String>,
    /// The policy to ask when several are applied.
    policy: Option<String>,
}

fn bad_request(message: impl Into<String>) -> Failure {
    Failure::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// The handler.
pub(super) async fn limits(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<LimitsQuery>, QueryRejection>,
) -> Result<Json<LimitsView>, Failure> {
    let Query(query) = query.map_err(|rejection| bad_request(rejection.body_text()))?;
    let user = query
        .user
        .filter(|user| !user.trim().is_empty())
        .ok_or_else(|| bad_request("`user` is required"))?;
    let at = match query.at.as_deref() {
        None => jiff::Timestamp::now(),
        Some(text) => text
            .parse()
            .map_err(|error| bad_request(format!("`at` must be an RFC 3339 time ({error})")))?,
    };
    let policies: Vec<(String, ContainerLifecyclePolicySpec)> = state
        .store
        .lock()
        .await
        .all()
        .filter(|stored| stored.resource.kind() == Kind::ContainerLifecyclePolicy)
        .filter_map(|stored| match &stored.resource.spec {
            SpecBody::ContainerLifecyclePolicy(spec) => {
                Some((stored.resource.metadata.name.clone(), (**spec).clone()))
            }
            _ => None,
        })
        .collect();
    let (_, spec) = choose_policy(
        policies.iter().map(|(name, spec)| (name.as_str(), spec)),
        query.policy.as_deref(),
    )
    .map_err(|error| {
        let status = match error {
            PolicyChoiceError::Ambiguous { .. } => StatusCode::BAD_REQUEST,
            PolicyChoiceError::NoPolicy | PolicyChoiceError::NotFound { .. } => {
                StatusCode::NOT_FOUND
            }
        };
        Failure::new(status, "no_policy", error.to_string())
    })?;
    let spec = spec.clone();
    let container_type = query
        .container_type
        .unwrap_or_else(|| DEFAULT_CONTAINER_TYPE.to_owned());
    let view = tokio::task::spawn_blocking(move || {
        let (members, _unreadable) = read_members_files(&spec);
        limits_view(&spec, &user, &container_type, at, &members)
    })
    .await
    .map_err(|error| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        )
    })?;
    Ok(Json(view))
}
