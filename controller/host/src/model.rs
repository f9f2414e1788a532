//! Domain types the adapters return.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::gpu_access::GpuAccess;

/// Docker's container states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Restarting.
    Restarting,
    /// Being removed.
    Removing,
    /// Exited.
    Exited,
    /// Dead.
    Dead,
    /// Reported without a state we know.
    Unknown,
}

impl ContainerState {
    /// Docker's own word for the state.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Unknown => "unknown",
        }
    }

    /// Parses Docker's word for a state.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        match text {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            _ => ContainerState::Unknown,
        }
    }

    /// Whether its processes may be alive (running, paused or restarting).
    #[must_use]
    pub const fn is_live(self) -> bool {
        matches!(
            self,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }
}

/// A mount of a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Host path (bind mounts) or volume path.
    pub source: String,
    /// Path inside the container.
    pub destination: String,
    /// `bind`, `volume`, `tmpfs`, …
    pub kind: String,
}

/// What the controller knows about a container from one inspect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// Full 64-hex id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image as configured.
    pub image: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// State.
    pub state: ContainerState,
    /// Host PID of the init process while running.
    pub pid: Option<u32>,
    /// Creation time.
    pub created_at: Option<jiff::Timestamp>,
    /// Last start.
    pub started_at: Option<jiff::Timestamp>,
    /// Last exit.
    pub finished_at: Option<jiff::Timestamp>,
    /// Exit code of the last run.
    pub exit_code: Option<i64>,
    /// `Config.User`.
    pub user: Option<String>,
    /// Mounts.
    pub mounts: Vec<Mount>,
    /// GPU access.
    pub gpu: GpuAccess,
    /// `HostConfig.CgroupParent`.
    pub cgroup_parent: Option<String>,
}

impl ContainerInfo {
    /// First 12 characters of the id, as Docker prints it.
    #[must_use]
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// A label's value.
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}
