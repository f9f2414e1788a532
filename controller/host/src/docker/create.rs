//! Creating and starting containers the controller owns (the DCGM exporter), and making sure
//! their image is present.

use std::collections::{BTreeMap, HashMap};

use bollard::{
    models::{
        ContainerCreateBody, DeviceRequest, EndpointSettings, HostConfig, HostConfigLogConfig,
        NetworkConnectRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    },
    query_parameters::{CreateContainerOptionsBuilder, CreateImageOptionsBuilder},
};
use futures::StreamExt;

use super::{DockerClient, DockerError};

/// GPUs for a new container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewGpus {
    /// No GPU.
    None,
    /// `--gpus all`.
    All,
    /// These device ids or UUIDs.
    Devices(Vec<String>),
}

/// What to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewContainer {
    /// Name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// Command (arguments) override.
    pub command: Option<Vec<String>>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Publish container port on host address and port: (host ip, host port, container port).
    pub publish: Option<(String, u16, u16)>,
    /// Capabilities added.
    pub cap_add: Vec<String>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a core.
    pub nano_cpus: Option<i64>,
    /// GPUs.
    pub gpus: NewGpus,
    /// Bind mounts `host:container[:ro]`.
    pub binds: Vec<String>,
    /// Seconds Docker waits after SIGTERM on `docker stop`.
    pub stop_timeout: Option<i64>,
    /// Networks to join, each with its aliases: the first at create (its network mode), the
    /// others before the first start (Docker before API 1.44 takes one network at create).
    pub networks: Vec<(String, Vec<String>)>,
    /// json-file log rotation: (max-size in bytes, max-file).
    pub log_rotation: Option<(u64, u32)>,
}

fn endpoint(aliases: &[String]) -> EndpointSettings {
    EndpointSettings {
        aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
        ..EndpointSettings::default()
    }
}

impl DockerClient {
    /// Creates a container with restart policy `no` (its owner restarts it); returns its id.
    ///
    /// # Errors
    /// When Docker refuses (e.g. the name is taken or the image is missing).
    pub async fn create(&self, new: &NewContainer) -> Result<String, DockerError> {
        let port_key = new
            .publish
            .as_ref()
            .map(|(_, _, container_port)| format!("{container_port}/tcp"));
        let port_bindings = new
            .publish
            .as_ref()
            .map(|(host_ip, host_port, container_port)| {
                HashMap::from([(
                    format!("{container_port}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some(host_ip.clone()),
                        host_port: Some(host_port.to_string()),
                    }]),
                )])
            });
        let device_requests = match &new.gpus {
            NewGpus::None => None,
            NewGpus::All => Some(vec![DeviceRequest {
                driver: Some(String::new()),
                count: Some(-1),
                device_ids: None,
                capabilities: Some(vec![vec!["gpu".to_owned()]]),
                options: None,
            }]),
            NewGpus::Devices(ids) => Some(vec![DeviceRequest {
                driver: Some(String::new()),
                count: None,
                device_ids: Some(ids.clone()),
                capabilities: Some(vec![vec!["gpu".to_owned()]]),
                options: None,
            }]),
        };
        let first_network = new.networks.first();
        let body = ContainerCreateBody {
            networking_config: first_network.map(|(name, aliases)| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(name.clone(), endpoint(aliases))])),
            }),
            image: Some(new.image.clone()),
            entrypoint: new.entrypoint.clone(),
            cmd: new.command.clone(),
            env: Some(new.env.clone()),
            labels: Some(new.labels.clone().into_iter().collect()),
            exposed_ports: port_key.map(|key| vec![key]),
            stop_timeout: new.stop_timeout,
            host_config: Some(HostConfig {
                port_bindings,
                cap_add: Some(new.cap_add.clone()),
                memory: new.memory_bytes,
                nano_cpus: new.nano_cpus,
                device_requests,
                binds: Some(new.binds.clone()),
                network_mode: first_network.map(|(name, _)| name.clone()),
                log_config: new
                    .log_rotation
                    .map(|(max_size, max_file)| HostConfigLogConfig {
                        typ: Some("json-file".to_owned()),
                        config: Some(HashMap::from([
                            ("max-size".to_owned(), max_size.to_string()),
                            ("max-file".to_owned(), max_file.to_string()),
                        ])),
                    }),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&new.name).build();
        let created = self
            .raw()?
            .create_container(Some(options), body)
            .await
            .map_err(super::request_error(format!("create {}", new.name)))?;
        for (name, aliases) in new.networks.iter().skip(1) {
            let request = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint(aliases)),
            };
            let connected =
                self.raw()?
                    .connect_network(name, request)
                    .await
                    .map_err(super::request_error(format!(
                        "connect {} to network {name}",
                        new.name
                    )));
            if let Err(error) = connected {
                // Half made is not made: nothing is left behind under the name.
                // Never started: nothing runs that a forced removal could hurt.
                let never_started = super::RemoveOptions {
                    force: true,
                    volumes: true,
                };
                let _ = self.remove(&created.id, never_started).await;
                return Err(error);
            }
        }
        Ok(created.id)
    }

    /// Whether a network with this name (or id) exists.
    ///
    /// # Errors
    /// When Docker fails for another reason than "no such network".
    pub async fn network_exists(&self, name: &str) -> Result<bool, DockerError> {
        match self
            .raw()?
            .inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(source) => Err(DockerError::Request {
                operation: format!("inspect network {name}"),
                source,
            }),
        }
    }

    /// Starts a container (starting a running one is success).
    ///
    /// # Errors
    /// When Docker refuses.
    pub async fn start(&self, id: &str) -> Result<(), DockerError> {
        self.raw()?
            .start_container(id, None)
            .await
            .map_err(super::request_error(format!("start {id}")))
    }

    /// Whether the image is present locally.
    ///
    /// # Errors
    /// When Docker fails for another reason than "no such image".
    pub async fn image_present(&self, image: &str) -> Result<bool, DockerError> {
        match self.raw()?.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(source) => Err(DockerError::Request {
                operation: format!("inspect image {image}"),
                source,
            }),
        }
    }

    /// Pulls an image.
    ///
    /// # Errors
    /// When the registry cannot be reached or refuses.
    pub async fn pull(&self, image: &str) -> Result<(), DockerError> {
        let options = CreateImageOptionsBuilder::new().from_image(image).build();
        let mut progress = self.raw()?.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            step.map_err(super::request_error(format!("pull {image}")))?;
        }
        Ok(())
    }
}

impl DockerClient {
    /// Runs a command inside a running container without waiting for it (detached exec).
    ///
    /// # Errors
    /// When Docker refuses (e.g. the container is not running).
    pub async fn exec_detached(&self, id: &str, command: Vec<String>) -> Result<(), DockerError> {
        let docker = self.raw()?;
        let options = bollard::models::ExecConfig {
            cmd: Some(command),
            ..bollard::models::ExecConfig::default()
        };
        let exec = docker
            .create_exec(id, options)
            .await
            .map_err(super::request_error(format!("exec in {id}")))?;
        let start = bollard::exec::StartExecOptions {
            detach: true,
            ..bollard::exec::StartExecOptions::default()
        };
        docker
            .start_exec(&exec.id, Some(start))
            .await
            .map_err(super::request_error(format!("exec in {id}")))?;
        Ok(())
    }
}
