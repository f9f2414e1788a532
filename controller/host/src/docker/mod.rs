//! Docker through bollard: connect, list, inspect, watch events, stop, remove — returning
//! domain types only.

mod convert;
mod events;

use std::collections::HashMap;

use bollard::{
    Docker,
    query_parameters::{
        ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    },
};

pub use convert::container_info;
pub use events::{ContainerEvent, container_events};

use crate::ContainerInfo;

/// Errors talking to Docker.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine could not be reached or configured.
    #[error("cannot connect to the Docker engine at {host}")]
    Connect {
        /// The host tried.
        host: String,
        /// Cause.
        #[source]
        source: bollard::errors::Error,
    },
    /// The event stream ended (the engine went away).
    #[error("the Docker event stream ended")]
    StreamEnded,
    /// A request failed.
    #[error("docker {operation} failed")]
    Request {
        /// What was attempted (`list`, `inspect abc123`, …).
        operation: String,
        /// Cause.
        #[source]
        source: bollard::errors::Error,
    },
}

impl DockerError {
    /// Whether Docker answered 404 (no such container): success for idempotent removals.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            DockerError::Request {
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                },
                ..
            }
        )
    }
}

fn request_error(
    operation: impl Into<String>,
) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let operation = operation.into();
    move |source| DockerError::Request { operation, source }
}

/// A container as `docker ps -a` lists it: enough to tell whether an inspect is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Full id.
    pub id: String,
    /// Docker's state word.
    pub state: String,
    /// Docker's status text (`Up 3 minutes`, `Exited (0) …`); changes with every restart.
    pub status: String,
}

/// A connected engine.
#[derive(Clone, Debug)]
pub struct DockerClient {
    docker: Docker,
    host: String,
}

impl DockerClient {
    /// Connects to `host` (`unix:///path`, or `None` for `DOCKER_HOST`/the local socket).
    /// Connecting does not contact the engine; [`DockerClient::ping`] does.
    ///
    /// # Errors
    /// When the host string is unusable.
    pub fn connect(host: Option<&str>) -> Result<Self, DockerError> {
        let described = host.map_or_else(
            || {
                std::env::var("DOCKER_HOST")
                    .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned())
            },
            str::to_owned,
        );
        let connect_error = |source| DockerError::Connect {
            host: described.clone(),
            source,
        };
        let docker = match host {
            Some(path) if path.starts_with("unix://") || path.starts_with('/') => {
                Docker::connect_with_unix(
                    path.trim_start_matches("unix://"),
                    120,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(connect_error)?
            }
            Some(other) => Docker::connect_with_http(other, 120, bollard::API_DEFAULT_VERSION)
                .map_err(connect_error)?,
            None => Docker::connect_with_local_defaults().map_err(connect_error)?,
        };
        Ok(DockerClient {
            docker,
            host: described,
        })
    }

    /// The engine address, for messages.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The underlying bollard client.
    #[must_use]
    pub fn raw(&self) -> &Docker {
        &self.docker
    }

    /// Checks the engine answers and negotiates the API version.
    ///
    /// # Errors
    /// When it does not answer.
    pub async fn ping(&mut self) -> Result<(), DockerError> {
        self.docker.ping().await.map_err(request_error("ping"))?;
        if let Ok(negotiated) = self.docker.clone().negotiate_version().await {
            self.docker = negotiated;
        }
        Ok(())
    }

    /// Every container, running or not.
    ///
    /// # Errors
    /// When the engine fails the request.
    pub async fn list(&self) -> Result<Vec<ContainerSummary>, DockerError> {
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&HashMap::<String, Vec<String>>::new())
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(request_error("list"))?;
        Ok(containers
            .into_iter()
            .filter_map(|container| {
                Some(ContainerSummary {
                    id: container.id?,
                    state: container
                        .state
                        .map(|state| state.to_string())
                        .unwrap_or_default(),
                    status: container.status.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Inspects one container; `Ok(None)` when it no longer exists.
    ///
    /// # Errors
    /// When the engine fails the request for another reason.
    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, DockerError> {
        match self.docker.inspect_container(id, None).await {
            Ok(response) => Ok(container_info(response)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(source) => Err(DockerError::Request {
                operation: format!("inspect {id}"),
                source,
            }),
        }
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace`. Stopping a stopped container is
    /// success; a missing one is reported as not found.
    ///
    /// # Errors
    /// When the engine fails the request.
    pub async fn stop(&self, id: &str, grace: std::time::Duration) -> Result<(), DockerError> {
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        // A stop waits for the grace period: give the HTTP call room beyond it.
        let docker = self
            .docker
            .clone()
            .with_timeout(grace + std::time::Duration::from_secs(60));
        docker
            .stop_container(id, Some(options))
            .await
            .map_err(request_error(format!("stop {id}")))
    }

    /// Removes a container (forcefully, with its anonymous volumes).
    ///
    /// # Errors
    /// When the engine fails the request (404 included: check [`DockerError::is_not_found`]).
    pub async fn remove(&self, id: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        self.docker
            .remove_container(id, Some(options))
            .await
            .map_err(request_error(format!("remove {id}")))
    }
}
