//! Docker through bollard: connect, list, inspect, watch events, stop, remove — returning
//! domain types only.

mod convert;
mod create;
mod events;

use std::collections::HashMap;

use bollard::{
    Docker,
    query_parameters::{
        ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    },
};

pub use convert::container_info;
pub use create::{NewContainer, NewGpus};
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
    /// No successful ping yet.
    #[error("not connected to the Docker engine at {host}")]
    NotConnected {
        /// The host.
        host: String,
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

/// How a container is removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Kill it first if it runs (otherwise Docker refuses a running container).
    pub force: bool,
    /// Remove its anonymous volumes too.
    pub volumes: bool,
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

/// An engine address and, once it answered, a client for it.
#[derive(Clone, Debug)]
pub struct DockerClient {
    docker: Option<Docker>,
    target: Target,
    host: String,
}

#[derive(Clone, Debug)]
enum Target {
    Unix(String),
    Http(String),
    LocalDefaults,
}

impl DockerClient {
    /// Prepares a client for `host` (`unix:///path`, `tcp://…`, or `None` for
    /// `DOCKER_HOST`/the local socket). Nothing is contacted yet: an engine that is down now is
    /// a condition [`DockerClient::ping`] reports, not a configuration error.
    ///
    /// # Errors
    /// When the host string has a scheme we cannot use.
    pub fn connect(host: Option<&str>) -> Result<Self, DockerError> {
        let described = host.map_or_else(
            || {
                std::env::var("DOCKER_HOST")
                    .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned())
            },
            str::to_owned,
        );
        let target = match host {
            Some(path) if path.starts_with("unix://") || path.starts_with('/') => {
                Target::Unix(path.trim_start_matches("unix://").to_owned())
            }
            Some(other) if other.starts_with("tcp://") || other.starts_with("http://") => {
                Target::Http(other.to_owned())
            }
            Some(other) => {
                return Err(DockerError::Connect {
                    host: other.to_owned(),
                    source: bollard::errors::Error::UnsupportedURISchemeError {
                        uri: other.to_owned(),
                    },
                });
            }
            None => Target::LocalDefaults,
        };
        Ok(DockerClient {
            docker: None,
            target,
            host: described,
        })
    }

    /// The engine address, for messages.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The underlying bollard client.
    ///
    /// # Errors
    /// Before the engine first answered a ping.
    pub fn raw(&self) -> Result<&Docker, DockerError> {
        self.docker
            .as_ref()
            .ok_or_else(|| DockerError::NotConnected {
                host: self.host.clone(),
            })
    }

    /// (Re)connects, checks the engine answers and negotiates the API version.
    ///
    /// # Errors
    /// When it does not answer.
    pub async fn ping(&mut self) -> Result<(), DockerError> {
        let connect_error = |source| DockerError::Connect {
            host: self.host.clone(),
            source,
        };
        let docker = match &self.target {
            Target::Unix(path) => {
                Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
                    .map_err(connect_error)?
            }
            Target::Http(address) => {
                Docker::connect_with_http(address, 120, bollard::API_DEFAULT_VERSION)
                    .map_err(connect_error)?
            }
            Target::LocalDefaults => {
                Docker::connect_with_local_defaults().map_err(connect_error)?
            }
        };
        docker.ping().await.map_err(request_error("ping"))?;
        self.docker = Some(docker.clone().negotiate_version().await.unwrap_or(docker));
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
            .raw()?
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
        match self.raw()?.inspect_container(id, None).await {
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
            .raw()?
            .clone()
            .with_timeout(grace + std::time::Duration::from_secs(60));
        docker
            .stop_container(id, Some(options))
            .await
            .map_err(request_error(format!("stop {id}")))
    }

    /// Removes a container. Without `force` Docker refuses a running one; without `volumes`
    /// its anonymous volumes are kept.
    ///
    /// # Errors
    /// When the engine fails the request (404 included: check [`DockerError::is_not_found`]).
    pub async fn remove(&self, id: &str, options: RemoveOptions) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(options.force)
            .v(options.volumes)
            .build();
        self.raw()?
            .remove_container(id, Some(options))
            .await
            .map_err(request_error(format!("remove {id}")))
    }
}
