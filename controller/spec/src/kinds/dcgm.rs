//! `DcgmExporter`: "the DCGM exporter must run" — the container the controller owns and how it
//! judges and restarts it.

use std::{collections::BTreeMap, net::IpAddr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ByteSize, Duration, GpuSelection, Volume, validate::Report};

/// The image used when a spec names none: the version the lab validated against its driver.
pub const DEFAULT_DCGM_IMAGE: &str = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.0-3.2.0-ubuntu22.04";

/// The collectors file set in the environment unless `env` names another: the DCP set, which
/// carries `DCGM_FI_PROF_GR_ENGINE_ACTIVE` (the MIG idle signal).
pub const DEFAULT_COLLECTORS: (&str, &str) = (
    "DCGM_EXPORTER_COLLECTORS",
    "/etc/dcgm-exporter/dcp-metrics-included.csv",
);

/// The environment variable that moves dcgm-exporter's listen address (`[host]:port`).
pub const LISTEN_ENV: &str = "DCGM_EXPORTER_LISTEN";

/// The port dcgm-exporter listens on unless `DCGM_EXPORTER_LISTEN` says otherwise.
pub const DEFAULT_LISTEN_PORT: u16 = 9400;

/// A Docker network the exporter joins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkAttachment {
    /// Name of an existing Docker network (e.g. the monitoring stack's `ds01-monitoring`).
    pub name: String,
    /// Names other containers on the network reach the exporter by (e.g. `dcgm-exporter`).
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// When to pull the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    /// Pull only when the image is not present locally.
    #[default]
    IfNotPresent,
    /// Never pull; the image must be present.
    Never,
}

/// Desired state of the DCGM exporter container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DcgmExporterSpec {
    /// Name of the container the controller owns.
    pub container_name: String,
    /// Image reference.
    pub image: String,
    /// When to pull the image.
    pub pull_policy: PullPolicy,
    /// Entrypoint override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Arguments override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Extra labels on the container (the controller's own labels always win).
    pub labels: BTreeMap<String, String>,
    /// Host port published on `bindAddress`, onto the port the exporter listens on (9400, or
    /// the port of `env.DCGM_EXPORTER_LISTEN`); the health probe uses it.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Host address the port is published on.
    pub bind_address: IpAddr,
    /// GPUs given to the container.
    pub gpus: GpuSelection,
    /// Linux capabilities added.
    pub cap_add: Vec<String>,
    /// Memory limit.
    pub memory_limit: ByteSize,
    /// CPU limit in cores.
    pub cpu_limit: f64,
    /// Bind mounts (`/host:/container[:ro]`).
    pub volumes: Vec<Volume>,
    /// How health is judged.
    pub health: HealthSpec,
    /// How restarts are paced.
    pub restart: RestartSpec,
    /// Grace between SIGTERM and SIGKILL when stopping.
    pub stop_timeout: Duration,
    /// With no GPU on the host, report `NoGpus` instead of running the exporter.
    pub require_gpus: bool,
    /// Docker networks to join (the first at create, the rest before start); a change recreates.
    pub networks: Vec<NetworkAttachment>,
    /// Largest json-file log before Docker rotates it.
    pub log_max_size: ByteSize,
    /// Rotated json-file logs kept.
    #[schemars(range(min = 1))]
    pub log_max_files: u32,
    /// Take over a same-named container the controller did not create: stop it (`stopTimeout`),
    /// remove it, create ours. Without it such a container is a `NameConflict`.
    pub replace_existing: bool,
}

impl Default for DcgmExporterSpec {
    fn default() -> Self {
        DcgmExporterSpec {
            container_name: "ds01-dcgm-exporter".to_owned(),
            image: DEFAULT_DCGM_IMAGE.to_owned(),
            pull_policy: PullPolicy::IfNotPresent,
            command: None,
            args: None,
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            port: 9400,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            gpus: GpuSelection::All,
            cap_add: vec!["SYS_ADMIN".to_owned()],
            memory_limit: ByteSize(512 << 20),
            cpu_limit: 0.25,
            volumes: Vec::new(),
            health: HealthSpec::default(),
            restart: RestartSpec::default(),
            stop_timeout: Duration::from_secs(30),
            require_gpus: true,
            networks: Vec::new(),
            log_max_size: ByteSize(10 << 20),
            log_max_files: 5,
            replace_existing: false,
        }
    }
}

/// Deep health check of the exporter's HTTP endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HealthSpec {
    /// Path probed over HTTP.
    pub path: String,
    /// Time between probes.
    pub interval: Duration,
    /// Time a probe may take.
    pub timeout: Duration,
    /// Consecutive failures before the exporter is restarted.
    #[schemars(range(min = 1))]
    pub failure_threshold: u32,
    /// Failures are not counted this long after a start.
    pub start_period: Duration,
    /// Healthy only if the body names the UUID of every GPU NVML reports.
    pub require_all_gpus: bool,
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            path: "/metrics".to_owned(),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(5),
            failure_threshold: 3,
            start_period: Duration::from_secs(60),
            require_all_gpus: true,
        }
    }
}

