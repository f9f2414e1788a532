//! `GET /v1/containers` and `GET /v1/containers/{name-or-id}`: containers with owner, origin,
//! state and GPUs, and everything known about one (limits with sources, signals, deadlines).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiTime, GpuClaimView, GpuGrantView, GpuGrantWritten, OwnerConflictView};

/// The list; a non-admin sees their own containers and a count of the others.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerList {
    /// Visible containers.
    pub containers: Vec<ContainerSummary>,
    /// Containers of other users, counted (non-admins only; 0 for admins).
    pub others_hidden: usize,
}

/// One container in a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSummary {
    /// Short (12-character) id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Owner.
    pub user: String,
    /// Which rule found the owner (`label`, `uid`, …).
    pub owner_source: String,
    /// The kernel vouches for the owner: the container's init process runs as that user (not
    /// root). Otherwise the owner is what labels or names claim.
    #[serde(default)]
    pub owner_verified: bool,
    /// `containerTypes` key.
    pub origin: String,
    /// Docker's state word.
    pub status: String,
    /// Image as configured.
    pub image: String,
    /// UUIDs of the GPUs (or MIG devices) the NVIDIA toolkit grants it (never label claims).
    pub gpus: Vec<String>,
    /// The same GPUs, each with how it was granted.
    #[serde(default)]
    pub gpu_grants: Vec<GpuGrantView>,
    /// GPUs its labels claim: shown, never counted as held.
    #[serde(default)]
    pub gpu_claims: Vec<GpuClaimView>,
    /// Granted or claimed ids NVML does not report (counted nowhere).
    #[serde(default)]
    pub gpu_unresolved: Vec<String>,
    /// The toolkit grants it at least one device.
    pub has_gpu: bool,
    /// Creation time.
    pub created_at: Option<ApiTime>,
    /// Last start.
    pub started_at: Option<ApiTime>,
    /// Last exit.
    pub finished_at: Option<ApiTime>,
    /// When the controller first saw it.
    pub detected_at: ApiTime,
    /// Idle since (a lifecycle policy's view), when idle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<ApiTime>,
    /// The next lifecycle action's time, when one is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_deadline: Option<ApiTime>,
}

/// Everything about one container (`describe container`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDetail {
    /// What the list shows.
    #[serde(flatten)]
    pub summary: ContainerSummary,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Mounts.
    pub mounts: Vec<MountView>,
    /// How it reaches GPUs.
    pub gpu_access: GpuAccessView,
    /// An owner label the kernel's evidence contradicted (the evidence won).
    #[serde(default)]
    pub owner_conflict: Option<OwnerConflictView>,
    /// Host PID of its init process while running.
    pub pid: Option<u32>,
    /// Exit code of the last run.
    pub exit_code: Option<i64>,
    /// What a lifecycle policy decided about it; `null` when none applies.
    pub lifecycle: Option<ContainerLifecycleView>,
    /// Its GPU processes.
    pub gpu_processes: Vec<ContainerGpuProcess>,
    /// Events about it still in the controller's memory.
    pub events: Vec<ContainerEvent>,
}

/// A mount (field names as Docker's inspect, lowercase).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountView {
    /// Host path (bind mounts) or volume path.
    pub source: String,
    /// Path inside the container.
    pub destination: String,
    /// `bind`, `volume`, `tmpfs`, …
    pub kind: String,
}

/// How a container reaches GPUs (snake_case field names, as the inventory file writes them),
/// before resolution against NVML.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuAccessView {
    /// The toolkit grants it at least one device.
    pub has_gpu: bool,
    /// `all` is granted.
    pub all: bool,
    /// Granted device ids as written, `all` aside.
    pub devices: Vec<String>,
    /// How they were granted: `device_request`, `env`, `environ`, `devices` (distinct).
    pub via: Vec<String>,
    /// Every granted device with how.
    #[serde(default)]
    pub granted: Vec<GpuGrantWritten>,
    /// `CUDA_VISIBLE_DEVICES` as written, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_visible: Option<Vec<String>>,
    /// `HostConfig.Runtime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// The NVIDIA hook runs for it (the `nvidia` runtime, or a GPU device request).
    #[serde(default)]
    pub hook: bool,
    /// What dockerd appends as `NVIDIA_VISIBLE_DEVICES` for its `--gpus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// Where the deciding environment was read: `inspect` or `environ` (PID 1).
    #[serde(default)]
    pub env_source: String,
}

