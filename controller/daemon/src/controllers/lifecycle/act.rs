//! Carrying out one container's plan: warnings (terminals and the alert file), stops, removals,
//! exemption reports, each recorded as a `lifecycle.*` event with the limit, its source and the
//! signals it was based on.

use ds01_host::docker::DockerClient;
use ds01_spec::EventType;
use ds01_spec::{ContainerLifecyclePolicySpec, resolve};
use serde_json::json;

use super::{
    executor::LifecycleContext,
    notify,
    plan::{Plan, Step},
};
use crate::inventory::ContainerRecord;

fn message(record: &ContainerRecord, what: &str, when: jiff::Timestamp, why: &str) -> String {
    format!(
        "[ds01] WARNING for container {} ({}): it will be {what} at {when:.0} because {why}. To keep it, touch the keep-alive file inside it (idle limit only) or ask an admin for an exemption.",
        record.info.name,
        record.info.short_id()
    )
}

/// One container's decision with what it was based on.
pub(super) struct Acting<'a> {
    /// The container's key in the state file.
    pub(super) key: &'a str,
    pub(super) record: &'a ContainerRecord,
    pub(super) limits: &'a resolve::ResolvedLimits,
    pub(super) sample: &'a super::plan::Sample,
    pub(super) decided: &'a Plan,
    pub(super) dry_run: bool,
}

