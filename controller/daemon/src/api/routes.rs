//! The `/v1` routes: which handler answers which path, the fallback, the body limit.

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::StatusCode,
    routing::{delete, get, post},
};
use ds01_spec::api::MAX_REQUEST_BYTES;

use super::{failure::Failure, state::ApiState};

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
