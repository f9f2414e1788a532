//! Connecting to the Docker engine the tests run against, failing loudly when there is none.

use bollard::Docker;

/// Connects to the engine (honours `DOCKER_HOST`) and checks it answers.
///
/// # Panics
/// With a message saying how to start one, when no engine answers: Docker tests must never
/// pass silently without Docker.
pub async fn engine() -> Docker {
    let where_ =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
    let docker = match Docker::connect_with_local_defaults() {
        Ok(docker) => docker,
        Err(error) => panic!(
            "no Docker engine reachable at {where_}: {error}. Start one with `bash .ci/docker-up` (these tests need a real engine)"
        ),
    };
    if let Err(error) = docker.ping().await {
        panic!(
            "no Docker engine reachable at {where_}: {error}. Start one with `bash .ci/docker-up` (these tests need a real engine)"
        );
    }
    docker
}
