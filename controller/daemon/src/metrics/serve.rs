//! The metrics endpoint: `GET /metrics` on `--metrics-addr` (TCP, read-only), in the format the
//! scraper asks for, behind a connection cap and the control API's header and idle timeouts, so
//! that no number of idle connections can take the daemon's file descriptors.

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

use super::{Metrics, Sources, exposition::Format};
use crate::connections::{self, Slots};

/// Connections open at once, from every client together; more are answered 503 and closed.
/// Prometheus uses one per target; the rest is room for people with curl.
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
    let slots = Slots::<()>::new(MAX_CONNECTIONS);
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
        let Some(slot) = slots.take(()) else {
            tracing::debug!(%peer, "metrics connection refused: {MAX_CONNECTIONS} open");
            // Answered here, not in a task: refusals never hold descriptors of their own.
            connections::refuse(
                stream,
                "too_many_connections",
                &format!("the metrics endpoint already holds {MAX_CONNECTIONS} connections"),
            )
            .await;
            continue;
        };
        let router = router.clone();
        let service = service_fn(move |request| {
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                })
            }
        });
        let connection = graceful
            .watch(connections::http1_builder().serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(error) = connection.await {
                tracing::debug!(%error, "metrics connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}
