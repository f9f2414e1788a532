//! The GpuOrphanPolicy planner: which GPU processes are orphans, when each may be signalled,
//! and when a freed GPU may be reset — a pure function of one observation, the policy, the
//! controller's memory and `now`.
//!
//! # Guarantees
//! - A process in a running container, a system process, a ghost (listed by NVML, gone from
//!   `/proc`) and a zombie are never signalled.
//! - A process is signalled only after the same identity (pid and start time) was seen as an
//!   orphan in at least two observations spanning `gracePeriod`; a pid whose start time
//!   changed is a different process and starts over.
//! - SIGTERM, then SIGKILL after `killAfter`, then a final check: still alive → reported as
//!   unkillable once.
//! - A GPU is reset only after orphans were removed from it, when no live process is left on
//!   it, no running container holds it and MIG is off; otherwise the skip is reported with its
//!   reason.

use ds01_spec::EventType;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use ds01_host::process::ProcessIdentity;
use ds01_spec::{GpuOrphanPolicySpec, HostProcessAction, PolicyMode};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where a GPU process lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// In this container's cgroup.
    Container(String),
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
    /// Owner.
    pub user: Option<String>,
    /// Short name.
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
    /// MIG enabled.
    pub mig: bool,
    /// Running containers that hold it (device requests or GPU labels).
    pub holders: Vec<String>,
}

/// One observation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Every GPU process.
    pub processes: Vec<ObservedProcess>,
    /// Ids of containers that are running (or paused, restarting).
    pub live_containers: HashSet<String>,
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
            Class::Orphan(_) => "orphan",
        }
    }
}

/// Classifies one process.
#[must_use]
pub fn classify(
    process: &ObservedProcess,
    observed: &Observed,
    spec: &GpuOrphanPolicySpec,
) -> Class {
    if spec.system_processes.contains(&process.name) {
        return Class::System;
    }
    match &process.placement {
        Placement::Ghost => Class::Ghost,
        _ if process.zombie => Class::Zombie,
        Placement::Container(id) if observed.live_containers.contains(id) => Class::Container,
        Placement::Container(id) => Class::Orphan(format!(
            "its container {} is not running",
            id.get(..12).unwrap_or(id)
        )),
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

/// An orphan being watched, or being terminated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracked {
    /// Identity.
    pub identity: ProcessIdentity,
    /// First seen as an orphan.
    pub first_seen: Timestamp,
    /// Observations as an orphan.
    pub observations: u32,
    /// GPU (device) and physical GPU.
    pub gpu: String,
    /// Physical GPU.
    pub parent_gpu: String,
    /// Owner.
    pub user: Option<String>,
    /// Command line.
    pub cmdline: String,
    /// Why it is an orphan.
    pub reason: String,
    /// SIGTERM sent at.
    pub terminated_at: Option<Timestamp>,
    /// SIGKILL sent at.
    pub killed_at: Option<Timestamp>,
    /// Reported unkillable.
    pub unkillable: bool,
}

/// What the controller remembers (persisted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Orphans by `pid:start`.
    pub tracked: BTreeMap<String, Tracked>,
    /// GPUs orphans were removed from, awaiting a reset decision.
    pub dirty_gpus: BTreeSet<String>,
}

/// An action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// SIGTERM.
    Terminate(ProcessIdentity),
    /// SIGKILL.
    Kill(ProcessIdentity),
    /// Run the reset command for this GPU.
    Reset {
        /// UUID.
        uuid: String,
        /// Index.
        index: u32,
    },
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Actions, in order.
    pub steps: Vec<Step>,
    /// Events: (type, user, details).
    pub events: Vec<(EventType, Option<String>, Value)>,
    /// Next memory.
    pub memory: Memory,
    /// Processes by class, for status.
    pub classes: BTreeMap<&'static str, usize>,
    /// Identities reported unkillable and still alive.
    pub unkillable: Vec<ProcessIdentity>,
}

fn key(identity: ProcessIdentity) -> String {
    format!("{}:{}", identity.pid, identity.start_time)
}

fn elapsed(since: Timestamp, now: Timestamp) -> std::time::Duration {
    std::time::Duration::try_from(now.duration_since(since)).unwrap_or_default()
}

fn details(tracked: &Tracked, dry_run: bool) -> Value {
    let mut details = json!({
        "pid": tracked.identity.pid,
        "start_time": tracked.identity.start_time,
        "cmdline": tracked.cmdline,
        "gpu": tracked.gpu,
        "reason": tracked.reason,
    });
    if dry_run {
        details["dry_run"] = json!(true);
    }
    details
}

