//! Carrying out one container's decision: warnings and notices (terminals and the alert file),
//! stops (with a notice afterwards), removals (re-checked right before), exemption reports —
//! each recorded as a `lifecycle.*` event with the limit, its source and the signals it was
//! based on. Slow effects run as tracked background tasks.

use std::sync::Arc;

use ds01_host::docker::RemoveOptions;
use ds01_spec::{ContainerLifecyclePolicySpec, EventType};
use serde_json::{Value, json};

use super::{
    context::LifecycleContext,
    messages,
    pass::Decision,
    plan::{Expected, LimitKind, Step, WarnTrigger},
    stop::{StopOrder, stop_in_background},
};
use crate::controllers::engine::ContainerEngine;

/// Details every event of a container carries.
fn base(decision: &Decision, dry_run: bool, extra: Value) -> Value {
    let record = &decision.record;
    let sample = &decision.sample;
    let mut details = json!({
        "container": record.info.name,
        "container_id": record.info.short_id(),
        "origin": record.origin,
        "signals": { "gpu": sample.gpu, "cpu": sample.cpu, "network_bytes": sample.network, "keep_alive": sample.keep_alive },
    });
    if let (Value::Object(target), Value::Object(more)) = (&mut details, extra) {
        target.extend(more);
    }
    if dry_run {
        details["dry_run"] = json!(true);
    }
    details
}

fn limit_of(decision: &Decision, kind: LimitKind) -> (Option<String>, String) {
    let limits = &decision.limits;
    match kind {
        LimitKind::Idle => (
            limits.idle_timeout.value.map(|limit| limit.to_string()),
            limits.idle_timeout.source.to_string(),
        ),
        LimitKind::Runtime => (
            limits.max_runtime.value.map(|limit| limit.to_string()),
            limits.max_runtime.source.to_string(),
        ),
    }
}

/// Performs `decision`'s steps (the key is its place in the state file).
pub(super) async fn execute<E: ContainerEngine>(
    context: &Arc<LifecycleContext<E>>,
    spec: &ContainerLifecyclePolicySpec,
    key: &str,
    decision: &Decision,
    dry_run: bool,
) {
    let record = &decision.record;
    let user = Some(record.user.as_str());
    let now = jiff::Timestamp::now();
    for step in &decision.plan.steps {
        match step {
            Step::ReportExempt => {
                let exemptions: Vec<_> = decision.limits.exemptions.iter().map(|exemption| json!({ "from": exemption.exempt_from, "reason": exemption.reason, "expires": exemption.expires })).collect();
                context.recorder.emit(
                    EventType::Exempt,
                    user,
                    base(decision, dry_run, json!({ "exemptions": exemptions })),
                );
            }
            Step::ExemptNotice { kind } => {
                let text = messages::exempt(record, *kind, &decision.limits);
                let details = base(
                    decision,
                    dry_run,
                    json!({ "notice": kind.as_str(), "message": text }),
                );
                deliver(
                    context,
                    spec,
                    decision,
                    EventType::ExemptNotice,
                    details,
                    text,
                    dry_run,
                );
            }
            Step::Warn {
                kind,
                trigger,
                deadline,
            } => {
                let text = messages::warning(&messages::Warning {
                    record,
                    limits: &decision.limits,
                    idle_factor: decision.idle_factor,
                    kind: *kind,
                    trigger: *trigger,
                    deadline: *deadline,
                    keep_alive: (&spec.keep_alive.file, spec.keep_alive.max_age),
                    now,
                });
                let (limit, source) = limit_of(decision, *kind);
                let mut extra = json!({ "limit": limit, "source": source, "deadline": format!("{deadline:.3}"), "deadline_local": messages::local(*deadline) });
                match trigger {
                    WarnTrigger::Percent(percent) => extra["percent"] = json!(percent),
                    WarnTrigger::Before(lead) => {
                        extra["before"] = json!(ds01_spec::Duration::from(*lead).to_string());
                    }
                }
                let event = match kind {
                    LimitKind::Idle => EventType::IdleWarning,
                    LimitKind::Runtime => EventType::RuntimeWarning,
                };
                deliver(
                    context,
                    spec,
                    decision,
                    event,
                    base(decision, dry_run, extra),
                    text,
                    dry_run,
                );
            }
            Step::Stop {
                reason,
                remove,
                deadline,
            } => {
                let (limit, source) = limit_of(decision, *reason);
                let issued_at = format!("{:.3}", jiff::Timestamp::now());
                let details = base(
                    decision,
                    dry_run,
                    json!({ "limit": limit, "source": source, "grace": decision.limits.stop_grace_period.value.to_string(), "deadline": format!("{deadline:.3}"), "issued_at": issued_at }),
                );
                let event = match reason {
                    LimitKind::Idle => EventType::IdleStop,
                    LimitKind::Runtime => EventType::RuntimeStop,
                };
                if dry_run {
                    let mut details = details;
                    details["outcome"] = json!("stopped");
                    context.recorder.emit(event, user, details);
                    continue;
                }
                // A stop already under way, or one that cannot be remembered (logged), is
                // decided again by a later pass.
                let _ = stop_in_background(
                    context,
                    StopOrder {
                        key: key.to_owned(),
                        record: record.clone(),
                        grace: decision.limits.stop_grace_period.value.std(),
                        remove: *remove,
                        remove_volumes: spec.remove_volumes,
                        event,
                        details,
                        why: messages::stop_reason(*reason, &decision.limits, decision.idle_factor),
                        notice: spec.notify.clone(),
                    },
                );
            }
            Step::Remove { reason, expected } => {
                let outcome = if dry_run {
                    Some("removed".to_owned())
                } else {
                    remove(context, &record.info.id, expected, spec.remove_volumes).await
                };
                if let Some(outcome) = outcome {
                    context.recorder.emit(
                        EventType::Removed,
                        user,
                        base(
                            decision,
                            dry_run,
                            json!({ "reason": reason, "outcome": outcome }),
                        ),
                    );
                }
            }
        }
    }
}

