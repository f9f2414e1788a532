//! A test's private set of Docker resources: everything it creates carries
//! `ds01.test=<scope id>`, and dropping the scope removes all of it, pass or fail.

use std::collections::HashMap;

use bollard::{
    Docker,
    models::{ContainerCreateBody, DeviceRequest, HostConfig},
    query_parameters::{
        CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    },
};

use crate::{TEST_LABEL, TESTBOX_IMAGE, engine, ensure_testbox};

/// What container to create; defaults to a running `sleep` in the test image.
#[derive(Clone, Debug)]
pub struct ContainerRequest {
    /// Name suffix; the full name is `ds01t-<scope>-<suffix>`.
    pub name: String,
    /// Command; defaults to `sleep 3600`.
    pub command: Vec<String>,
    /// Labels besides the test label.
    pub labels: HashMap<String, String>,
    /// `KEY=value` environment entries.
    pub env: Vec<String>,
    /// Bind mounts `host:container[:ro]`.
    pub binds: Vec<String>,
    /// GPU device requests (creatable without an NVIDIA runtime, not startable).
    pub device_requests: Vec<DeviceRequest>,
    /// Start it after creating it.
    pub start: bool,
    /// Image (default: the test image).
    pub image: Option<String>,
    /// `--runtime`.
    pub runtime: Option<String>,
    /// `--user` (a uid), so the kernel vouches for an owner.
    pub user: Option<String>,
    /// `--cgroup-parent`.
    pub cgroup_parent: Option<String>,
}

impl ContainerRequest {
    /// A running `sleep` container with this name suffix.
    #[must_use]
    pub fn sleeper(name: &str) -> Self {
        ContainerRequest {
            name: name.to_owned(),
            command: ["sleep", "3600"].map(str::to_owned).to_vec(),
            labels: HashMap::new(),
            env: Vec::new(),
            binds: Vec::new(),
            device_requests: Vec::new(),
            start: true,
            image: None,
            runtime: None,
            user: None,
            cgroup_parent: None,
        }
    }

    /// Runs it as `uid` (its group too), so the kernel vouches for its owner.
    #[must_use]
    pub fn run_as(mut self, uid: u32) -> Self {
        self.user = Some(format!("{uid}:{uid}"));
        self
    }

    /// Adds a `KEY=value` environment entry.
    #[must_use]
    pub fn env(mut self, entry: &str) -> Self {
        self.env.push(entry.to_owned());
        self
    }

    /// Adds a GPU device request as `--gpus` makes it: a count (-1 for all) or device ids.
    #[must_use]
    pub fn gpus(mut self, count: i64, device_ids: &[&str]) -> Self {
        self.device_requests.push(DeviceRequest {
            driver: Some(String::new()),
            count: Some(count),
            device_ids: (!device_ids.is_empty())
                .then(|| device_ids.iter().map(|id| (*id).to_owned()).collect()),
            capabilities: Some(vec![vec!["gpu".to_owned()]]),
            options: None,
        });
        self
    }

    /// Uses another image.
    #[must_use]
    pub fn image(mut self, image: &str) -> Self {
        self.image = Some(image.to_owned());
        self
    }

    /// Adds a label.
    #[must_use]
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Replaces the command (run through `sh -c`).
    #[must_use]
    pub fn shell(mut self, script: &str) -> Self {
        self.command = vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        self
    }

    /// Creates the container without starting it.
    #[must_use]
    pub fn created_only(mut self) -> Self {
        self.start = false;
        self
    }
}

/// The resources of one test.
pub struct TestScope {
    /// Unique id; the value of the test label on everything this scope creates.
    pub id: String,
    /// The engine.
    pub docker: Docker,
}

impl TestScope {
    /// Connects to the engine, makes sure the test image exists, and names a fresh scope.
    pub async fn new(test_name: &str) -> Self {
        Self::on(engine().await, test_name).await
    }

    /// A scope on a given engine (a private daemon, say).
    pub async fn on(docker: Docker, test_name: &str) -> Self {
        ensure_testbox(&docker).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let id = format!(
            "{}-{}-{nanos:x}",
            test_name.replace('_', "-"),
            std::process::id()
        );
        TestScope { id, docker }
    }

    /// Full container name for a suffix.
    #[must_use]
    pub fn name(&self, suffix: &str) -> String {
        format!("ds01t-{}-{suffix}", self.id)
    }

    /// Whether Docker reports the container (id or name) running; `None` when it is gone.
    pub async fn running(&self, container: &str) -> Option<bool> {
        let inspected = self.docker.inspect_container(container, None).await.ok()?;
        Some(
            inspected
                .state
                .and_then(|state| state.running)
                .unwrap_or(false),
        )
    }

    /// Creates (and by default starts) a labelled container; returns its id.
    ///
    /// # Panics
    /// When Docker refuses.
    pub async fn container(&self, request: ContainerRequest) -> String {
        let mut labels = request.labels.clone();
        labels.insert(TEST_LABEL.to_owned(), self.id.clone());
        let body = ContainerCreateBody {
            image: Some(
                request
                    .image
                    .clone()
                    .unwrap_or_else(|| TESTBOX_IMAGE.to_owned()),
            ),
            cmd: Some(request.command.clone()),
            env: Some(request.env.clone()),
            labels: Some(labels),
            user: request.user.clone(),
            host_config: Some(HostConfig {
                binds: Some(request.binds.clone()),
                device_requests: (!request.device_requests.is_empty())
                    .then(|| request.device_requests.clone()),
                init: Some(false),
                runtime: request.runtime.clone(),
                cgroup_parent: request.cgroup_parent.clone(),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let name = self.name(&request.name);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .unwrap_or_else(|error| panic!("creating {name} failed: {error}"));
        if request.start {
            self.docker
                .start_container(&created.id, None)
                .await
                .unwrap_or_else(|error| panic!("starting {name} failed: {error}"));
        }
        created.id
    }

    /// Ids of the containers of this scope that still exist.
    pub async fn remaining(&self) -> Vec<String> {
        list_labelled(&self.docker, &self.id).await
    }
}

async fn list_labelled(docker: &Docker, scope: &str) -> Vec<String> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{TEST_LABEL}={scope}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .map(|containers| containers.into_iter().filter_map(|c| c.id).collect())
        .unwrap_or_default()
}

/// Removes every container of a scope, forcefully.
pub async fn remove_scope(docker: &Docker, scope: &str) {
    for id in list_labelled(docker, scope).await {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        // Already gone is fine: the test may have removed it itself.
        let _ = docker.remove_container(&id, Some(options)).await;
    }
}

impl Drop for TestScope {
    fn drop(&mut self) {
        let scope = self.id.clone();
        // Drop cannot await, and the test's runtime may be shutting down: clean up from a
        // fresh runtime on its own thread with its own connection.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(docker) = Docker::connect_with_local_defaults() {
                    remove_scope(&docker, &scope).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
