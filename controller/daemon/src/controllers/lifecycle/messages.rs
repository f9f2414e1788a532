//! The words a container's owner reads: what will happen (or happened), when — in the server's
//! local time — why (the limit and where it comes from) and what they can do about it.

use ds01_spec::resolve::ResolvedLimits;
use jiff::{Timestamp, tz::TimeZone};

use super::plan::{LimitKind, WarnTrigger};
use crate::inventory::ContainerRecord;

/// A time as the server's clock shows it (`2026-12-03 14:05 CET`).
#[must_use]
pub fn local(at: Timestamp) -> String {
    at.to_zoned(TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// "in 14 min", "in 2 h 5 min", "now".
fn from_now(at: Timestamp, now: Timestamp) -> String {
    let seconds = at.duration_since(now).as_secs();
    if seconds <= 0 {
        return "now".to_owned();
    }
    if seconds < 60 {
        return format!("in {seconds} s");
    }
    let minutes = (seconds + 59) / 60;
    if minutes < 60 {
        format!("in {minutes} min")
    } else {
        format!("in {} h {} min", minutes / 60, minutes % 60)
    }
}

fn who(record: &ContainerRecord) -> String {
    format!(
        "container {} ({})",
        record.info.name,
        record.info.short_id()
    )
}

/// The limit in force, in words, with its source (and the high-demand factor when it applies).
fn limit_text(kind: LimitKind, limits: &ResolvedLimits, idle_factor: f64) -> String {
    match kind {
        LimitKind::Idle => {
            let configured = limits.idle_timeout.value.unwrap_or_default();
            let factor = idle_factor.clamp(0.0, 1.0);
            if factor < 1.0 {
                format!(
                    "the idle limit of {} (idleTimeout {configured} from {}, × {factor} while the GPUs are in high demand)",
                    ds01_spec::Duration::from(configured.std().mul_f64(factor)),
                    limits.idle_timeout.source
                )
            } else {
                format!(
                    "the idle limit of {configured} (idleTimeout from {})",
                    limits.idle_timeout.source
                )
            }
        }
        LimitKind::Runtime => format!(
            "the runtime limit of {} (maxRuntime from {})",
            limits.max_runtime.value.unwrap_or_default(),
            limits.max_runtime.source
        ),
    }
}

/// What the owner can do before an action of `kind`.
fn advice(kind: LimitKind, keep_alive_file: &str, keep_alive_age: ds01_spec::Duration) -> String {
    match kind {
        LimitKind::Idle => format!(
            "To keep it, use it, or run `touch {keep_alive_file}` inside it (holds off idle stops for {keep_alive_age}). Save your work now; if you need it idle longer, ask an admin for an exemption."
        ),
        LimitKind::Runtime => {
            "Save your work now. If you need longer runs, ask an admin for an exemption.".to_owned()
        }
    }
}

/// Everything a warning says.
#[derive(Clone, Debug)]
pub struct Warning<'a> {
    /// The container.
    pub record: &'a ContainerRecord,
    /// Its limits with their sources.
    pub limits: &'a ResolvedLimits,
    /// The high-demand factor applied to idle timeouts (1 when demand is normal).
    pub idle_factor: f64,
    /// Which limit.
    pub kind: LimitKind,
    /// What set it off.
    pub trigger: WarnTrigger,
    /// When the action happens.
    pub deadline: Timestamp,
    /// The policy's keep-alive file and its `maxAge`.
    pub keep_alive: (&'a str, ds01_spec::Duration),
    /// Now.
    pub now: Timestamp,
}

/// A warning before a stop: what will happen, when (local time, and how soon), why (the limit
/// and its source) and what the owner can do.
#[must_use]
pub fn warning(facts: &Warning<'_>) -> String {
    let remove = facts.kind == LimitKind::Idle
        && facts.limits.on_idle.value == ds01_spec::OnIdle::StopAndRemove;
    let action = if remove {
        "stopped and removed"
    } else {
        "stopped"
    };
    let limit = limit_text(facts.kind, facts.limits, facts.idle_factor);
    let why = match (facts.trigger, facts.kind) {
        (WarnTrigger::Percent(percent), _) => format!("it has reached {percent}% of {limit}"),
        (WarnTrigger::Before(_), LimitKind::Idle) => {
            format!("it will then have been idle for {limit}")
        }
        (WarnTrigger::Before(_), LimitKind::Runtime) => {
            format!("it will then have run for {limit}")
        }
    };
    format!(
        "[ds01] WARNING: {} will be {action} at {} ({}) because {why}. {}",
        who(facts.record),
        local(facts.deadline),
        from_now(facts.deadline, facts.now),
        advice(facts.kind, facts.keep_alive.0, facts.keep_alive.1)
    )
}

/// The notice after a stop.
#[must_use]
pub fn stopped(record: &ContainerRecord, why: &str, removed: bool, at: Timestamp) -> String {
    let restart = if removed {
        "It was removed as well: files in its mounted directories are kept; create it again as you did before."
            .to_owned()
    } else {
        format!(
            "Files in it are kept; restart it with `docker start {}` when you need it again.",
            record.info.name
        )
    };
    format!(
        "[ds01] STOPPED: {} was stopped{} at {} because {why}. {restart}",
        who(record),
        if removed { " and removed" } else { "" },
        local(at)
    )
}

/// Why a policy stopped a container, in words.
#[must_use]
pub fn stop_reason(kind: LimitKind, limits: &ResolvedLimits, idle_factor: f64) -> String {
    let limit = limit_text(kind, limits, idle_factor);
    match kind {
        LimitKind::Idle => format!("it was idle for {limit}"),
        LimitKind::Runtime => format!("it reached {limit}"),
    }
}

/// Why an admin stopped a container (`ds01ctl stop --reason`), in words.
#[must_use]
pub fn manual_stop_reason(admin: &str, reason: &str) -> String {
    format!("an administrator ({admin}) stopped it: {reason}")
}

/// The one notice per episode an exempt owner gets instead of a stop.
#[must_use]
pub fn exempt(record: &ContainerRecord, kind: LimitKind, limits: &ResolvedLimits) -> String {
    let (what, lifted) = match kind {
        LimitKind::Idle => ("been idle for", limits.lifted_idle_timeout),
        LimitKind::Runtime => ("run for", limits.lifted_max_runtime),
    };
    let exemption = limits
        .exemptions
        .iter()
        .find(|exemption| {
            exemption.exempt_from.iter().any(|from| {
                matches!(
                    (from, kind),
                    (ds01_spec::ExemptFrom::Idle, LimitKind::Idle)
                        | (ds01_spec::ExemptFrom::Runtime, LimitKind::Runtime)
                )
            })
        })
        .map(|exemption| {
            let until = exemption.expires.map_or_else(
                || "with no end date".to_owned(),
                |at| format!("until {}", local(at)),
            );
            format!("{} ({until})", exemption.reason)
        })
        .unwrap_or_default();
    format!(
        "[ds01] NOTICE: {} has {what} {}, the limit that would apply, but you are exempt: {exemption}. Nothing will be done; please stop it when you no longer need it.",
        who(record),
        lifted.map(|limit| limit.to_string()).unwrap_or_default()
    )
}

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;
