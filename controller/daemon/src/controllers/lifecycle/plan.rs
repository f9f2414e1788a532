//! The ContainerLifecyclePolicy planner for one container: idle episodes, runtime deadlines,
//! warnings, stops, cleanup and what comes next — a pure function of the container, its
//! resolved limits, one sample of its signals, the controller's memory, the high-demand factor
//! and `now`.
//!
//! # Guarantees
//! - Protected containers, the controller's own, containers outside `scope` and exempt limits
//!   are never acted on (an exempt container gets one notice per episode instead of a stop).
//! - A container is idle only when every signal that applies to it is known and below its
//!   threshold: an unknown signal is shown as unknown and never counts as idle.
//! - Idle time counts from the start of the first sample window measured idle, never before
//!   `startupGrace` ends; the stop is due at that time plus the (high-demand scaled) timeout.
//! - Each warning goes out once per idle episode (idle) or per run (runtime); the stop is
//!   planned for the deadline itself; a deadline that cannot be computed is "never", not "now".

use ds01_host::ContainerState;
use ds01_spec::resolve::ResolvedLimits;
use jiff::Timestamp;

pub use super::{
    decision::{Expected, Plan, Sample, Step, Subject, WarnTrigger, add},
    memory::{LimitKind, Memory, UnrecordedStop},
};

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
        upcoming: Vec::new(),
    };
    if let Some(why) = &subject.untouchable {
        result.note = Some(why.clone());
        return result;
    }
    if !limits.exemptions.is_empty() && !memory.exempt_reported {
        result.steps.push(Step::ReportExempt);
        result.memory.exempt_reported = true;
    }
    let expected = Expected {
        state: subject.state,
        started_at: subject.started_at,
        finished_at: subject.finished_at,
    };
    match subject.state {
        ContainerState::Running => {
            super::running::plan_running(subject, limits, sample, idle_factor, now, &mut result);
        }
        ContainerState::Exited | ContainerState::Dead => {
            result.memory.end_episode();
            let (limit, reason, source) = if subject.has_gpu {
                (
                    limits.gpu_hold_after_stop.value,
                    "gpuHoldAfterStop",
                    &limits.gpu_hold_after_stop.source,
                )
            } else {
                (
                    limits.remove_after_stop.value,
                    "removeAfterStop",
                    &limits.remove_after_stop.source,
                )
            };
            if let (Some(limit), Some(finished)) = (limit, subject.finished_at) {
                let deadline = add(finished, limit.std());
                result.upcoming(
                    deadline,
                    "remove",
                    format!("{reason} {limit} from {source}"),
                );
                result.due(deadline, now, Step::Remove { reason, expected });
            }
        }
        ContainerState::Created => {
            if let (Some(limit), Some(created)) = (limits.created_timeout.value, subject.created_at)
            {
                let deadline = add(created, limit.std());
                result.upcoming(
                    deadline,
                    "remove",
                    format!(
                        "createdTimeout {limit} from {}",
                        limits.created_timeout.source
                    ),
                );
                result.due(
                    deadline,
                    now,
                    Step::Remove {
                        reason: "createdTimeout",
                        expected,
                    },
                );
            }
        }
        _ => {}
    }
    result.upcoming.sort_by_key(|upcoming| upcoming.at);
    result
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "plan_more_tests.rs"]
mod more_tests;
