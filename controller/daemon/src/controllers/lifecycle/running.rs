//! The planner's part for a running container: its runtime deadline and its idle episode.

use std::time::Duration;

use ds01_spec::{OnIdle, resolve::ResolvedLimits};
use jiff::Timestamp;

use super::{
    decision::{Plan, Sample, Step, Subject, Upcoming, add, idle_action},
    memory::LimitKind,
};

/// Why a sample does not count as idle: an active signal, or unknown ones.
enum Reading {
    Idle,
    Active,
    KeptAlive,
    Unknown(Vec<&'static str>),
}

fn read(subject: &Subject, limits: &ResolvedLimits, sample: &Sample) -> Reading {
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
    if active {
        return Reading::Active;
    }
    if sample.keep_alive {
        return Reading::KeptAlive;
    }
    let unknown: Vec<&'static str> = [
        ("gpu", subject.has_gpu && sample.gpu.is_none()),
        ("cpu", sample.cpu.is_none()),
        ("network", sample.network.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, missing)| missing.then_some(name))
    .collect();
    if unknown.is_empty() {
        Reading::Idle
    } else {
        Reading::Unknown(unknown)
    }
}

/// The idle timeout in force (scaled by the high-demand factor) and how to say it.
fn idle_timeout(limits: &ResolvedLimits, idle_factor: f64) -> Option<(Duration, String)> {
    let limit = limits.idle_timeout.value?;
    let factor = idle_factor.clamp(0.0, 1.0);
    let scaled = limit.std().mul_f64(factor);
    let mut reason = format!("idleTimeout {limit} from {}", limits.idle_timeout.source);
    if factor < 1.0 {
        reason.push_str(&format!(
            " × {factor} while GPUs are in high demand = {}",
            ds01_spec::Duration::from(scaled)
        ));
    }
    Some((scaled, reason))
}

/// Plans a running container.
pub(super) fn plan_running(
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
    if result.memory.run != Some(started) {
        result.memory.begin_run(started);
    }
    if runtime(limits, started, now, result) {
        return;
    }
    let grace_end = add(started, limits.startup_grace.value.std());
    let timeout = idle_timeout(limits, idle_factor);
    let project = |result: &mut Plan, from: Timestamp, assuming: &'static str| {
        if let Some((timeout, reason)) = &timeout {
            result.upcoming.push(Upcoming {
                at: add(from, *timeout),
                action: idle_action(limits),
                reason: reason.clone(),
                assuming: Some(assuming),
            });
        }
    };
    if now < grace_end {
        result.note = Some(format!(
            "within startupGrace ({})",
            limits.startup_grace.value
        ));
        result.memory.end_episode();
        project(result, grace_end, "if idle from the end of startupGrace on");
        result.wake_at(grace_end);
        return;
    }
    match read(subject, limits, sample) {
        Reading::Active | Reading::KeptAlive => {
            if sample.keep_alive {
                result.note = Some("a fresh keep-alive file holds off idle stops".to_owned());
            }
            result.memory.end_episode();
            project(result, now, "if idle from now on");
            return;
        }
        Reading::Unknown(unknown) => {
            // Missing data decides nothing: the episode neither advances to an action nor ends.
            result.note = Some(format!(
                "signal unknown: {} (never counted as idle)",
                unknown.join(", ")
            ));
            let (from, assuming) = result
                .memory
                .idle_since
                .map_or((now, "if idle from now on"), |since| {
                    (since, "if idle since then")
                });
            project(result, from, assuming);
            return;
        }
        Reading::Idle => {}
    }
    result.idle = true;
    let since = *result
        .memory
        .idle_since
        .get_or_insert(sample.window_start.unwrap_or(now).max(grace_end));
    let Some((timeout, reason)) = timeout else {
        if let Some(lifted) = limits.lifted_idle_timeout {
            exempt_notice(result, LimitKind::Idle, add(since, lifted.std()), now);
        }
        return;
    };
    let deadline = add(since, timeout);
    result.upcoming(deadline, idle_action(limits), reason);
    if now >= deadline {
        result.steps.push(Step::Stop {
            reason: LimitKind::Idle,
            remove: limits.on_idle.value == OnIdle::StopAndRemove,
            deadline,
        });
        return;
    }
    let mut sent = std::mem::take(&mut result.memory.idle_warned);
    let mut sent_before = std::mem::take(&mut result.memory.idle_warned_before);
    result.warnings(
        LimitKind::Idle,
        since,
        timeout,
        (&limits.warn_at_idle.value, &limits.warn_before_idle.value),
        (&mut sent, &mut sent_before),
        deadline,
        now,
    );
    result.memory.idle_warned = sent;
    result.memory.idle_warned_before = sent_before;
}

/// The runtime limit: warnings once per run, the stop at the deadline itself. Returns whether
/// the stop is due (nothing else is planned then).
fn runtime(limits: &ResolvedLimits, started: Timestamp, now: Timestamp, result: &mut Plan) -> bool {
    let Some(max_runtime) = limits.max_runtime.value else {
        if let Some(lifted) = limits.lifted_max_runtime {
            exempt_notice(result, LimitKind::Runtime, add(started, lifted.std()), now);
        }
        return false;
    };
    let deadline = add(started, max_runtime.std());
    result.upcoming(
        deadline,
        "stop",
        format!(
            "maxRuntime {max_runtime} from {}",
            limits.max_runtime.source
        ),
    );
    if now >= deadline {
        result.steps.push(Step::Stop {
            reason: LimitKind::Runtime,
            remove: false,
            deadline,
        });
        return true;
    }
    let mut sent = std::mem::take(&mut result.memory.runtime_warned);
    let mut sent_before = std::mem::take(&mut result.memory.runtime_warned_before);
    result.warnings(
        LimitKind::Runtime,
        started,
        max_runtime.std(),
        (
            &limits.warn_at_runtime.value,
            &limits.warn_before_runtime.value,
        ),
        (&mut sent, &mut sent_before),
        deadline,
        now,
    );
    result.memory.runtime_warned = sent;
    result.memory.runtime_warned_before = sent_before;
    false
}

/// An exempt owner is told once per episode (idle) or run (runtime) when the lifted limit
/// would have applied.
fn exempt_notice(result: &mut Plan, kind: LimitKind, would_apply: Timestamp, now: Timestamp) {
    let noticed = match kind {
        LimitKind::Idle => &mut result.memory.idle_exempt_noticed,
        LimitKind::Runtime => &mut result.memory.runtime_exempt_noticed,
    };
    if now < would_apply {
        result.wake_at(would_apply);
    } else if !*noticed {
        *noticed = true;
        result.steps.push(Step::ExemptNotice { kind });
    }
}
