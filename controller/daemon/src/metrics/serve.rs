//! The metrics endpoint: `GET /metrics` on `--metrics-addr` (TCP, read-only), in the format the
//! scraper asks for, behind a connection cap where idle connections give way to new ones
//! (`admission`), the control API's header timeout and write-stall limit, and one request per
//! connection, so that no number of idle connections can take the daemon's file descriptors or
//! keep a scraper out.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use hyper::service::service_fn;
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{Metrics, Sources, admission::Admission, exposition::Format};
use crate::{
    connections,
    write_stall::{WRITE_STALL_TIMEOUT, WriteStallGuard},
};

/// Connections open at once, from every client together. Past it, the oldest connection that
/// has not sent its request is closed for the newcomer; when all are being answered the
/// newcomer gets a 503. Prometheus uses one per target; the rest is room for people with curl.
pub const MAX_CONNECTIONS: usize = 32;
/// A scrape must be answered within this time (it waits for the spec store's lock).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for scrapes in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

struct Endpoint {
    metrics: Arc<Metrics>,
    sources: Sources,
}

async fn scrape(State(endpoint): State<Arc<Endpoint>>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    let refreshed = tokio::time::timeout(
        RESPONSE_TIMEOUT,
        endpoint.metrics.refresh(&endpoint.sources),
    )
    .await;
    if refreshed.is_err() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the controller's state did not become readable in time\n",
        )
            .into_response();
    }
    let text = endpoint.metrics.encode();
    (
        [(header::CONTENT_TYPE, format.content_type())],
        format.render(text),
    )
        .into_response()
}

/// Serves until `shutdown`.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    sources: Sources,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(address).await?;
    tracing::info!(%address, "metrics endpoint listening");
    let endpoint = Arc::new(Endpoint { metrics, sources });
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(endpoint);
    let graceful = GracefulShutdown::new();
    let admission = Admission::new(MAX_CONNECTIONS);
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(ticket) = admission.admit() else {
            tracing::debug!(%peer, "metrics connection refused: {MAX_CONNECTIONS} being answered");
            // Answered here, not in a task: refusals never hold descriptors of their own.
            connections::refuse(
                stream,
                "too_many_connections",
                &format!("the metrics endpoint is answering {MAX_CONNECTIONS} requests already"),
            )
            .await;
            continue;
        };
        let router = router.clone();
        let ticket = Arc::new(ticket);
        let evicted = ticket.evicted.clone();
        let asking = ticket.clone();
        let service = service_fn(move |request| {
            asking.asked();
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                })
            }
        });
        // One request per connection: a connection is held only while a request is on its way
        // in (then it may give way) or being answered.
        let mut builder = connections::http1_builder();
        builder.keep_alive(false);
        let connection = graceful.watch(builder.serve_connection(
            TokioIo::new(WriteStallGuard::new(stream, WRITE_STALL_TIMEOUT)),
            service,
        ));
        tokio::spawn(async move {
            let _ticket = ticket;
            tokio::select! {
                served = connection => if let Err(error) = served {
                    tracing::debug!(%error, "metrics connection ended with an error");
                },
                () = evicted.cancelled() => {
                    tracing::debug!(%peer, "idle metrics connection closed for a newer one");
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}
