//! One observation of the GPU processes, and what each process is: in a running container, a
//! system process, an allowed or reported host process, a ghost, a zombie, unknown (a cgroup
//! this engine cannot vouch for) or an orphan.
//!
//! # Guarantees
//! - Any running container of this engine anywhere on a process's cgroup path makes it that
//!   container's: never an orphan (nested cgroups, Docker-in-Docker, systemd inside).
//! - Only a container this engine knows to be stopped, or that the controller saw removed,
//!   makes a dead-container orphan; a container id nobody knows, or another engine's cgroup,
//!   is unknown — reported, never signalled.
//! - `systemProcesses` are matched by name only for host processes of system accounts: a user
//!   cannot escape by renaming a process.

use std::collections::HashSet;

use ds01_host::process::ProcessIdentity;
use ds01_spec::{GpuOrphanPolicySpec, HostProcessAction};
use jiff::Timestamp;

/// Accounts below this uid are system accounts (Debian's `SYS_UID_MAX` is 999).
pub const FIRST_USER_UID: u32 = 1000;

/// Where a GPU process lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// In a container cgroup: the container ids on the path, outermost first.
    Container(Vec<String>),
    /// In another engine's cgroup (the path).
    Foreign(String),
    /// Outside containers.
    Host,
    /// Listed by NVML, gone from `/proc`.
    Ghost,
}

/// One GPU process of the observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedProcess {
    /// Pid and start time.
    pub identity: ProcessIdentity,
    /// GPU or MIG device UUID it runs on.
    pub gpu: String,
    /// The physical GPU's UUID.
    pub parent_gpu: String,
    /// Where it lives.
    pub placement: Placement,
    /// Owner uid.
    pub uid: Option<u32>,
    /// Owner name.
    pub user: Option<String>,
    /// Short name (`comm`; the process may set it).
    pub name: String,
    /// Command line.
    pub cmdline: String,
    /// Exited, not reaped.
    pub zombie: bool,
}

/// One physical GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedGpu {
    /// UUID.
    pub uuid: String,
    /// NVML index.
    pub index: u32,
    /// MIG enabled; `None` when NVML could not tell.
    pub mig: Option<bool>,
    /// Running containers that hold or claim it, in any form.
    pub holders: Vec<String>,
    /// Why what NVML said of this GPU is incomplete (any error for it), if it is.
    pub incomplete: Option<String>,
}

/// One observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// When NVML was polled for it: two sightings count only from two distinct polls.
    pub polled_at: Timestamp,
    /// Every GPU process.
    pub processes: Vec<ObservedProcess>,
    /// Ids of containers that are running (or paused, restarting).
    pub live_containers: HashSet<String>,
    /// Ids of containers this engine knows that are not live (created, exited, dead).
    pub stopped_containers: HashSet<String>,
    /// Ids of containers the controller saw removed.
    pub removed_containers: HashSet<String>,
    /// The GPUs.
    pub gpus: Vec<ObservedGpu>,
    /// Identities still alive in `/proc`, for the processes being terminated.
    pub alive: HashSet<ProcessIdentity>,
}

/// A process's class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// In a running container: never touched.
    Container,
    /// A system process: never touched.
    System,
    /// A host process of an allowed user: never touched.
    AllowedHost,
    /// A host process, reported (with `hostProcesses: report`).
    Host,
    /// Listed by NVML but gone.
    Ghost,
    /// A zombie.
    Zombie,
    /// A cgroup this engine cannot vouch for: reported, never touched; and why.
    Unknown(String),
    /// An orphan, and why.
    Orphan(String),
}

impl Class {
    /// Short name for status and `get processes`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Class::Container => "container",
            Class::System => "system",
            Class::AllowedHost => "allowed-host",
            Class::Host => "host",
            Class::Ghost => "ghost",
            Class::Zombie => "zombie",
            Class::Unknown(_) => "unknown",
            Class::Orphan(_) => "orphan",
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Classifies one process.
#[must_use]
pub fn classify(
    process: &ObservedProcess,
    observed: &Observed,
    spec: &GpuOrphanPolicySpec,
) -> Class {
    match &process.placement {
        Placement::Ghost => Class::Ghost,
        _ if process.zombie => Class::Zombie,
        Placement::Container(ids) => in_container(ids, observed),
        Placement::Foreign(cgroup) => Class::Unknown(format!(
            "its cgroup {cgroup} belongs to another container engine"
        )),
        Placement::Host
            if spec.system_processes.contains(&process.name)
                && process.uid.is_some_and(|uid| uid < FIRST_USER_UID) =>
        {
            Class::System
        }
        Placement::Host
            if process
                .user
                .as_ref()
                .is_some_and(|user| spec.allowed_host_users.contains(user)) =>
        {
            Class::AllowedHost
        }
        Placement::Host if spec.host_processes == HostProcessAction::Kill => {
            Class::Orphan(format!(
                "a host process of {}, who is not in allowedHostUsers",
                process.user.as_deref().unwrap_or("an unknown user")
            ))
        }
        Placement::Host => Class::Host,
    }
}

fn in_container(ids: &[String], observed: &Observed) -> Class {
    if ids.iter().any(|id| observed.live_containers.contains(id)) {
        return Class::Container;
    }
    let Some(outermost) = ids.first() else {
        return Class::Unknown("its cgroup names no container".to_owned());
    };
    if observed.stopped_containers.contains(outermost) {
        Class::Orphan(format!("its container {} is not running", short(outermost)))
    } else if observed.removed_containers.contains(outermost) {
        Class::Orphan(format!("its container {} was removed", short(outermost)))
    } else {
        Class::Unknown(format!(
            "its cgroup names container {}, which this engine does not know",
            short(outermost)
        ))
    }
}
