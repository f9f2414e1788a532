//! The GpuOrphanPolicy planner: when each orphan may be signalled and when a freed GPU may be
//! reset — a pure function of one observation, the policy, the controller's memory and `now`.
//!
//! # Guarantees
//! - A process is signalled only after the same identity (pid and start time) was classified
//!   an orphan in at least two distinct NVML polls spanning `gracePeriod`; a pid whose start
//!   time changed is a different process and starts over.
//! - Nothing is decided on a snapshot older than the allowed age (a hung poll never turns one
//!   sighting into a kill).
//! - Dry run remembers nothing enforcement acts on (no SIGTERM time), and memory built under
//!   another generation or mode of the spec is dropped: a switch from dry run starts from
//!   SIGTERM. SIGKILL follows only a SIGTERM this policy sent in enforce mode, and only while
//!   the identity is still classified an orphan.
//! - A GPU is reset only after orphans were removed from it, when NVML's view of it is complete,
//!   no live process is left on it, nothing running holds or claims it and MIG is off;
//!   otherwise the skip is reported with its reason.

use std::collections::{BTreeMap, BTreeSet};

use ds01_host::process::ProcessIdentity;
use ds01_spec::{EventType, GpuOrphanPolicySpec, PolicyMode};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use super::classify::{Class, Observed, ObservedGpu, ObservedProcess, Placement, classify};

/// An orphan being watched, or being terminated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracked {
    /// Identity.
    pub identity: ProcessIdentity,
    /// Poll time of its first sighting as an orphan.
    pub first_seen: Timestamp,
    /// Poll time of its latest sighting as an orphan.
    #[serde(default)]
    pub last_seen: Option<Timestamp>,
    /// Distinct polls it was seen in as an orphan.
    pub observations: u32,
    /// GPU (device).
    pub gpu: String,
    /// Physical GPU.
    pub parent_gpu: String,
    /// Owner.
    pub user: Option<String>,
    /// Command line.
    pub cmdline: String,
    /// Why it is an orphan.
    pub reason: String,
    /// SIGTERM sent at (enforce mode only).
    pub terminated_at: Option<Timestamp>,
    /// SIGKILL sent at.
    pub killed_at: Option<Timestamp>,
    /// Reported unkillable.
    pub unkillable: bool,
    /// Dry run reported what it would do (never acted on).
    #[serde(default)]
    pub dry_run_reported: bool,
}

/// What the controller remembers (persisted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// The spec generation and mode this memory was built under.
    #[serde(default)]
    pub basis: String,
    /// Orphans by `pid:start`.
    pub tracked: BTreeMap<String, Tracked>,
    /// GPUs orphans were removed from, awaiting a reset decision.
    pub dirty_gpus: BTreeSet<String>,
    /// Unknown processes already reported, by `pid:start`.
    #[serde(default)]
    pub unknown_reported: BTreeSet<String>,
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

/// What the plan is decided under besides the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The spec's generation and effective mode (`7:enforce`); memory of another is dropped.
    pub basis: String,
    /// Snapshots older than this decide nothing.
    pub max_snapshot_age: std::time::Duration,
}

