//! `GET /v1/processes`: GPU processes with owner, container and class.

use serde::{Deserialize, Serialize};

/// The list; a non-admin sees their own processes and a count of the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessList {
    /// Visible processes.
    pub processes: Vec<ProcessView>,
    /// Processes of other users, counted (non-admins only; 0 for admins).
    pub others_hidden: usize,
}

/// One GPU process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessView {
    /// Host PID.
    pub pid: u32,
    /// Start time (clock ticks since boot): the identity with the pid.
    pub start_time: u64,
    /// Owner.
    pub user: String,
    /// GPU or MIG device UUID.
    pub gpu: String,
    /// `container`, `stopped-container`, `unknown` (another engine's cgroup), `host`,
    /// `zombie`, `ghost`.
    pub class: String,
    /// Its container's name, when in one.
    pub container: Option<String>,
    /// Short name.
    pub name: String,
    /// Command line.
    pub cmdline: String,
    /// GPU memory.
    #[serde(rename = "memoryMiB")]
    pub memory_mib: Option<u64>,
}
