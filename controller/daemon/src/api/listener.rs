//! Accepts control-API connections: the peer's credentials per connection (resolved to a name
//! and admin status once, on a blocking thread), a header-read timeout (a stalled client
//! cannot hold a connection), a response timeout, a cap on the connections one user may hold
//! open, a cap on the request-body memory a user's requests may hold, and a shutdown that lets
//! in-flight requests finish.

use std::{convert::Infallible, time::Duration};

use axum::{
    Router,
    extract::ConnectInfo,
    http::{Request, StatusCode},
    response::{IntoResponse, Response},
};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

use super::{
    AdminPolicy, Peer,
    auth::Credentials,
    budget::{BodyBudget, MAX_BODY_BYTES_PER_USER},
    failure::Failure,
};
use crate::{
    connections::{self, Slots},
    write_stall::{WRITE_STALL_TIMEOUT, WriteStallGuard},
};

/// A request (body included) must be answered within this time; streamed bodies
/// (`events --follow`) are not limited once their headers are out.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections one user (uid) may hold open at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS_PER_USER: usize = 128;
/// How long shutdown waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn credentials_of(stream: &UnixStream) -> Credentials {
    let credentials = stream.peer_cred().ok();
    Credentials {
        uid: credentials.map(|c| c.uid()),
        gid: credentials.map(|c| c.gid()),
        pid: credentials.and_then(|c| c.pid()),
    }
}

/// The peer's name and admin status, looked up on a blocking thread (NSS may be slow).
async fn resolve(admin: AdminPolicy, credentials: Credentials) -> Peer {
    tokio::task::spawn_blocking(move || admin.resolve(credentials))
        .await
        .unwrap_or_else(|_| AdminPolicy::unresolved(credentials))
}

/// The body bytes a request is charged (at most `cap`): its declared length, or `cap` when
/// the length is not declared but a body may follow; `Err` with the declared length when it is
/// over `cap`.
fn charged_body(request: &Request<Incoming>, cap: usize) -> Result<usize, u64> {
    let headers = request.headers();
    match headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
    {
        Some(length) => match usize::try_from(length) {
            Ok(length) if length <= cap => Ok(length),
            _ => Err(length),
        },
        None if headers.contains_key(hyper::header::TRANSFER_ENCODING) => Ok(cap),
        None => Ok(0),
    }
}

/// Answers a connection over its user's cap with a JSON 503 and closes it.
async fn refuse(stream: UnixStream) {
    let message =
        format!("this user already holds {MAX_CONNECTIONS_PER_USER} connections to the controller");
    connections::refuse(stream, "too_many_connections", &message).await;
}

/// The router's answer, or a JSON 503 when it takes longer than [`RESPONSE_TIMEOUT`] or the
/// user's requests already hold too much body memory.
async fn respond(
    router: Router,
    peer: Peer,
    budget: BodyBudget,
    request: Request<Incoming>,
) -> Response {
    // Admins may submit large spec sets; anyone else only dry-runs small ones.
    let cap = if peer.admin {
        ds01_spec::api::MAX_REQUEST_BYTES
    } else {
        ds01_spec::api::MAX_NON_ADMIN_REQUEST_BYTES
    };
    let charged = match charged_body(&request, cap) {
        Ok(charged) => charged,
        Err(declared) => {
            return Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "this request declares {declared} bytes; requests by {} may be at most {cap} bytes",
                    peer.name
                ),
            )
            .into_response();
        }
    };
    let Some(_reservation) = budget.reserve(peer.uid, charged) else {
        tracing::warn!(uid = ?peer.uid, "control API request refused: too much body memory in flight");
        return Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_much_in_flight",
            format!(
                "this user's requests in flight already hold close to {} MiB of request bodies; \
                 retry when they are answered",
                MAX_BODY_BYTES_PER_USER >> 20
            ),
        )
        .into_response();
    };
    let span = tracing::debug_span!(
        "api_request",
        method = %request.method(),
        path = %request.uri().path(),
        uid = ?peer.uid,
        gid = ?peer.gid,
        pid = ?peer.pid,
        user = %peer.name,
        admin = peer.admin,
    );
    // A body without a declared length is cut off at the same cap.
    let mut request =
        request.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, cap)));
    request.extensions_mut().insert(ConnectInfo(peer));
    let answered = tokio::time::timeout(RESPONSE_TIMEOUT, router.oneshot(request))
        .instrument(span)
        .await;
    match answered {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the controller did not answer within {} s",
                RESPONSE_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    }
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn accept_loop(
    listener: UnixListener,
    router: Router,
    admin: AdminPolicy,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    // Per uid (`None`: credentials unreadable).
    let slots = Slots::<Option<u32>>::new(MAX_CONNECTIONS_PER_USER);
    let budget = BodyBudget::default();
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "control API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let credentials = credentials_of(&stream);
        let Some(slot) = slots.take(credentials.uid) else {
            tracing::warn!(uid = ?credentials.uid, pid = ?credentials.pid, "control API connection refused: too many open");
            tokio::spawn(refuse(stream));
            continue;
        };
        let router = router.clone();
        let admin = admin.clone();
        let budget = budget.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            // Looked up in this connection's own task: a slow directory service delays this
            // connection only, never the accept loop.
            let peer = resolve(admin, credentials).await;
            let service = service_fn(move |request| {
                let router = router.clone();
                let peer = peer.clone();
                let budget = budget.clone();
                async move { Ok::<_, Infallible>(respond(router, peer, budget, request).await) }
            });
            let connection = connections::http1_builder().serve_connection(
                TokioIo::new(WriteStallGuard::new(stream, WRITE_STALL_TIMEOUT)),
                service,
            );
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, "control API connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("control API connections still open at shutdown; dropping them");
    }
}
