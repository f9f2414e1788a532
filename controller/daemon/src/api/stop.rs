//! `POST /v1/containers/{name-or-id}/stop` (`ds01ctl stop`): admins only; the reason is
//! checked, the container looked up, and the stop handed to the lifecycle controller
//! (`controllers/lifecycle/manual.rs`), which carries it out in the background. 202 once
//! issued; refusals are 409 with a code saying why, 503 when it could not be recorded.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Path, State, rejection::BytesRejection},
    http::StatusCode,
};
use ds01_spec::api::{MAX_STOP_REASON_CHARS, StopRequest, StopResponse};

use super::{
    ApiState, Peer,
    failure::{Failure, body_bytes, forbidden_to},
};
use crate::controllers::lifecycle::manual::{self, ManualStopError};

/// Bidirectional-text controls: they could make a notice read differently from what it says.
fn is_bidi_control(character: char) -> bool {
    matches!(character, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// The reason, trimmed, or why it is refused.
fn checked_reason(reason: &str) -> Result<&str, Failure> {
    let bad = |message: String| Failure::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(bad(
            "a reason is required (--reason TEXT): the owner reads it".to_owned(),
        ));
    }
    if reason.chars().count() > MAX_STOP_REASON_CHARS {
        return Err(bad(format!(
            "the reason may be at most {MAX_STOP_REASON_CHARS} characters"
        )));
    }
    if reason
        .chars()
        .any(|character| character.is_control() || is_bidi_control(character))
    {
        return Err(bad(
            "the reason may not contain control characters or bidirectional-text controls"
                .to_owned(),
        ));
    }
    Ok(reason)
}

fn refused(error: &ManualStopError) -> Failure {
    let (status, code) = match error {
        ManualStopError::NotRunning { .. } => (StatusCode::CONFLICT, "not_running"),
        ManualStopError::Own(_) => (StatusCode::CONFLICT, "own_container"),
        ManualStopError::Protected { .. } => (StatusCode::CONFLICT, "protected"),
        ManualStopError::InProgress(_) => (StatusCode::CONFLICT, "in_progress"),
        ManualStopError::EventLogUnwritable(_) | ManualStopError::StateFileUnwritable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "cannot_record")
        }
    };
    Failure::new(status, code, error.to_string())
}

/// `POST /v1/containers/{name-or-id}/stop`.
pub async fn stop_container(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(wanted): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<StopResponse>), Failure> {
    if !peer.admin {
        return Err(forbidden_to(&peer, &state.admin, "stop containers"));
    }
    let body = body_bytes(body)?;
    let request: StopRequest = serde_json::from_slice(&body).map_err(|error| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not a stop request: {error}"),
        )
    })?;
    let reason = checked_reason(&request.reason)?;
    let record = {
        let inventory = state
            .inventory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        super::lookup::container(&inventory, &wanted)?
    };
    let accepted = manual::stop(
        &state.lifecycle_context,
        record.clone(),
        manual::Request {
            admin: &peer.name,
            reason,
            force: request.force,
        },
    )
    .await
    .map_err(|error| refused(&error))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(StopResponse {
            container: record.info.name.clone(),
            id: record.info.short_id().to_owned(),
            user: record.user.clone(),
            grace: accepted.grace.to_string(),
            grace_source: accepted.grace_source,
            dry_run: accepted.dry_run,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_required_bounded_and_free_of_control_characters() {
        assert_eq!(checked_reason("  maintenance \n").ok(), Some("maintenance"));
        for bad in [
            "   ".to_owned(),
            "x".repeat(MAX_STOP_REASON_CHARS + 1),
            "ok\u{1b}[2J".to_owned(),
            "evil\u{202e}txt".to_owned(),
            "two\nlines".to_owned(),
        ] {
            assert!(checked_reason(&bad).is_err(), "{bad:?} accepted");
        }
        assert!(checked_reason(&"é".repeat(MAX_STOP_REASON_CHARS)).is_ok());
    }
}
