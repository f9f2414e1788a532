//! The metrics endpoint: `GET /metrics` on `--metrics-addr` (TCP, read-only).

use std::{net::SocketAddr, sync::Arc};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use tokio_util::sync::CancellationToken;

use super::{Metrics, Sources};

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

struct Endpoint {
    metrics: Arc<Metrics>,
    sources: Sources,
}

async fn scrape(State(endpoint): State<Arc<Endpoint>>) -> impl IntoResponse {
    endpoint.metrics.refresh(&endpoint.sources).await;
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        endpoint.metrics.encode(),
    )
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
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(%address, "metrics endpoint listening");
    let endpoint = Arc::new(Endpoint { metrics, sources });
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(endpoint);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