pub(super) async fn execute(
    context: &std::sync::Arc<LifecycleContext>,
    client: &DockerClient,
    spec: &ContainerLifecyclePolicySpec,
    acting: &Acting<'_>,
) {
    let Acting {
        key,
        record,
        limits,
        sample,
        decided,
        dry_run,
    } = *acting;
    let base = |extra: serde_json::Value| {
        let mut details = json!({
            "container": record.info.name,
            "container_id": record.info.short_id(),
            "origin": record.origin,
            "signals": { "gpu": sample.gpu, "cpu": sample.cpu, "network_bytes": sample.network, "keep_alive": sample.keep_alive },
        });
        if let (serde_json::Value::Object(target), serde_json::Value::Object(more)) =
            (&mut details, extra)
        {
            target.extend(more);
        }
        if dry_run {
            details["dry_run"] = json!(true);
        }
        details
    };
    let user = Some(record.user.as_str());
    for step in &decided.steps {
        match step {
            Step::ReportExempt => {
                let exemptions: Vec<_> = limits.exemptions.iter().map(|exemption| json!({ "from": exemption.exempt_from, "reason": exemption.reason, "expires": exemption.expires })).collect();
                context.recorder.emit(
                    EventType::Exempt,
                    user,
                    base(json!({ "exemptions": exemptions })),
                );
            }
            Step::Warn {
                kind,
                percent,
                deadline,
            } => {
                let (limit, source, verb) = if *kind == "idle" {
                    (
                        limits.idle_timeout.value,
                        &limits.idle_timeout.source,
                        if limits.on_idle.value == ds01_spec::OnIdle::StopAndRemove {
                            "stopped and removed"
                        } else {
                            "stopped"
                        },
                    )
                } else {
                    (
                        limits.max_runtime.value,
                        &limits.max_runtime.source,
                        "stopped",
                    )
                };
                let why = format!(
                    "it reached {percent}% of its {kind} limit {} (from {source})",
                    limit.map(|limit| limit.to_string()).unwrap_or_default()
                );
                let text = message(record, verb, *deadline, &why);
                let event = if *kind == "idle" {
                    EventType::IdleWarning
                } else {
                    EventType::RuntimeWarning
                };
                let details = base(
                    json!({ "percent": percent, "limit": limit.map(|limit| limit.to_string()), "source": source.to_string(), "deadline": format!("{deadline:.3}") }),
                );
                if dry_run {
                    context.recorder.emit(event, user, details);
                    continue;
                }
                // Delivery (an exec into the container, terminals) runs in the background so
                // it never delays another container's deadline; the warning is already
                // remembered as sent.
                let context = context.clone();
                let client = client.clone();
                let record = record.clone();
                let file = spec.notify.container_file.clone();
                let tty = spec.notify.tty;
                tokio::spawn(async move {
                    let terminals = if tty {
                        notify::to_terminals(&record.user, &text)
                    } else {
                        0
                    };
                    let file = notify::to_container(&client, &record, &file, &text).await;
                    if file == Ok(notify::Delivery::Exec) {
                        // The exec used the container's CPU: that is not the owner's activity.
                        context
                            .sampler
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .rebaseline(&record.info.id);
                    }
                    let mut details = details;
                    details["delivered"] = json!({ "terminals": terminals, "alert_file": file.err().unwrap_or_else(|| "appended".to_owned()) });
                    context.recorder.emit(event, Some(&record.user), details);
                });
            }
            Step::Stop {
                reason,
                remove,
                deadline,
            } => {
                let (limit, source) = if *reason == "idle" {
                    (limits.idle_timeout.value, &limits.idle_timeout.source)
                } else {
                    (limits.max_runtime.value, &limits.max_runtime.source)
                };
                let event = if *reason == "idle" {
                    EventType::IdleStop
                } else {
                    EventType::RuntimeStop
                };
                let issued_at = format!("{:.3}", jiff::Timestamp::now());
                let details = base(
                    json!({ "limit": limit.map(|limit| limit.to_string()), "source": source.to_string(), "grace": limits.stop_grace_period.value.to_string(), "deadline": format!("{deadline:.3}"), "issued_at": issued_at }),
                );
                if dry_run {
                    let mut details = details;
                    details["outcome"] = json!("stopped");
                    context.recorder.emit(event, user, details);
                    continue;
                }
                // The grace period runs in the background, so one container's stop never delays
                // another's deadline; the pass skips it until the stop is over.
                let id = record.info.id.clone();
                if !context.stopping.begin(&id) {
                    continue;
                }
                // Remembered before it is issued, so a crash before the event is written
                // leaves it for the next controller to record (ledger).
                if let Err(error) =
                    super::ledger::begin(context, key, event, &record.user, &details)
                {
                    tracing::warn!(%error, container = %record.info.name, "cannot remember the stop; held back");
                    context.stopping.end(&id);
                    continue;
                }
                let context = context.clone();
                let client = client.clone();
                let grace = limits.stop_grace_period.value.std();
                let remove = *remove;
                let user = user.map(str::to_owned);
                let key = key.to_owned();
                tokio::spawn(async move {
                    let outcome = stop(&client, &id, grace, remove).await;
                    let mut details = details;
                    details["outcome"] = json!(outcome);
                    context.recorder.emit(event, user.as_deref(), details);
                    super::ledger::end(&context, &key);
                    context.stopping.end(&id);
                });
            }
            Step::Remove { reason } => {
                let mut outcome = "removed".to_owned();
                if !dry_run && let Err(error) = client.remove(&record.info.id).await {
                    outcome = if error.is_not_found() {
                        "already gone".to_owned()
                    } else {
                        format!("remove failed: {}", ds01_runtime::error_chain(&error))
                    };
                }
                context.recorder.emit(
                    EventType::Removed,
                    user,
                    base(json!({ "reason": reason, "outcome": outcome })),
                );
            }
        }
    }
}

/// SIGTERM, the grace period, SIGKILL (Docker's stop), then remove when asked; "no such
/// container" counts as done. Returns the outcome for the event.
async fn stop(client: &DockerClient, id: &str, grace: std::time::Duration, remove: bool) -> String {
    let mut outcome = match client.stop(id, grace).await {
        Ok(()) => "stopped".to_owned(),
        Err(error) if error.is_not_found() => return "already gone".to_owned(),
        Err(error) => return format!("stop failed: {}", ds01_runtime::error_chain(&error)),
    };
    if remove {
        outcome = match client.remove(id).await {
            Ok(()) => "stopped and removed".to_owned(),
            Err(error) if error.is_not_found() => "stopped and removed".to_owned(),
            Err(error) => format!(
                "stopped; remove failed: {}",
                ds01_runtime::error_chain(&error)
            ),
        };
    }
    outcome
}

/// Containers whose stop is in progress (shared with the background stop tasks).
#[derive(Clone, Debug, Default)]
pub struct Stopping(std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl Stopping {
    /// Marks `id` as being stopped; `false` when it already is.
    pub fn begin(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned())
    }

    /// The stop of `id` is over.
    pub fn end(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }

    /// Whether `id` is being stopped.
    #[must_use]
    pub fn contains(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(id)
    }
}