/// Decides.
#[must_use]
pub fn plan(
    observed: &Observed,
    spec: &GpuOrphanPolicySpec,
    memory: &Memory,
    now: Timestamp,
) -> Plan {
    let dry_run = spec.mode == PolicyMode::DryRun;
    let mut next = Memory {
        tracked: BTreeMap::new(),
        dirty_gpus: memory.dirty_gpus.clone(),
    };
    let mut result = Plan {
        steps: Vec::new(),
        events: Vec::new(),
        memory: Memory::default(),
        classes: BTreeMap::new(),
        unkillable: Vec::new(),
    };
    for process in &observed.processes {
        let class = classify(process, observed, spec);
        *result.classes.entry(class.label()).or_default() += 1;
        let Class::Orphan(reason) = class else {
            continue;
        };
        let id = key(process.identity);
        let mut tracked = memory.tracked.get(&id).cloned().unwrap_or_else(|| Tracked {
            identity: process.identity,
            first_seen: now,
            observations: 0,
            gpu: process.gpu.clone(),
            parent_gpu: process.parent_gpu.clone(),
            user: process.user.clone(),
            cmdline: process.cmdline.clone(),
            reason: reason.clone(),
            terminated_at: None,
            killed_at: None,
            unkillable: false,
        });
        tracked.observations += 1;
        if tracked.observations == 1 {
            result.events.push((
                EventType::OrphanDetected,
                tracked.user.clone(),
                details(&tracked, dry_run),
            ));
        }
        let graced = tracked.observations >= 2
            && elapsed(tracked.first_seen, now) >= spec.grace_period.std();
        if graced && tracked.terminated_at.is_none() {
            tracked.terminated_at = Some(now);
            result.events.push((
                EventType::OrphanTerminated,
                tracked.user.clone(),
                details(&tracked, dry_run),
            ));
            if !dry_run {
                result.steps.push(Step::Terminate(tracked.identity));
                next.dirty_gpus.insert(tracked.parent_gpu.clone());
            }
        }
        next.tracked.insert(id, tracked);
    }
    // Processes being terminated: escalate, or let them go once gone.
    for (id, previous) in &memory.tracked {
        let Some(sent) = previous.terminated_at.filter(|_| !dry_run) else {
            continue;
        };
        if !observed.alive.contains(&previous.identity) {
            next.tracked.remove(id);
            continue;
        }
        let mut tracked = next
            .tracked
            .get(id)
            .cloned()
            .unwrap_or_else(|| previous.clone());
        match tracked.killed_at {
            None if elapsed(sent, now) >= spec.terminate.kill_after.std() => {
                tracked.killed_at = Some(now);
                result.steps.push(Step::Kill(tracked.identity));
                result.events.push((
                    EventType::OrphanKilled,
                    tracked.user.clone(),
                    details(&tracked, false),
                ));
            }
            Some(killed)
                if !tracked.unkillable
                    && elapsed(killed, now) >= std::time::Duration::from_secs(2) =>
            {
                tracked.unkillable = true;
                result.events.push((
                    EventType::OrphanUnkillable,
                    tracked.user.clone(),
                    details(&tracked, false),
                ));
            }
            _ => {}
        }
        if tracked.unkillable {
            result.unkillable.push(tracked.identity);
        }
        next.tracked.insert(id.clone(), tracked);
    }
    plan_resets(observed, spec, &mut next, &mut result);
    result.memory = next;
    result
}

fn plan_resets(
    observed: &Observed,
    spec: &GpuOrphanPolicySpec,
    next: &mut Memory,
    result: &mut Plan,
) {
    let dirty: Vec<String> = next.dirty_gpus.iter().cloned().collect();
    for uuid in dirty {
        // Wait while an orphan on it is still being terminated.
        if next.tracked.values().any(|tracked| {
            tracked.parent_gpu == uuid && tracked.terminated_at.is_some() && !tracked.unkillable
        }) {
            continue;
        }
        next.dirty_gpus.remove(&uuid);
        let Some(gpu) = observed.gpus.iter().find(|gpu| gpu.uuid == uuid) else {
            continue;
        };
        let live_left = observed
            .processes
            .iter()
            .filter(|p| p.parent_gpu == uuid && p.placement != Placement::Ghost && !p.zombie)
            .count();
        let skip = if !spec.reset.enabled {
            Some("disabled")
        } else if gpu.mig {
            Some("mig")
        } else if !gpu.holders.is_empty() {
            Some("shared")
        } else if live_left > 0 {
            Some("processes_remaining")
        } else {
            None
        };
        match skip {
            Some(reason) => result.events.push((EventType::ResetSkipped, None, json!({ "gpu": uuid, "index": gpu.index, "reason": reason, "holders": gpu.holders, "processes": live_left }))),
            None => result.steps.push(Step::Reset { uuid: uuid.clone(), index: gpu.index }),
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
