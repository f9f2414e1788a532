//! Accepts control-API connections: the peer's credentials per connection, a header-read
//! timeout (a stalled client cannot hold a connection), a response timeout, a cap on the
//! connections one user may hold open, and a shutdown that lets in-flight requests finish.

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

use super::{Peer, routes::Failure};
use crate::connections::{self, Slots};

/// A request (body included) must be answered within this time; streamed bodies
/// (`events --follow`) are not limited once their headers are out.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections one user (uid) may hold open at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS_PER_USER: usize = 128;
/// How long shutdown waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn peer_of(stream: &UnixStream) -> Peer {
    let credentials = stream.peer_cred().ok();
    Peer {
        uid: credentials.map(|c| c.uid()),
        gid: credentials.map(|c| c.gid()),
        pid: credentials.and_then(|c| c.pid()),
    }
}

/// Answers a connection over its user's cap with a JSON 503 and closes it.
async fn refuse(stream: UnixStream) {
    let message =
        format!("this user already holds {MAX_CONNECTIONS_PER_USER} connections to the controller");
    connections::refuse(stream, "too_many_connections", &message).await;
}

/// The router's answer, or a JSON 503 when it takes longer than [`RESPONSE_TIMEOUT`].
async fn respond(router: Router, peer: Peer, mut request: Request<Incoming>) -> Response {
    request.extensions_mut().insert(ConnectInfo(peer));
    match tokio::time::timeout(RESPONSE_TIMEOUT, router.oneshot(request)).await {
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
pub async fn accept_loop(listener: UnixListener, router: Router, shutdown: CancellationToken) {
    let graceful = GracefulShutdown::new();
    // Per uid (`None`: credentials unreadable).
    let slots = Slots::<Option<u32>>::new(MAX_CONNECTIONS_PER_USER);
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
        let peer = peer_of(&stream);
        let Some(slot) = slots.take(peer.uid) else {
            tracing::warn!(uid = ?peer.uid, pid = ?peer.pid, "control API connection refused: too many open");
            tokio::spawn(refuse(stream));
            continue;
        };
        let router = router.clone();
        let service = service_fn(move |request| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(respond(router, peer, request).await) }
        });
        let connection =
            connections::http1_builder().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(error) = connection.await {
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
