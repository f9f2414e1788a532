//! The ContainerLifecyclePolicy planner for one container: idle episodes, runtime deadlines,
//! warnings, stops and cleanup — a pure function of the container, its resolved limits, one
//! sample of its signals, the controller's memory and `now`.
//!
//! # Guarantees
//! - Protected containers, the controller's own, containers outside `scope` and exempt users
//!   are never acted on.
//! - A container is idle only when every signal that applies to it is known and below its
//!   threshold: an unknown signal is shown as unknown and never counts as idle.
//! - Each warning goes out once per idle episode (idle) or per run (runtime); the stop is
//!   planned for the deadline itself, and the next look is scheduled for the next deadline.

use std::time::Duration;

use ds01_host::ContainerState;
use ds01_spec::{OnIdle, resolve::ResolvedLimits};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The container as the planner needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// State.
    pub state: ContainerState,
    /// Creation, last start, last exit.
    pub created_at: Option<Timestamp>,
    /// Last start.
    pub started_at: Option<Timestamp>,
    /// Last exit.
    pub finished_at: Option<Timestamp>,
    /// Holds a GPU.
    pub has_gpu: bool,
    /// Why it must not be touched, if it must not (protected label, ours, out of scope).
    pub untouchable: Option<String>,
}

/// One sample of the idle signals; `None` = unknown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// GPU utilisation, percent.
    pub gpu: Option<f64>,
    /// CPU, percent of one core.
    pub cpu: Option<f64>,
    /// Network bytes in + out over the last interval.
    pub network: Option<u64>,
    /// A keep-alive file younger than `keepAlive.maxAge` exists.
    pub keep_alive: bool,
}

/// What the planner remembers per container (persisted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Start of the current idle episode.
    pub idle_since: Option<Timestamp>,
    /// Idle warnings sent in this episode (indexes into `warnAt.idle`).
    pub idle_warned: Vec<usize>,
    /// The run the runtime warnings belong to (its `StartedAt`).
    pub run: Option<Timestamp>,
    /// Runtime warnings sent in this run.
    pub runtime_warned: Vec<usize>,
    /// `lifecycle.exempt` was reported.
    pub exempt_reported: bool,
    /// A stop issued whose event is not written yet (see `ledger`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrecorded_stop: Option<UnrecordedStop>,
}

/// The event of a stop, remembered before the stop is issued and forgotten once written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnrecordedStop {
    /// `lifecycle.idle_stop` or `lifecycle.runtime_stop`.
    pub event: ds01_spec::EventType,
    /// The owner.
    pub user: String,
    /// The event's details, without its outcome.
    pub details: serde_json::Value,
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Warn the owner.
    Warn {
        /// `idle` or `runtime`.
        kind: &'static str,
        /// Percent of the limit reached.
        percent: u8,
        /// When the action happens.
        deadline: Timestamp,
    },
    /// Stop (and remove, for `stopAndRemove` on idle).
    Stop {
        /// `idle` or `runtime`.
        reason: &'static str,
        /// Remove after stopping.
        remove: bool,
        /// When the stop became due.
        deadline: Timestamp,
    },
    /// Remove a stopped or never-started container.
    Remove {
        /// `removeAfterStop`, `gpuHoldAfterStop` or `createdTimeout`.
        reason: &'static str,
    },
    /// Report once that the user is exempt.
    ReportExempt,
}

impl Step {
    /// Stops and removals: what must not happen unless it can be recorded.
    #[must_use]
    pub fn is_destructive(&self) -> bool {
        matches!(self, Step::Stop { .. } | Step::Remove { .. })
    }
}

/// The planner's answer for one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Next memory.
    pub memory: Memory,
    /// When to look again at the latest (a deadline or warning time), if anything is pending.
    pub next_deadline: Option<Timestamp>,
    /// Why nothing is counted (untouchable, unknown signal, startup grace), for `describe`.
    pub note: Option<String>,
    /// Whether it counts as idle now.
    pub idle: bool,
}

fn add(at: Timestamp, duration: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(duration)
        .ok()
        .and_then(|delta| at.checked_add(delta).ok())
        .unwrap_or(at)
}

fn fraction_of(duration: Duration, percent: f64) -> Duration {
    duration.mul_f64((percent / 100.0).clamp(0.0, 1.0))
}

/// Decides for one container. `idle_factor` is the high-demand factor (1.0 when demand is
/// normal).
#[must_use]
pub fn plan(
    subject: &Subject,
    limits: &ResolvedLimits,
    sample: &Sample,
    memory: &Memory,
    idle_factor: f64,
    now: Timestamp,
) -> Plan {
    let mut result = Plan {
        steps: Vec::new(),
        memory: memory.clone(),
        next_deadline: None,
        note: None,
        idle: false,
    };
    if let Some(why) = &subject.untouchable {
        result.note = Some(why.clone());
        return result;
    }
    if !limits.exemptions.is_empty() && !memory.exempt_reported {
        result.steps.push(Step::ReportExempt);
        result.memory.exempt_reported = true;
    }
    match subject.state {
        ContainerState::Running => running(subject, limits, sample, idle_factor, now, &mut result),
        ContainerState::Exited | ContainerState::Dead => {
            result.memory.idle_since = None;
            result.memory.idle_warned.clear();
            let (limit, reason) = if subject.has_gpu {
                (limits.gpu_hold_after_stop.value, "gpuHoldAfterStop")
            } else {
                (limits.remove_after_stop.value, "removeAfterStop")
            };
            if let (Some(limit), Some(finished)) = (limit, subject.finished_at) {
                deadline_step(
                    add(finished, limit.std()),
                    now,
                    Step::Remove { reason },
                    &mut result,
                );
            }
        }
        ContainerState::Created => {
            if let (Some(limit), Some(created)) = (limits.created_timeout.value, subject.created_at)
            {
                deadline_step(
                    add(created, limit.std()),
                    now,
                    Step::Remove {
                        reason: "createdTimeout",
                    },
                    &mut result,
                );
            }
        }
        _ => {}
    }
    result
}