impl Settings {
    /// The basis string for a generation and mode.
    #[must_use]
    pub fn basis(generation: u64, mode: PolicyMode) -> String {
        let mode = if mode == PolicyMode::DryRun {
            "dryRun"
        } else {
            "enforce"
        };
        format!("{generation}:{mode}")
    }
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

/// Whether the observation is too old to act on; `Some(why)` when it is.
#[must_use]
pub fn stale(observed: &Observed, settings: &Settings, now: Timestamp) -> Option<String> {
    let age = elapsed(observed.polled_at, now);
    (age > settings.max_snapshot_age).then(|| {
        format!(
            "the latest GPU snapshot is {:.1} s old (more than two poll intervals); nothing is decided on it",
            age.as_secs_f64()
        )
    })
}

/// Decides.
#[must_use]
pub fn plan(
    observed: &Observed,
    spec: &GpuOrphanPolicySpec,
    memory: &Memory,
    settings: &Settings,
    now: Timestamp,
) -> Plan {
    let fresh;
    let memory = if memory.basis == settings.basis {
        memory
    } else {
        fresh = Memory {
            basis: settings.basis.clone(),
            ..Memory::default()
        };
        &fresh
    };
    let mut result = Plan {
        steps: Vec::new(),
        events: Vec::new(),
        memory: Memory {
            basis: settings.basis.clone(),
            tracked: BTreeMap::new(),
            dirty_gpus: memory.dirty_gpus.clone(),
            unknown_reported: BTreeSet::new(),
        },
        classes: BTreeMap::new(),
        unkillable: Vec::new(),
    };
    if stale(observed, settings, now).is_some() {
        result.memory = memory.clone();
        return result;
    }
    let mut orphans_now = BTreeSet::new();
    for process in &observed.processes {
        let class = classify(process, observed, spec);
        *result.classes.entry(class.label()).or_default() += 1;
        let id = key(process.identity);
        match class {
            Class::Orphan(reason) => {
                orphans_now.insert(id.clone());
                let tracked = sight(
                    process,
                    reason,
                    observed.polled_at,
                    memory,
                    spec,
                    now,
                    &mut result,
                );
                result.memory.tracked.insert(id, tracked);
            }
            Class::Unknown(reason) => {
                if !memory.unknown_reported.contains(&id) {
                    result.events.push((
                        EventType::UnknownProcess,
                        process.user.clone(),
                        json!({ "pid": process.identity.pid, "start_time": process.identity.start_time, "cmdline": process.cmdline, "gpu": process.gpu, "reason": reason, "action": "none: only processes of containers this engine knows to be stopped or removed are ever signalled" }),
                    ));
                }
                result.memory.unknown_reported.insert(id);
            }
            _ => {}
        }
    }
    escalate(observed, spec, memory, &orphans_now, now, &mut result);
    plan_resets(observed, spec, &mut result);
    result
}

/// One more sighting of an orphan; SIGTERM (or, in dry run, its report) once graced.
fn sight(
    process: &ObservedProcess,
    reason: String,
    polled_at: Timestamp,
    memory: &Memory,
    spec: &GpuOrphanPolicySpec,
    now: Timestamp,
    result: &mut Plan,
) -> Tracked {
    let dry_run = spec.mode == PolicyMode::DryRun;
    let mut tracked = memory
        .tracked
        .get(&key(process.identity))
        .cloned()
        .unwrap_or_else(|| Tracked {
            identity: process.identity,
            first_seen: polled_at,
            last_seen: None,
            observations: 0,
            gpu: process.gpu.clone(),
            parent_gpu: process.parent_gpu.clone(),
            user: process.user.clone(),
            cmdline: process.cmdline.clone(),
            reason,
            terminated_at: None,
            killed_at: None,
            unkillable: false,
            dry_run_reported: false,
        });
    if tracked.last_seen != Some(polled_at) {
        tracked.last_seen = Some(polled_at);
        tracked.observations += 1;
        if tracked.observations == 1 {
            result.events.push((
                EventType::OrphanDetected,
                tracked.user.clone(),
                details(&tracked, dry_run),
            ));
        }
    }
    let graced = tracked.observations >= 2
        && elapsed(tracked.first_seen, polled_at) >= spec.grace_period.std();
    if !graced {
        return tracked;
    }
    if dry_run {
        if !tracked.dry_run_reported {
            tracked.dry_run_reported = true;
            result.events.push((
                EventType::OrphanTerminated,
                tracked.user.clone(),
                details(&tracked, true),
            ));
        }
    } else if tracked.terminated_at.is_none() {
        tracked.terminated_at = Some(now);
        result.events.push((
            EventType::OrphanTerminated,
            tracked.user.clone(),
            details(&tracked, false),
        ));
        result.steps.push(Step::Terminate(tracked.identity));
        result.memory.dirty_gpus.insert(tracked.parent_gpu.clone());
    }
    tracked
}

/// Orphans this policy sent SIGTERM in enforce mode: SIGKILL after `killAfter` while they are
/// still orphans and alive, then one unkillable report; forgotten once gone or no longer orphans.
fn escalate(
    observed: &Observed,
    spec: &GpuOrphanPolicySpec,
    memory: &Memory,
    orphans_now: &BTreeSet<String>,
    now: Timestamp,
    result: &mut Plan,
) {
    if spec.mode == PolicyMode::DryRun {
        return;
    }
    for (id, previous) in &memory.tracked {
        let Some(sent) = previous.terminated_at else {
            continue;
        };
        if !observed.alive.contains(&previous.identity) || !orphans_now.contains(id) {
            // Gone, or no longer an orphan (its user allowed, its container running again):
            // never escalated.
            result.memory.tracked.remove(id);
            continue;
        }
        let Some(tracked) = result.memory.tracked.get_mut(id) else {
            continue;
        };
        match tracked.killed_at {
            None if elapsed(sent, now) >= spec.terminate.kill_after.std() => {
                tracked.killed_at = Some(now);
                result.steps.push(Step::Kill(tracked.identity));
                result.events.push((
                    EventType::OrphanKilled,
                    tracked.user.clone(),
                    details(tracked, false),
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
                    details(tracked, false),
                ));
            }
            _ => {}
        }
        if tracked.unkillable {
            result.unkillable.push(tracked.identity);
        }
    }
}

fn plan_resets(observed: &Observed, spec: &GpuOrphanPolicySpec, result: &mut Plan) {
    let dirty: Vec<String> = result.memory.dirty_gpus.iter().cloned().collect();
    for uuid in dirty {
        // Wait while an orphan on it is still being terminated.
        if result.memory.tracked.values().any(|tracked| {
            tracked.parent_gpu == uuid && tracked.terminated_at.is_some() && !tracked.unkillable
        }) {
            continue;
        }
        result.memory.dirty_gpus.remove(&uuid);
        let Some(gpu) = observed.gpus.iter().find(|gpu| gpu.uuid == uuid) else {
            result.events.push((
                EventType::ResetSkipped,
                None,
                json!({ "gpu": uuid, "reason": "observation_incomplete", "message": "NVML no longer lists this GPU" }),
            ));
            continue;
        };
        let live_left = observed
            .processes
            .iter()
            .filter(|p| p.parent_gpu == uuid && p.placement != Placement::Ghost && !p.zombie)
            .count();
        let skip = if !spec.reset.enabled {
            Some("disabled")
        } else if gpu.incomplete.is_some() || gpu.mig.is_none() {
            Some("observation_incomplete")
        } else if gpu.mig == Some(true) {
            Some("mig")
        } else if !gpu.holders.is_empty() {
            Some("shared")
        } else if live_left > 0 {
            Some("processes_remaining")
        } else {
            None
        };
        match skip {
            Some(reason) => result.events.push((
                EventType::ResetSkipped,
                None,
                json!({ "gpu": uuid, "index": gpu.index, "reason": reason, "holders": gpu.holders, "processes": live_left, "message": gpu.incomplete }),
            )),
            None => result.steps.push(Step::Reset {
                uuid: uuid.clone(),
                index: gpu.index,
            }),
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "plan_memory_tests.rs"]
mod memory_tests;
