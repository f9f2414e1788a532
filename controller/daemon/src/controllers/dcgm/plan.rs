//! The DcgmExporter planner: what to do about the exporter container now, and when to look
//! again — a pure function of what was observed, the spec, the controller's memory and `now`.
//!
//! # Background
//! The controller is the exporter's only restarter (Docker's restart policy is `no`). Missing
//! → create; stopped → start, the first restart at once and then with exponential backoff from
//! `backoffInitial` to `backoffMax` (back to the start after `resetAfter` of health); spec hash
//! differs → recreate; unhealthy `failureThreshold` times in a row (after `startPeriod`) →
//! restart; MIG layout changed → restart. More than `maxRestarts` restarts within `window` is a
//! crash loop: `Degraded` with reason `CrashLoop`, retries continue at `backoffMax`. Nothing is
//! restarted while another GPU maintenance action holds the lock.
//!
//! The exporter is recognised by the container id the controller created (in its memory),
//! never by a label. A same-named container it did not create is a `NameConflict`, or is
//! replaced with `replaceExisting`; one that carries the controller's labels while no id is
//! remembered was made by an earlier version (which knew its exporter by labels only) and is
//! replaced once. A network the spec names that does not exist holds creation back with
//! `NetworkMissing` (no restart is counted).

use ds01_spec::EventType;
use std::time::Duration;

use ds01_spec::DcgmExporterSpec;
use jiff::Timestamp;

pub use super::inputs::{Memory, Observed, ObservedContainer};

/// The action to take now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create and start the container.
    Create,
    /// Start the stopped container.
    Start {
        /// Why.
        reason: String,
    },
    /// Stop (SIGTERM, stopTimeout) and start it again.
    Restart {
        /// Why.
        reason: String,
    },
    /// Stop, remove and create it again (the spec changed).
    Recreate,
    /// Stop and remove a same-named container the controller did not create, create ours.
    Replace {
        /// Why it is taken over.
        reason: String,
    },
}

/// A condition to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human sentence.
    pub message: String,
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Act now, if anything.
    pub step: Option<Step>,
    /// Look again after this long.
    pub requeue_after: Duration,
    /// `Ready`.
    pub ready: Condition,
    /// `Degraded`.
    pub degraded: Condition,
    /// The memory after this decision (the executor stores it after acting).
    pub memory: Memory,
    /// Events to emit: (type, message).
    pub events: Vec<(EventType, String)>,
}

fn condition(status: &'static str, reason: &'static str, message: impl Into<String>) -> Condition {
    Condition {
        status,
        reason,
        message: message.into(),
    }
}

fn backoff(spec: &DcgmExporterSpec, attempt: u32) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
    spec.restart
        .backoff_initial
        .std()
        .saturating_mul(factor)
        .min(spec.restart.backoff_max.std())
}

fn add(now: Timestamp, delay: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(delay)
        .ok()
        .and_then(|delay| now.checked_add(delay).ok())
        .unwrap_or(now)
}

