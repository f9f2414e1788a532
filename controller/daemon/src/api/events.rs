//! `GET /v1/events?type=&user=&container=&since=&until=&limit=&follow=` and
//! `GET /v1/events/summary?…`: the event history on disk (see `history`), then with `follow`
//! new events as they happen, one JSON object per line. A non-admin sees only events about
//! themselves. The newest `limit` are sent; how many were left out is in the
//! `x-ds01-events-omitted` header.

use std::{convert::Infallible, sync::Arc, task::Poll, time::Instant};

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{ConnectInfo, Query, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use ds01_host::event_log::Event;
use ds01_spec::api::{EventEnvelope, EventQuery, EventSummary, INCOMPLETE_HEADER, OMITTED_HEADER};
use futures::StreamExt;

use super::{
    ApiState, Peer,
    failure::Failure,
    gate::Pass,
    history::{self, History, Selection, Source},
};

/// How long a request waits for a free history reader.
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn query_of(query: Result<Query<EventQuery>, QueryRejection>) -> Result<EventQuery, Failure> {
    query.map(|Query(query)| query).map_err(|rejection| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            rejection.body_text(),
        )
    })
}

/// Reads the history for `peer` on a blocking thread; the pass admits the answer too, until
/// its backlog is handed over.
async fn read_history(
    state: &ApiState,
    peer: &Peer,
    selection: Selection,
) -> Result<(History, Pass), Failure> {
    let Some(pass) = history::READS.enter(peer.uid, SLOT_WAIT).await else {
        return Err(Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "the event history is being read for this user already, or {} reads are running; retry shortly",
                history::READS.permits()
            ),
        ));
    };
    let source = match state.recorder.log_path() {
        Some(path) => Source::Log(path.to_owned()),
        None => Source::Memory(
            state
                .recorder
                .recent()
                .iter()
                .map(|event| event.to_line().trim_end().to_owned())
                .collect(),
        ),
    };
    let deadline = Instant::now() + history::READ_DEADLINE;
    // The pass goes with the read: a client that hangs up does not end the read, so it must
    // not free the user's place either (or one user could run any number of reads).
    let read = tokio::task::spawn_blocking(move || {
        let history = history::read(&source, &selection, deadline);
        (history, pass)
    })
    .await;
    read.map_err(|_| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the event history reader failed",
        )
    })
}

fn selection(peer: &Peer, query: EventQuery) -> Selection {
    Selection {
        query,
        only_user: peer.viewer().map(str::to_owned),
    }
}

/// `GET /v1/events`.
pub async fn events(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Response {
    let query = match query_of(query) {
        Ok(query) => query,
        Err(failure) => return failure.into_response(),
    };
    let follow = query.follow;
    let selection = selection(&peer, query);
    // Subscribed before the history is read, so nothing falls between the two.
    let live = follow.then(|| state.recorder.follow());
    let (history, pass) = match read_history(&state, &peer, selection.clone()).await {
        Ok(read) => read,
        Err(failure) => return failure.into_response(),
    };
    let History {
        lines,
        omitted,
        summary,
        recent,
    } = history;
    // The user's next history read may start once this backlog is handed over (or the
    // connection is gone), not only when a follow stream ends.
    let mut pass = Some(pass);
    let handed_over = futures::stream::poll_fn(move |_| {
        pass.take();
        Poll::Ready(None::<Result<Bytes, Infallible>>)
    });
    let backlog = futures::stream::iter(
        lines
            .into_iter()
            .map(|line| Ok::<_, Infallible>(Bytes::from(line + "\n"))),
    )
    .chain(handed_over);
    let body = match live {
        Some(live) => {
            let live = stream_of(live).filter_map(move |event| {
                let line = event.to_line();
                let envelope = EventEnvelope {
                    timestamp: event.timestamp,
                    event_type: event.event_type,
                    schema_version: event.schema_version,
                    user: event.user,
                    source: event.source,
                    details: event.details,
                };
                let keep = (selection.matches(&envelope) && !recent.contains(line.trim_end()))
                    .then(|| Ok::<_, Infallible>(Bytes::from(line)));
                async move { keep }
            });
            // The stream ends when the controller stops, so shutdown need not wait for followers.
            let stopping = state.shutdown.clone().cancelled_owned();
            Body::from_stream(backlog.chain(live).take_until(stopping))
        }
        None => Body::from_stream(backlog),
    };
    let mut response = ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    if omitted > 0 {
        response
            .headers_mut()
            .insert(OMITTED_HEADER, HeaderValue::from(omitted));
    }
    if let Some(reason) = summary
        .incomplete
        .as_deref()
        .and_then(|reason| HeaderValue::from_str(reason).ok())
    {
        response.headers_mut().insert(INCOMPLETE_HEADER, reason);
    }
    response
}

/// `GET /v1/events/summary`: counts per type and per user of the matching events.
pub async fn summary(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Json<EventSummary>, Failure> {
    let mut query = query_of(query)?;
    query.limit = Some(1);
    query.follow = false;
    let (history, _pass) = read_history(&state, &peer, selection(&peer, query)).await?;
    Ok(Json(history.summary))
}

/// A broadcast receiver as a stream; lagging followers skip what they missed.
fn stream_of(
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
