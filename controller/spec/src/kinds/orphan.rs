//! `GpuOrphanPolicy`: "GPUs must be orphan-free" — which GPU processes count as orphans and
//! how they and their GPUs are cleaned.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{CommandTemplate, Duration, validate::Report};

/// Process names that are never orphans unless a policy says otherwise.
pub const DEFAULT_SYSTEM_PROCESSES: [&str; 7] = [
    "nvidia-persistenced",
    "nv-hostengine",
    "dcgm-exporter",
    "dcgmi",
    "nvidia-smi",
    "Xorg",
    "X",
];

/// Whether a policy acts or only records what it would do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PolicyMode {
    /// Act on decisions.
    #[default]
    Enforce,
    /// Decide and record everything, change nothing.
    DryRun,
}

/// What to do with GPU processes that run outside any container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HostProcessAction {
    /// Report them, never signal them.
    #[default]
    Report,
    /// Treat those of users not in `allowedHostUsers` as orphans.
    Kill,
}

/// Desired state: GPUs free of orphaned compute processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct GpuOrphanPolicySpec {
    /// `enforce` or `dryRun`.
    pub mode: PolicyMode,
    /// How long the same process must stay orphaned before it is acted on.
    pub grace_period: Duration,
    /// Process names never treated as orphans.
    pub system_processes: Vec<String>,
    /// `report` or `kill` for GPU processes outside containers.
    pub host_processes: HostProcessAction,
    /// Users whose host GPU processes are always allowed.
    pub allowed_host_users: Vec<String>,
    /// How orphans are terminated.
    pub terminate: TerminateSpec,
    /// How freed GPUs are reset.
    pub reset: ResetSpec,
}

impl Default for GpuOrphanPolicySpec {
    fn default() -> Self {
        GpuOrphanPolicySpec {
            mode: PolicyMode::Enforce,
            grace_period: Duration::from_secs(60),
            system_processes: DEFAULT_SYSTEM_PROCESSES.map(str::to_owned).to_vec(),
            host_processes: HostProcessAction::Report,
            allowed_host_users: Vec::new(),
            terminate: TerminateSpec::default(),
            reset: ResetSpec::default(),
        }
    }
}

/// SIGTERM, then SIGKILL after `killAfter`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TerminateSpec {
    /// Wait between SIGTERM and SIGKILL.
    pub kill_after: Duration,
}

impl Default for TerminateSpec {
    fn default() -> Self {
        TerminateSpec {
            kill_after: Duration::from_secs(10),
        }
    }
}

/// Resetting a GPU once its orphans are gone and nothing else holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ResetSpec {
    /// Whether resets run at all.
    pub enabled: bool,
    /// The command; `{uuid}` and `{index}` are filled in.
    pub command: CommandTemplate,
    /// Longest the command may run.
    pub timeout: Duration,
}

impl Default for ResetSpec {
    fn default() -> Self {
        let command = ["nvidia-smi", "--gpu-reset", "-i", "{uuid}"]
            .map(str::to_owned)
            .to_vec();
        ResetSpec {
            enabled: true,
            command: CommandTemplate::try_from(command)
                .unwrap_or_else(|_| unreachable!("valid built-in")),
            timeout: Duration::from_secs(60),
        }
    }
}

impl GpuOrphanPolicySpec {
    /// Semantic rules that the types alone cannot express.
    pub fn validate(&self, report: &mut Report) {
        report.positive("spec.gracePeriod", self.grace_period);
        report.positive("spec.terminate.killAfter", self.terminate.kill_after);
        report.positive("spec.reset.timeout", self.reset.timeout);
        report.no_duplicates("spec.systemProcesses", &self.system_processes);
        report.no_duplicates("spec.allowedHostUsers", &self.allowed_host_users);
        for (index, name) in self.system_processes.iter().enumerate() {
            if name.trim().is_empty() {
                report.error(
                    format!("spec.systemProcesses[{index}]"),
                    "must not be empty",
                );
            }
        }
    }
}
