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

fn limit_text(kind: LimitKind, limits: &ResolvedLimits) -> String {
    match kind {
        LimitKind::Idle => format!(
            "the idle limit of {} (idleTimeout from {})",
            limits
                .idle_timeout
                .value
                .map(|limit| limit.to_string())
                .unwrap_or_default(),
            limits.idle_timeout.source
        ),
        LimitKind::Runtime => format!(
            "the runtime limit of {} (maxRuntime from {})",
            limits
                .max_runtime
                .value
                .map(|limit| limit.to_string())
                .unwrap_or_default(),
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

/// A warning before a stop.
#[expect(
    clippy::too_many_arguments,
    reason = "every part of the message comes from a different place"
)]
#[must_use]
pub fn warning(
    record: &ContainerRecord,
    kind: LimitKind,
    trigger: WarnTrigger,
    deadline: Timestamp,
    remove: bool,
    limits: &ResolvedLimits,
    keep_alive: (&str, ds01_spec::Duration),
    now: Timestamp,
) -> String {
    let action = if remove {
        "stopped and removed"
    } else {
        "stopped"
    };
    let reached = match trigger {
        WarnTrigger::Percent(percent) => {
            format!("it has reached {percent}% of {}", limit_text(kind, limits))
        }
        WarnTrigger::Before(_) => format!("of {}", limit_text(kind, limits)),
    };
    format!(
        "[ds01] WARNING: {} will be {action} at {} ({}) because {reached}. {}",
        who(record),
        local(deadline),
        from_now(deadline, now),
        advice(kind, keep_alive.0, keep_alive.1)
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
pub fn stop_reason(kind: LimitKind, limits: &ResolvedLimits) -> String {
    match kind {
        LimitKind::Idle => format!("it was idle for {}", limit_text(kind, limits)),
        LimitKind::Runtime => format!("it reached {}", limit_text(kind, limits)),
    }
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