/// Restart pacing: exponential backoff and crash-loop detection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RestartSpec {
    /// Delay before the second restart (the first is immediate).
    pub backoff_initial: Duration,
    /// Longest delay between restarts.
    pub backoff_max: Duration,
    /// Healthy this long resets the backoff to `backoffInitial`.
    pub reset_after: Duration,
    /// More restarts than this within `window` is a crash loop.
    #[schemars(range(min = 1))]
    pub max_restarts: u32,
    /// Window for counting restarts.
    pub window: Duration,
}

impl Default for RestartSpec {
    fn default() -> Self {
        RestartSpec {
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_mins(5),
            reset_after: Duration::from_secs(60),
            max_restarts: 5,
            window: Duration::from_mins(5),
        }
    }
}

impl DcgmExporterSpec {
    /// The environment the container gets: the DCP collectors unless `env` names others,
    /// then `env`.
    #[must_use]
    pub fn container_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([(
            DEFAULT_COLLECTORS.0.to_owned(),
            DEFAULT_COLLECTORS.1.to_owned(),
        )]);
        env.extend(self.env.clone());
        env
    }

    /// The port the exporter listens on inside its container: the port of
    /// `env.DCGM_EXPORTER_LISTEN` (`[host]:port`), else 9400.
    #[must_use]
    pub fn listen_port(&self) -> u16 {
        self.env
            .get(LISTEN_ENV)
            .and_then(|listen| listen_port(listen))
            .unwrap_or(DEFAULT_LISTEN_PORT)
    }

    /// Semantic rules that the types alone cannot express.
    pub fn validate(&self, report: &mut Report) {
        if !is_container_name(&self.container_name) {
            report.error(
                "spec.containerName",
                "must start with a letter or digit and use only letters, digits, `_`, `.` and `-`",
            );
        }
        if self.image.trim().is_empty() {
            report.error("spec.image", "must not be empty");
        }
        if self.port == 0 {
            report.error("spec.port", "must be between 1 and 65535");
        }
        if !(self.cpu_limit.is_finite() && self.cpu_limit > 0.0) {
            report.error(
                "spec.cpuLimit",
                "must be a positive number of cores, e.g. 0.25",
            );
        }
        if self.memory_limit.bytes() < 6 << 20 {
            report.error(
                "spec.memoryLimit",
                "must be at least 6MiB (Docker's minimum)",
            );
        }
        for (index, capability) in self.cap_add.iter().enumerate() {
            if capability.is_empty()
                || !capability
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_')
            {
                report.error(
                    format!("spec.capAdd[{index}]"),
                    "must be a capability name such as SYS_ADMIN",
                );
            }
        }
        for key in self.env.keys() {
            if key.is_empty() || key.contains('=') {
                report.error(
                    format!("spec.env.{key}"),
                    "environment variable names must be non-empty and without `=`",
                );
            }
        }
        if !self.health.path.starts_with('/') {
            report.error("spec.health.path", "must start with `/`");
        }
        report.positive("spec.health.interval", self.health.interval);
        report.positive("spec.health.timeout", self.health.timeout);
        if self.health.failure_threshold == 0 {
            report.error("spec.health.failureThreshold", "must be at least 1");
        }
        report.positive("spec.restart.backoffMax", self.restart.backoff_max);
        if self.restart.backoff_initial > self.restart.backoff_max {
            report.error(
                "spec.restart.backoffInitial",
                format!(
                    "{} is above restart.backoffMax ({})",
                    self.restart.backoff_initial, self.restart.backoff_max
                ),
            );
        }
        report.positive("spec.restart.window", self.restart.window);
        if self.restart.max_restarts == 0 {
            report.error("spec.restart.maxRestarts", "must be at least 1");
        }
        report.positive("spec.stopTimeout", self.stop_timeout);
        if let Some(listen) = self.env.get(LISTEN_ENV)
            && listen_port(listen).is_none()
        {
            report.error(
                format!("spec.env.{LISTEN_ENV}"),
                format!(
                    "`{listen}` is not `[host]:port` with a port from 1 to 65535, e.g. `:9400`"
                ),
            );
        }
        self.validate_networks(report);
        if self.log_max_size.bytes() < 1 << 10 {
            report.error("spec.logMaxSize", "must be at least 1KiB");
        }
        if self.log_max_files == 0 {
            report.error("spec.logMaxFiles", "must be at least 1");
        }
    }

    fn validate_networks(&self, report: &mut Report) {
        for (index, network) in self.networks.iter().enumerate() {
            if !is_container_name(&network.name) {
                report.error(
                    format!("spec.networks[{index}].name"),
                    "must be a Docker network name: a letter or digit, then letters, digits, `_`, `.` and `-`",
                );
            } else if self.networks[..index]
                .iter()
                .any(|earlier| earlier.name == network.name)
            {
                report.error(
                    format!("spec.networks[{index}].name"),
                    format!("network `{}` is listed twice", network.name),
                );
            }
            for (alias_index, alias) in network.aliases.iter().enumerate() {
                if !is_container_name(alias) {
                    report.error(
                        format!("spec.networks[{index}].aliases[{alias_index}]"),
                        "must be a host name: a letter or digit, then letters, digits, `_`, `.` and `-`",
                    );
                }
            }
        }
    }
}

/// The port of a `[host]:port` listen address.
fn listen_port(listen: &str) -> Option<u16> {
    let (_, port) = listen.trim().rsplit_once(':')?;
    port.parse::<u16>().ok().filter(|port| *port > 0)
}

/// Docker's container-name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn is_container_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}