/// Removes a stopped or never-started container, only if it is still as the decision saw it
/// (state, start and exit times) and never forcefully (Docker refuses a running container).
/// `None` when it changed since: the next pass decides again.
async fn remove<E: ContainerEngine>(
    context: &LifecycleContext<E>,
    id: &str,
    expected: &Expected,
    volumes: bool,
) -> Option<String> {
    match context.engine.inspect(id).await {
        Ok(None) => return Some("already gone".to_owned()),
        Ok(Some(now))
            if now.state != expected.state
                || now.started_at != expected.started_at
                || now.finished_at != expected.finished_at =>
        {
            tracing::info!(container = %now.name, from = expected.state.as_str(), to = now.state.as_str(), "not removed: the container changed since the decision");
            return None;
        }
        Ok(Some(_)) => {}
        Err(error) => {
            return Some(format!(
                "not removed: cannot check it first: {}",
                ds01_runtime::error_chain(&error)
            ));
        }
    }
    let options = RemoveOptions {
        force: false,
        volumes,
    };
    Some(match context.engine.remove(id, options).await {
        Ok(()) => "removed".to_owned(),
        Err(error) if error.is_not_found() => "already gone".to_owned(),
        Err(error) => format!("remove failed: {}", ds01_runtime::error_chain(&error)),
    })
}

/// Delivers a warning or notice in the background (terminals, the alert file), then writes its
/// event with where it went; in dry run only the event is written.
fn deliver<E: ContainerEngine>(
    context: &Arc<LifecycleContext<E>>,
    spec: &ContainerLifecyclePolicySpec,
    decision: &Decision,
    event: EventType,
    details: Value,
    text: String,
    dry_run: bool,
) {
    let user = decision.record.user.clone();
    if dry_run {
        context.recorder.emit(event, Some(&user), details);
        return;
    }
    let context = context.clone();
    let record = decision.record.clone();
    let notify = spec.notify.clone();
    context.tasks.clone().spawn(async move {
        let proc_root = context.proc_root.clone();
        let notices = context.notices.clone();
        let delivered = tokio::task::spawn_blocking(move || {
            let owner = super::stop::Owner {
                proc_root: &proc_root,
                record: &record,
                notify: &notify,
                notices: &notices,
            };
            super::stop::notify_owner(&owner, event, &text, None)
        })
        .await
        .unwrap_or_else(|error| json!({ "error": error.to_string() }));
        let mut details = details;
        details["delivered"] = delivered;
        context.recorder.emit(event, Some(&user), details);
    });
}