/// One GPU process of a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerGpuProcess {
    /// Host PID.
    pub pid: u32,
    /// GPU or MIG device UUID.
    pub gpu: String,
    /// Short name.
    pub name: String,
    /// GPU memory.
    #[serde(rename = "memoryMiB")]
    pub memory_mib: Option<u64>,
}

/// One event about a container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerEvent {
    /// RFC 3339 UTC.
    pub timestamp: String,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its details.
    pub details: Value,
}

/// A resolved limit and the layer that set it (`idleTimeout 1h from groups.researcher`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcedValue {
    /// The value as text (`1h`, `5%`, `1MiB`); `null` for "no limit".
    pub value: Option<String>,
    /// `built-in default`, `defaults`, `groups.<g>`, `containerTypes.<t>`, `users.<u>`,
    /// `exemption (<reason>)`.
    pub source: String,
}

/// The limits that apply to one container, each with its source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LifecycleLimitsView {
    /// `idleTimeout`.
    pub idle_timeout: SourcedValue,
    /// `maxRuntime`.
    pub max_runtime: SourcedValue,
    /// `stopGracePeriod`.
    pub stop_grace_period: SourcedValue,
    /// `onIdle`.
    pub on_idle: SourcedValue,
    /// `removeAfterStop`.
    pub remove_after_stop: SourcedValue,
    /// `gpuHoldAfterStop`.
    pub gpu_hold_after_stop: SourcedValue,
    /// `createdTimeout`.
    pub created_timeout: SourcedValue,
    /// `startupGrace`.
    pub startup_grace: SourcedValue,
    /// `idle.gpuUtilBelow`.
    pub gpu_util_below: SourcedValue,
    /// `idle.cpuBelow`.
    pub cpu_below: SourcedValue,
    /// `idle.networkBelow`.
    pub network_below: SourcedValue,
}

impl LifecycleLimitsView {
    /// Every limit with its spec field name, in the order `describe` prints them.
    #[must_use]
    pub fn named(&self) -> [(&'static str, &SourcedValue); 11] {
        [
            ("idleTimeout", &self.idle_timeout),
            ("maxRuntime", &self.max_runtime),
            ("stopGracePeriod", &self.stop_grace_period),
            ("onIdle", &self.on_idle),
            ("startupGrace", &self.startup_grace),
            ("removeAfterStop", &self.remove_after_stop),
            ("gpuHoldAfterStop", &self.gpu_hold_after_stop),
            ("createdTimeout", &self.created_timeout),
            ("gpuUtilBelow", &self.gpu_util_below),
            ("cpuBelow", &self.cpu_below),
            ("networkBelow", &self.network_below),
        ]
    }
}

/// An exemption that applies to the container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExemptionView {
    /// What it lifts: `idle`, `runtime`, `cleanup`.
    pub from: Vec<String>,
    /// Why.
    pub reason: String,
    /// When it ends; `null` = never.
    pub expires: Option<jiff::Timestamp>,
}

/// One idle signal's last sample.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SignalView {
    /// The value as text (`3%`, `0.5%`, `120B`); `null` when unknown.
    pub value: Option<String>,
    /// Below its idle threshold.
    pub idle: bool,
}

/// The idle signals of the last sample.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SignalsView {
    /// GPU utilisation.
    pub gpu: SignalView,
    /// CPU (percent of one core).
    pub cpu: SignalView,
    /// Network bytes per interval.
    pub network: SignalView,
    /// A fresh keep-alive file was seen.
    pub keep_alive: bool,
}

/// What a lifecycle policy decided about one container: filled by the lifecycle controller,
/// shown by `describe container` and (idle since, next deadline) by `get containers`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerLifecycleView {
    /// The policy's `metadata.name`.
    pub policy: String,
    /// Decisions are recorded, not carried out.
    pub dry_run: bool,
    /// The owner's group, when in one.
    pub group: Option<String>,
    /// Resolved limits with sources.
    pub limits: LifecycleLimitsView,
    /// Exemptions in force.
    pub exemptions: Vec<ExemptionView>,
    /// The last sample's signals.
    pub signals: SignalsView,
    /// Idle now.
    pub idle: bool,
    /// Start of the idle episode.
    pub idle_since: Option<ApiTime>,
    /// Idle warnings sent in this episode.
    pub idle_warnings_sent: usize,
    /// Runtime warnings sent in this run.
    pub runtime_warnings_sent: usize,
    /// The next action's time.
    pub next_deadline: Option<ApiTime>,
    /// Why nothing is done, when nothing is (unknown signals, exemption, …).
    pub note: Option<String>,
}
