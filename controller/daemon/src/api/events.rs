//! `GET /v1/events?type=PREFIX&user=U&since=RFC3339&follow=true`: the events kept in memory
//! since the controller started, then (with `follow`) new ones as they happen, one JSON object
//! per line. A non-admin sees only events about themselves and controller-wide ones.

use std::{convert::Infallible, sync::Arc};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Query, State},
    http::header,
    response::{IntoResponse, Response},
};
use ds01_host::event_log::Event;
use futures::StreamExt;
use serde::Deserialize;

use super::{ApiState, Peer};

/// Query parameters.
#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    /// Event type prefix (`lifecycle.`, `gpu.orphan`).
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Only events about this user.
    user: Option<String>,
    /// Only events at or after this time.
    since: Option<jiff::Timestamp>,
    /// Keep the response open and stream new events.
    #[serde(default)]
    follow: bool,
}

struct Filter {
    query: EventQuery,
    /// Set for non-admins: they see their own events and controller-wide ones.
    restrict_to: Option<String>,
}

impl Filter {
    fn matches(&self, event: &Event) -> bool {
        let type_ok = self
            .query
            .kind
            .as_deref()
            .is_none_or(|prefix| event.event_type.starts_with(prefix));
        let user_ok = self
            .query
            .user
            .as_deref()
            .is_none_or(|user| event.user.as_deref() == Some(user));
        let visible = self
            .restrict_to
            .as_deref()
            .is_none_or(|me| event.user.as_deref().is_none_or(|user| user == me));
        let since_ok = self.query.since.is_none_or(|since| {
            event
                .timestamp
                .parse::<jiff::Timestamp>()
                .is_ok_and(|at| at >= since)
        });
        type_ok && user_ok && visible && since_ok
    }
}

fn line(event: &Event) -> Bytes {
    Bytes::from(event.to_line())
}

/// The handler.
pub async fn events(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Query(query): Query<EventQuery>,
) -> Response {
    let restrict_to = (!state.admin.is_admin(&peer)).then(|| {
        peer.uid
            .map_or_else(|| "?".to_owned(), ds01_host::users::user_name)
    });
    let follow = query.follow;
    let filter = Arc::new(Filter { query, restrict_to });
    // Subscribe before reading the backlog so nothing falls between the two.
    let live = state.recorder.follow();
    let backlog: Vec<Bytes> = state
        .recorder
        .recent()
        .iter()
        .filter(|event| filter.matches(event))
        .map(line)
        .collect();
    let backlog = futures::stream::iter(backlog.into_iter().map(Ok::<_, Infallible>));
    let body = if follow {
        let live_filter = filter.clone();
        let live = tokio_stream_from(live).filter_map(move |event| {
            let keep = live_filter
                .matches(&event)
                .then(|| Ok::<_, Infallible>(line(&event)));
            async move { keep }
        });
        // The stream ends when the controller stops, so shutdown need not wait for followers.
        let stopping = state.shutdown.clone().cancelled_owned();
        Body::from_stream(backlog.chain(live).take_until(stopping))
    } else {
        Body::from_stream(backlog)
    };
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

/// A broadcast receiver as a stream; lagging followers skip what they missed.
fn tokio_stream_from(
    receiver: tokio::sync::broadcast::Receiver<Event>,
) -> impl futures::Stream<Item = Event> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
