//! What the DcgmExporter planner looks at: the exporter container and the host as observed,
//! and the controller's memory of the exporter (persisted in the state file).

use ds01_host::ContainerState;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The exporter container as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedContainer {
    /// Container id.
    pub id: String,
    /// State.
    pub state: ContainerState,
    /// Its `ds01.spec-hash` label.
    pub spec_hash: Option<String>,
    /// Whether it carries the controller's labels (`ds01.managed_by=ds01-controller` and a spec
    /// hash): only a hint that an earlier version made it, never proof.
    pub labelled_ours: bool,
    /// Last start.
    pub started_at: Option<Timestamp>,
}

/// Everything the planner looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The container with the spec's name, if any.
    pub container: Option<ObservedContainer>,
    /// GPU UUIDs NVML reports; `None` when there is no GPU backend.
    pub gpus: Option<Vec<String>>,
    /// A fingerprint of the MIG layout (empty without MIG).
    pub mig_layout: String,
    /// Result of the health probe just made (only while running).
    pub probe: Option<Result<(), String>>,
    /// Another GPU maintenance action (a reset) holds the lock.
    pub maintenance_busy: bool,
    /// The spec's hash.
    pub desired_hash: String,
    /// Networks the spec names that Docker does not have.
    pub missing_networks: Vec<String>,
}

/// What the controller remembers between reconciles (persisted, so a restart of the
/// controller neither forgets a crash loop nor restarts a healthy exporter).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Memory {
    /// Id of the container the controller created for this resource: how it knows its own.
    pub container_id: Option<String>,
    /// Docker's error from the last action, until an action succeeds.
    pub last_error: Option<String>,
    /// The error last written as a `dcgm.failed` event (each distinct error is written once).
    pub reported_error: Option<String>,
    /// The last decision recorded in dry run (an unchanged decision is recorded once).
    pub last_decision: Option<String>,
    /// Times of recent restarts (pruned to the window).
    pub restarts: Vec<Timestamp>,
    /// Backoff step: 0 = the next restart is immediate.
    pub attempt: u32,
    /// No restart before this.
    pub not_before: Option<Timestamp>,
    /// Healthy since (cleared on any failure).
    pub healthy_since: Option<Timestamp>,
    /// Last time it was seen healthy.
    pub last_healthy: Option<Timestamp>,
    /// Failed probes in a row.
    pub consecutive_failures: u32,
    /// MIG layout when last started.
    pub mig_layout: Option<String>,
    /// Last failure and why.
    pub last_failure: Option<String>,
    /// `dcgm.unhealthy` was reported and `dcgm.recovered` not yet.
    pub unhealthy_reported: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_written_by_an_earlier_version_still_loads() {
        // No container id, no error fields: the restart history survives the upgrade.
        let old = r#"{"restarts":["2026-11-01T10:00:00Z"],"attempt":2,"notBefore":null,"healthySince":null,"lastHealthy":null,"consecutiveFailures":0,"migLayout":"","lastFailure":"exited","unhealthyReported":false}"#;
        let memory: Memory = serde_json::from_str(old).expect("loads");
        assert_eq!((memory.attempt, memory.restarts.len()), (2, 1));
        assert_eq!(memory.container_id, None);
    }
}