fn deadline_step(deadline: Timestamp, now: Timestamp, step: Step, result: &mut Plan) {
    if now >= deadline {
        result.steps.push(step);
    } else {
        result.next_deadline = Some(
            result
                .next_deadline
                .map_or(deadline, |existing| existing.min(deadline)),
        );
    }
}

fn running(
    subject: &Subject,
    limits: &ResolvedLimits,
    sample: &Sample,
    idle_factor: f64,
    now: Timestamp,
    result: &mut Plan,
) {
    let Some(started) = subject.started_at else {
        result.note = Some("no start time yet".to_owned());
        return;
    };
    // Runtime: warnings once per run, the stop at the deadline itself.
    if result.memory.run != Some(started) {
        result.memory.run = Some(started);
        result.memory.runtime_warned.clear();
        result.memory.idle_since = None;
        result.memory.idle_warned.clear();
    }
    if let Some(max_runtime) = limits.max_runtime.value {
        let deadline = add(started, max_runtime.std());
        if now >= deadline {
            result.steps.push(Step::Stop {
                reason: "runtime",
                remove: false,
                deadline,
            });
            return;
        }
        let mut warned = std::mem::take(&mut result.memory.runtime_warned);
        warnings(
            "runtime",
            started,
            max_runtime.std(),
            &limits.warn_at_runtime.value,
            &mut warned,
            deadline,
            now,
            result,
        );
        result.memory.runtime_warned = warned;
    }
    // Idle.
    if now < add(started, limits.startup_grace.value.std()) {
        result.note = Some(format!(
            "within startupGrace ({})",
            limits.startup_grace.value
        ));
        result.memory.idle_since = None;
        result.memory.idle_warned.clear();
        return;
    }
    let unknown: Vec<&str> = [
        ("gpu", subject.has_gpu && sample.gpu.is_none()),
        ("cpu", sample.cpu.is_none()),
        ("network", sample.network.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, missing)| missing.then_some(name))
    .collect();
    let active = (subject.has_gpu
        && sample
            .gpu
            .is_some_and(|gpu| gpu >= limits.gpu_util_below.value.value()))
        || sample
            .cpu
            .is_some_and(|cpu| cpu >= limits.cpu_below.value.value())
        || sample
            .network
            .is_some_and(|bytes| bytes >= limits.network_below.value.bytes());
    if active || sample.keep_alive {
        // Activity, or a fresh keep-alive file, ends the episode.
        if sample.keep_alive {
            result.note = Some("a fresh keep-alive file holds off idle stops".to_owned());
        }
        result.memory.idle_since = None;
        result.memory.idle_warned.clear();
        return;
    }
    if !unknown.is_empty() {
        // Missing data decides nothing: the episode neither advances to an action nor ends.
        result.note = Some(format!(
            "signal unknown: {} (never counted as idle)",
            unknown.join(", ")
        ));
        return;
    }
    result.idle = true;
    let Some(timeout) = limits.idle_timeout.value else {
        return;
    };
    let timeout = timeout.std().mul_f64(idle_factor.clamp(0.0, 1.0));
    let since = *result.memory.idle_since.get_or_insert(now);
    let deadline = add(since, timeout);
    if now >= deadline {
        result.steps.push(Step::Stop {
            reason: "idle",
            remove: limits.on_idle.value == OnIdle::StopAndRemove,
            deadline,
        });
        return;
    }
    let mut warned = std::mem::take(&mut result.memory.idle_warned);
    warnings(
        "idle",
        since,
        timeout,
        &limits.warn_at_idle.value,
        &mut warned,
        deadline,
        now,
        result,
    );
    result.memory.idle_warned = warned;
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site per limit; a struct would only rename them"
)]
fn warnings(
    kind: &'static str,
    from: Timestamp,
    limit: Duration,
    fractions: &[ds01_spec::Percent],
    sent: &mut Vec<usize>,
    deadline: Timestamp,
    now: Timestamp,
    result: &mut Plan,
) {
    for (index, fraction) in fractions.iter().enumerate() {
        let due = add(from, fraction_of(limit, fraction.value()));
        if now >= due {
            if !sent.contains(&index) {
                sent.push(index);
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "percentages are 0-100"
                )]
                let percent = fraction.value().round() as u8;
                result.steps.push(Step::Warn {
                    kind,
                    percent,
                    deadline,
                });
            }
        } else {
            result.next_deadline = Some(
                result
                    .next_deadline
                    .map_or(due, |existing| existing.min(due)),
            );
        }
    }
    result.next_deadline = Some(
        result
            .next_deadline
            .map_or(deadline, |existing| existing.min(deadline)),
    );
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
