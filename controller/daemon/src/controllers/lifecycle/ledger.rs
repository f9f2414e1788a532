//! Stops issued but not yet recorded: the stop's event is remembered in the state file before
//! the stop goes to Docker and forgotten once it is in the event log. A controller killed in
//! between leaves it behind, and the next one writes it — so a stop that happened is never
//! missing from the log, and one that did not happen is decided again, never reported.

use std::collections::HashSet;

use serde_json::json;

use super::{
    context::LifecycleContext,
    plan::{Memory, UnrecordedStop},
};

/// Ledger keys of manual stops (a policy's keys start with its name, a DNS label, never `@`).
pub const MANUAL_KEY_PREFIX: &str = "@manual/";

/// Remembers a stop's event before the stop is issued.
///
/// # Errors
/// When the state file cannot be written: the stop must then not be issued.
pub fn begin<E>(
    context: &LifecycleContext<E>,
    key: &str,
    event: ds01_spec::EventType,
    user: &str,
    details: &serde_json::Value,
) -> std::io::Result<()> {
    let mut memory: Memory = context.state.get(key).unwrap_or_default();
    memory.unrecorded_stop = Some(UnrecordedStop {
        event,
        user: user.to_owned(),
        details: details.clone(),
    });
    context.state.set(key, &memory)
}

/// Forgets a stop whose event was written.
pub fn end<E>(context: &LifecycleContext<E>, key: &str) {
    let Some(mut memory) = context.state.get(key) else {
        return;
    };
    if memory.unrecorded_stop.take().is_none() {
        return;
    }
    // Nothing else remembered (a manual stop's key): the key goes.
    let forgotten = if memory == Memory::default() {
        context.state.remove(key)
    } else {
        context.state.set(key, &memory)
    };
    if let Err(error) = forgotten {
        tracing::warn!(%error, key, "cannot forget a recorded stop");
    }
}

/// How much of the end of the event log is searched for an event already written.
const TAIL_BYTES: u64 = 1 << 20;

/// Whether the killed controller wrote the event after all (it was killed between writing it
/// and forgetting it): the same event, container and issue time in the log's last MiB.
fn already_written<E>(context: &LifecycleContext<E>, stop: &UnrecordedStop) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Some(path) = context.recorder.log_path() else {
        return false;
    };
    let needles = [
        format!("\"event_type\":\"{}\"", stop.event),
        format!("\"container_id\":{}", stop.details["container_id"]),
        format!("\"issued_at\":{}", stop.details["issued_at"]),
    ];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let length = file.metadata().map_or(0, |metadata| metadata.len());
    let mut tail = Vec::new();
    if file
        .seek(SeekFrom::Start(length.saturating_sub(TAIL_BYTES)))
        .and_then(|_| file.take(TAIL_BYTES).read_to_end(&mut tail))
        .is_err()
    {
        return false;
    }
    String::from_utf8_lossy(&tail)
        .lines()
        .any(|line| needles.iter().all(|needle| line.contains(needle.as_str())))
}

fn write<E>(context: &LifecycleContext<E>, stop: UnrecordedStop, outcome: &str) {
    if already_written(context, &stop) {
        return;
    }
    let mut details = stop.details;
    details["outcome"] = json!(outcome);
    details["recorded_after_restart"] = json!(true);
    context.recorder.emit(stop.event, Some(&stop.user), details);
}

/// Settles a stop a previous controller left unrecorded, before this pass plans the container:
/// a container no longer live was stopped, so the event is written now; a live one was not,
/// and the plan decides its stop again.
pub fn settle<E>(context: &LifecycleContext<E>, memory: &mut Memory, live: bool) {
    if let Some(stop) = memory.unrecorded_stop.take()
        && !live
    {
        write(context, stop, "stopped");
    }
}

/// Forgets what this policy remembered of containers that no longer exist, writing the event
/// of a stop left unrecorded (the container went, so the stop happened).
pub fn forget_gone<E>(context: &LifecycleContext<E>, policy: &str, present: &HashSet<&str>) {
    let prefix = format!("{policy}/");
    let gone: Vec<String> = context
        .state
        .keys()
        .into_iter()
        .filter(|key| {
            key.strip_prefix(&prefix)
                .is_some_and(|id| !present.contains(id) && !context.stopping.contains(id))
        })
        .collect();
    if gone.is_empty() {
        return;
    }
    for key in &gone {
        if let Some(stop) = context
            .state
            .get(key)
            .and_then(|memory| memory.unrecorded_stop)
        {
            write(
                context,
                stop,
                "stopped; the container was gone when this was recorded",
            );
        }
    }
    // One write for all of them: after an upgrade there can be thousands.
    let keys: Vec<&str> = gone.iter().map(String::as_str).collect();
    if let Err(error) = context.state.remove_all(&keys) {
        tracing::warn!(%error, "cannot forget removed containers' timers");
    }
}

/// Settles the manual stops (`keys`, see `manual`) a previous controller left unrecorded,
/// from the inventory as Docker lists it now: a container no longer live was stopped, so its
/// event is written; a live one was not, and its record is dropped (the admin may stop it
/// again). Stops in progress in this controller are left alone.
pub fn settle_manual<E>(context: &LifecycleContext<E>, keys: &[String]) {
    let mut settled = Vec::new();
    for key in keys {
        let Some(id) = key.strip_prefix(MANUAL_KEY_PREFIX) else {
            continue;
        };
        if context.stopping.contains(id) {
            continue;
        }
        let live = context
            .inventory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .containers
            .get(id)
            .map(|record| record.info.state.is_live());
        if let Some(stop) = context
            .state
            .get(key)
            .and_then(|memory| memory.unrecorded_stop)
        {
            match live {
                Some(true) => {
                    tracing::warn!(
                        key,
                        "a manual stop a previous controller issued did not take effect; not recorded"
                    );
                }
                Some(false) => write(context, stop, "stopped"),
                None => write(
                    context,
                    stop,
                    "stopped; the container was gone when this was recorded",
                ),
            }
        }
        settled.push(key.as_str());
    }
    if let Err(error) = context.state.remove_all(&settled) {
        tracing::warn!(%error, "cannot forget settled manual stops");
    }
}
