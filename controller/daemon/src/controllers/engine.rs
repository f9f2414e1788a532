//! The container-engine calls the controllers make, as a trait (static dispatch): Docker in
//! production, a recording fake in tests, so executors get fast tests without an engine.

use std::{future::Future, sync::Arc, time::Duration};

use ds01_host::{
    ContainerInfo,
    docker::{DockerClient, DockerError, RemoveOptions},
};

/// What the lifecycle controller asks of the engine.
pub trait ContainerEngine: Clone + Send + Sync + 'static {
    /// The container as the engine sees it now; `None` when it no longer exists.
    fn inspect(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ContainerInfo>, DockerError>> + Send;

    /// SIGTERM, `grace`, SIGKILL.
    fn stop(
        &self,
        id: &str,
        grace: Duration,
    ) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Removes a container.
    fn remove(
        &self,
        id: &str,
        options: RemoveOptions,
    ) -> impl Future<Output = Result<(), DockerError>> + Send;
}

/// Docker, connected at first use (the engine may have been down when the controller started).
#[derive(Clone, Debug)]
pub struct Docker(Arc<tokio::sync::Mutex<DockerClient>>);

impl Docker {
    /// An engine for this (not yet contacted) client.
    #[must_use]
    pub fn new(client: DockerClient) -> Self {
        Docker(Arc::new(tokio::sync::Mutex::new(client)))
    }

    /// A client that has answered once.
    ///
    /// # Errors
    /// When the engine does not answer.
    pub async fn client(&self) -> Result<DockerClient, DockerError> {
        super::connected(&self.0).await
    }
}

impl ContainerEngine for Docker {
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, DockerError> {
        self.client().await?.inspect(id).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), DockerError> {
        self.client().await?.stop(id, grace).await
    }

    async fn remove(&self, id: &str, options: RemoveOptions) -> Result<(), DockerError> {
        self.client().await?.remove(id, options).await
    }
}

#[cfg(test)]
pub mod fake {
    //! A recording engine: answers inspects from a table and records every call.

    use std::{
        collections::HashMap,
        sync::{Arc, Mutex, PoisonError},
    };

    use super::{ContainerEngine, ContainerInfo, DockerError, Duration, RemoveOptions};

    /// One call made.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Call {
        /// `inspect(id)`.
        Inspect(String),
        /// `stop(id, grace)`.
        Stop(String, Duration),
        /// `remove(id, options)`.
        Remove(String, RemoveOptions),
    }

    /// The fake.
    #[derive(Clone, Debug, Default)]
    pub struct Recording {
        /// What `inspect` answers, by id (absent: no such container).
        pub containers: Arc<Mutex<HashMap<String, ContainerInfo>>>,
        /// Calls in order.
        pub calls: Arc<Mutex<Vec<Call>>>,
    }

    impl Recording {
        /// Every call so far.
        #[must_use]
        pub fn calls(&self) -> Vec<Call> {
            self.calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }

        fn record(&self, call: Call) {
            self.calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(call);
        }
    }

    impl ContainerEngine for Recording {
        async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, DockerError> {
            self.record(Call::Inspect(id.to_owned()));
            Ok(self
                .containers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(id)
                .cloned())
        }

        async fn stop(&self, id: &str, grace: Duration) -> Result<(), DockerError> {
            self.record(Call::Stop(id.to_owned(), grace));
            Ok(())
        }

        async fn remove(&self, id: &str, options: RemoveOptions) -> Result<(), DockerError> {
            self.record(Call::Remove(id.to_owned(), options));
            self.containers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id);
            Ok(())
        }
    }
}
