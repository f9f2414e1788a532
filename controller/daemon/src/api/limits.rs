//! `GET /v1/limits?user=U&type=T&at=RFC3339&policy=NAME`: the lifecycle limits that apply to a
//! user's containers of one type under the applied policy, with each value's source. Read-only;
//! anyone may ask. Built by `ds01_spec::limits_view`, the same code `ds01ctl limits -f` runs
//! offline, so both give the same answer for the same specs. Members files are read the way the
//! lifecycle controller reads them (regular files of at most 1 MiB, off the async workers, within
//! 5 s); one that cannot be read leaves its group with its inline members.

use std::{collections::HashMap, sync::Arc};

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
};
use serde::Deserialize;

use super::{ApiState, failure::Failure};
use crate::controllers::lifecycle::members::read_members;

/// The longest all members files of the policy may take to read.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
    let files: Vec<(String, String)> = spec
        .groups
        .iter()
        .filter_map(|(group, block)| Some((group.clone(), block.members_file.clone()?)))
        .collect();
    let reading = tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .filter_map(|(group, path)| Some((group, read_members(&path).ok()?)))
            .collect::<HashMap<String, Vec<String>>>()
    });
    let members = match tokio::time::timeout(READ_TIMEOUT, reading).await {
        Ok(Ok(members)) => members,
        _ => HashMap::new(),
    };
    Ok(Json(limits_view(
        &spec,
        &user,
        &container_type,
        at,
        &members,
    )))
}
