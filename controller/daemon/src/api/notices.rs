//! `GET /v1/notices[?all=true]` and `POST /v1/notices/seen` (`ds01ctl notices`): the calling
//! user's kept notices — whoever the peer credentials say they are, never anyone else's.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, RawQuery, State, rejection::BytesRejection},
    http::StatusCode,
};
use ds01_spec::api::{NoticeList, NoticesSeenRequest, NoticesSeenResponse};

use super::{
    ApiState, Peer,
    failure::{Failure, body_bytes},
};

/// Whether `all=true` was asked for; anything else is refused.
fn wants_all(query: Option<&str>) -> Result<bool, Failure> {
    let mut all = false;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("all", "true" | "1" | "") => all = true,
            ("all", "false" | "0") => all = false,
            (key, value) => {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("unknown query parameter `{key}={value}` (known: all=true)"),
                ));
            }
        }
    }
    Ok(all)
}

/// A peer without credentials has no notices of its own.
fn caller(peer: &Peer) -> Result<&str, Failure> {
    if peer.uid.is_none() {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the controller cannot tell who you are (no peer credentials)",
        ));
    }
    Ok(&peer.name)
}

/// `GET /v1/notices`.
pub async fn list(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    RawQuery(query): RawQuery,
) -> Result<Json<NoticeList>, Failure> {
    let all = wants_all(query.as_deref())?;
    let user = caller(&peer)?.to_owned();
    let notices = state.lifecycle_context.notices.list(&user, all);
    Ok(Json(NoticeList { user, notices }))
}

/// `POST /v1/notices/seen`.
pub async fn seen(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<NoticesSeenResponse>, Failure> {
    let body = body_bytes(body)?;
    let request: NoticesSeenRequest = serde_json::from_slice(&body).map_err(|error| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not {{\"upTo\": ID}}: {error}"),
        )
    })?;
    let user = caller(&peer)?.to_owned();
    let store = state.lifecycle_context.notices.clone();
    let marked = tokio::task::spawn_blocking(move || store.mark_seen(&user, request.up_to))
        .await
        .map_err(|error| {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                error.to_string(),
            )
        })?
        .map_err(|error| {
            Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot_record",
                format!("the state file cannot be written: {error}"),
            )
        })?;
    Ok(Json(NoticesSeenResponse { marked }))
}
