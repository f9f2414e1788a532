//! `GET /v1/status`: controller health, every applied resource with its generations and
//! conditions, and workload counts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiTime, Condition};

/// The whole status answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// The controller itself.
    pub controller: ControllerHealth,
    /// Every applied resource, by kind then name.
    pub resources: Vec<ResourceView>,
    /// What is on the host.
    pub counts: Counts,
}

/// Health of the controller and its sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControllerHealth {
    /// `CARGO_PKG_VERSION` of the daemon.
    pub version: String,
    /// When it started.
    pub started_at: ApiTime,
    /// Seconds since then.
    pub uptime_seconds: i64,
    /// The Docker source.
    pub docker: DockerHealthView,
    /// The GPU source.
    pub gpu: GpuBackendView,
    /// Why the event log cannot be written now, if it cannot.
    pub event_log_error: Option<String>,
    /// The controller's own conditions (e.g. its state file unreadable).
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// Health of the Docker source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerHealthView {
    /// Connected now.
    pub connected: bool,
    /// Since when (connected or not).
    pub since: Option<jiff::Timestamp>,
    /// Last full relist.
    pub last_relist: Option<jiff::Timestamp>,
    /// Last error, when disconnected.
    pub last_error: Option<String>,
    /// Container events received.
    pub events_received: u64,
    /// Daemon time of the last event minus our receipt, milliseconds.
    pub event_lag_ms: Option<i64>,
}

/// Health of the GPU source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuBackendView {
    /// `nvml` or `none`.
    pub backend: String,
    /// Last error initialising or polling NVML.
    pub last_error: Option<String>,
    /// Last successful poll.
    pub last_poll: Option<jiff::Timestamp>,
}

/// One applied resource as its controller reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceView {
    /// `DcgmExporter`, `GpuOrphanPolicy`, `ContainerLifecyclePolicy`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// Bumped on every content change.
    pub generation: u64,
    /// The generation its controller last reconciled; `null` before the first reconcile.
    pub observed_generation: Option<u64>,
    /// Conditions (`Ready`, `Degraded`, …).
    pub conditions: Vec<Condition>,
    /// Kind-specific facts (container id, restarts, processes by class, …); for a non-admin,
    /// other users' containers are counted instead of named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ResourceView {
    /// The condition of type `kind`, if reported.
    #[must_use]
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions
            .iter()
            .find(|condition| condition.kind == kind)
    }
}

/// Workload counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Containers in any state.
    pub containers: usize,
    /// Running (or paused, restarting).
    pub running: usize,
    /// With GPU access.
    pub with_gpu: usize,
    /// GPUs NVML reports.
    pub gpus: usize,
    /// GPU processes outside containers.
    pub host_gpu_processes: usize,
}
