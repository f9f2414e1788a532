//! The per-resource controllers. Each is a pure planner plus an executor.

pub mod dcgm;
pub mod engine;
pub mod lifecycle;
pub mod orphans;
pub mod own;
pub mod start;
pub mod status;
pub mod triggers;

/// A client for the engine, connecting first when it has never answered (the engine may have
/// been down when the controller started).
///
/// # Errors
/// When the engine does not answer.
pub async fn connected(
    docker: &tokio::sync::Mutex<ds01_host::docker::DockerClient>,
) -> Result<ds01_host::docker::DockerClient, ds01_host::docker::DockerError> {
    let mut docker = docker.lock().await;
    if docker.raw().is_err() {
        docker.ping().await?;
    }
    Ok(docker.clone())
}