fn until(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(then.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// Decides.
#[must_use]
pub fn plan(observed: &Observed, spec: &DcgmExporterSpec, memory: &Memory, now: Timestamp) -> Plan {
    let mut memory = memory.clone();
    let window_start = now
        .checked_sub(jiff::SignedDuration::try_from(spec.restart.window.std()).unwrap_or_default())
        .unwrap_or(now);
    memory.restarts.retain(|at| *at > window_start);
    let crash_loop = memory.restarts.len() > spec.restart.max_restarts as usize;
    let degraded = if crash_loop {
        condition(
            "True",
            "CrashLoop",
            format!(
                "{} restarts within {}; retrying every {}",
                memory.restarts.len(),
                spec.restart.window,
                spec.restart.backoff_max
            ),
        )
    } else {
        condition("False", "AsExpected", "")
    };
    let interval = spec.health.interval.std();
    let mut result = Plan {
        step: None,
        requeue_after: interval,
        ready: condition("Unknown", "Pending", ""),
        degraded,
        memory,
        events: Vec::new(),
    };

    if spec.require_gpus && observed.gpus.as_ref().is_some_and(Vec::is_empty) {
        result.ready = condition(
            "False",
            "NoGpus",
            "NVML reports no GPU and requireGpus is set: the exporter is not run",
        );
        return result;
    }
    let Some(container) = &observed.container else {
        if let Some(held) = network_missing(&mut result, observed, spec) {
            return held;
        }
        return restart_or_wait(result, spec, now, Step::Create, "missing");
    };
    let remembered = result.memory.container_id.as_deref();
    if remembered != Some(container.id.as_str()) {
        let reason = if remembered.is_none() && container.labelled_ours {
            "it carries the controller's labels but no id is remembered for it (made by an earlier version)"
        } else if spec.replace_existing {
            "replaceExisting: a container the controller did not create had the name"
        } else {
            result.ready = condition(
                "False",
                "NameConflict",
                format!(
                    "a container named {name} ({id}) exists that the controller did not create; remove it (`docker stop -t {grace} {name} && docker rm {name}`) or set spec.replaceExisting: true to have it replaced",
                    name = spec.container_name,
                    id = container.id.get(..12).unwrap_or(&container.id),
                    grace = spec.stop_timeout.std().as_secs(),
                ),
            );
            return result;
        };
        if observed.maintenance_busy {
            return maintenance_wait(result);
        }
        if let Some(held) = network_missing(&mut result, observed, spec) {
            return held;
        }
        result.step = Some(Step::Replace {
            reason: reason.to_owned(),
        });
        result.ready = condition(
            "False",
            "Replacing",
            format!("replacing {}: {reason}", spec.container_name),
        );
        result.requeue_after = Duration::from_secs(1);
        return result;
    }
    if container.spec_hash.as_deref() != Some(observed.desired_hash.as_str()) {
        if observed.maintenance_busy {
            return maintenance_wait(result);
        }
        if let Some(held) = network_missing(&mut result, observed, spec) {
            return held;
        }
        result.step = Some(Step::Recreate);
        result.ready = condition(
            "False",
            "Updating",
            "the spec changed: recreating the exporter",
        );
        result.requeue_after = Duration::from_secs(1);
        return result;
    }
    if !container.state.is_live() {
        let reason = format!("container {}", container.state.as_str());
        return restart_or_wait(
            result,
            spec,
            now,
            Step::Start {
                reason: reason.clone(),
            },
            &reason,
        );
    }
    if result
        .memory
        .mig_layout
        .as_deref()
        .is_some_and(|layout| layout != observed.mig_layout)
    {
        if observed.maintenance_busy {
            return maintenance_wait(result);
        }
        result.memory.mig_layout = Some(observed.mig_layout.clone());
        result.step = Some(Step::Restart {
            reason: "the MIG layout changed".to_owned(),
        });
        result.ready = condition(
            "False",
            "MigLayoutChanged",
            "restarting the exporter for the new MIG layout",
        );
        result.requeue_after = Duration::from_secs(1);
        return result;
    }
    result.memory.mig_layout = Some(observed.mig_layout.clone());
    let in_start_period = container.started_at.is_some_and(|started| {
        until(started, now) < spec.health.start_period.std() && started <= now
    });
    match &observed.probe {
        Some(Ok(())) => {
            if std::mem::take(&mut result.memory.unhealthy_reported) {
                result.events.push((
                    EventType::DcgmRecovered,
                    "the exporter answers and reports every GPU again".to_owned(),
                ));
            }
            result.memory.consecutive_failures = 0;
            result.memory.last_healthy = Some(now);
            let since = *result.memory.healthy_since.get_or_insert(now);
            if until(since, now) >= spec.restart.reset_after.std() {
                result.memory.attempt = 0;
                result.memory.not_before = None;
            }
            result.ready = condition(
                "True",
                "Healthy",
                format!("serving {} with every GPU", spec.health.path),
            );
        }
        Some(Err(why)) => {
            result.memory.healthy_since = None;
            result.memory.last_failure = Some(why.clone());
            if in_start_period {
                result.ready = condition(
                    "False",
                    "Starting",
                    format!(
                        "not healthy yet ({why}); within startPeriod {}",
                        spec.health.start_period
                    ),
                );
            } else {
                result.memory.consecutive_failures += 1;
                result.ready = condition(
                    "False",
                    "Unhealthy",
                    format!(
                        "{why} ({} of {} failures)",
                        result.memory.consecutive_failures, spec.health.failure_threshold
                    ),
                );
                if result.memory.consecutive_failures >= spec.health.failure_threshold {
                    if observed.maintenance_busy {
                        return maintenance_wait(result);
                    }
                    result.events.push((EventType::DcgmUnhealthy, why.clone()));
                    result.memory.unhealthy_reported = true;
                    result.memory.consecutive_failures = 0;
                    return restart_or_wait(
                        result,
                        spec,
                        now,
                        Step::Restart {
                            reason: format!("unhealthy: {why}"),
                        },
                        "unhealthy",
                    );
                }
            }
        }
        None => {
            result.ready = condition("Unknown", "Probing", "waiting for the first health probe")
        }
    }
    result
}

/// Holds a create back while a network the spec names is missing: a condition that says which
/// and how to fix it, retried at `backoffInitial`, never counted as a restart.
fn network_missing(
    result: &mut Plan,
    observed: &Observed,
    spec: &DcgmExporterSpec,
) -> Option<Plan> {
    if observed.missing_networks.is_empty() {
        return None;
    }
    let names = observed.missing_networks.join(", ");
    result.ready = condition(
        "False",
        "NetworkMissing",
        format!(
            "Docker has no network {names}; create it (`docker network create {}`) or remove it from spec.networks",
            observed.missing_networks.join(" && docker network create ")
        ),
    );
    result.requeue_after = spec
        .restart
        .backoff_initial
        .std()
        .min(spec.health.interval.std());
    Some(result.clone())
}

fn maintenance_wait(mut result: Plan) -> Plan {
    result.ready = condition(
        "False",
        "GpuMaintenance",
        "another GPU maintenance action is running; the exporter waits for it",
    );
    result.requeue_after = Duration::from_secs(1);
    result
}

/// Acts now if the backoff allows, else waits for it.
fn restart_or_wait(
    mut result: Plan,
    spec: &DcgmExporterSpec,
    now: Timestamp,
    step: Step,
    why: &str,
) -> Plan {
    if let Some(not_before) = result.memory.not_before.filter(|at| *at > now) {
        let failed = result
            .memory
            .last_error
            .as_deref()
            .map(|error| format!("; the last attempt failed: {error}"))
            .unwrap_or_default();
        result.ready = condition(
            "False",
            "BackOff",
            format!("{why}{failed}; next attempt at {not_before:.0}"),
        );
        result.requeue_after = until(now, not_before);
        return result;
    }
    // A first create is not a restart; creating again after the container vanished is.
    let is_restart = !matches!(step, Step::Create)
        || result.memory.last_failure.is_some()
        || result.memory.last_healthy.is_some();
    if is_restart {
        result.memory.restarts.push(now);
        if result.memory.restarts.len() > spec.restart.max_restarts as usize
            && result.degraded.reason != "CrashLoop"
        {
            let message = format!(
                "{} restarts within {}; retrying every {}",
                result.memory.restarts.len(),
                spec.restart.window,
                spec.restart.backoff_max
            );
            result
                .events
                .push((EventType::DcgmCrashloop, message.clone()));
            result.degraded = condition("True", "CrashLoop", message);
        }
        let delay = if result.degraded.reason == "CrashLoop" {
            spec.restart.backoff_max.std()
        } else {
            backoff(spec, result.memory.attempt + 1)
        };
        result.memory.attempt = result.memory.attempt.saturating_add(1);
        result.memory.not_before = Some(add(now, delay));
        result.memory.last_failure = Some(why.to_owned());
    }
    result.memory.healthy_since = None;
    result.ready = condition("False", "Starting", format!("{why}: acting now"));
    result.step = Some(step);
    result.requeue_after = Duration::from_secs(1).min(spec.health.interval.std());
    result
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
