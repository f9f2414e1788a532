//! What a lifecycle policy would do to the containers there now, for `apply --dry-run`: runtime
//! stops and removals at their exact times, idle stops at the earliest time they could come.

use ds01_spec::{ContainerLifecyclePolicySpec, OnIdle, api::PreviewAction, resolve};

use super::executor::{LifecycleViews, untouchable};
use crate::inventory::Inventory;

fn add(at: jiff::Timestamp, duration: ds01_spec::Duration) -> jiff::Timestamp {
    jiff::SignedDuration::try_from(duration.std())
        .ok()
        .and_then(|delta| at.checked_add(delta).ok())
        .unwrap_or(at)
}

/// The actions `spec` would take, soonest first.
#[must_use]
pub fn preview(
    reference: &str,
    spec: &ContainerLifecyclePolicySpec,
    inventory: &Inventory,
    views: &LifecycleViews,
    file_members: &std::collections::HashMap<String, Vec<String>>,
) -> Vec<PreviewAction> {
    let now = jiff::Timestamp::now();
    let views = views
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut actions: Vec<(jiff::Timestamp, PreviewAction)> = Vec::new();
    for record in inventory.containers.values() {
        if untouchable(record, spec).is_some() {
            continue;
        }
        let limits = resolve::resolve(
            spec,
            resolve::Subject {
                user: &record.user,
                origin: &record.origin,
            },
            file_members,
            now,
        );
        let mut push = |at: jiff::Timestamp, action: &str, reason: String| {
            actions.push((
                at,
                PreviewAction {
                    resource: reference.to_owned(),
                    container: record.info.name.clone(),
                    user: record.user.clone(),
                    action: action.to_owned(),
                    at: format!("{:.0}", at.max(now)),
                    reason,
                },
            ));
        };
        match record.info.state {
            ds01_host::ContainerState::Running => {
                if let (Some(limit), Some(started)) =
                    (limits.max_runtime.value, record.info.started_at)
                {
                    push(
                        add(started, limit),
                        "stop",
                        format!("maxRuntime {limit} from {}", limits.max_runtime.source),
                    );
                }
                if let Some(limit) = limits.idle_timeout.value {
                    let idle_since = views
                        .get(&record.info.id)
                        .and_then(|view| view["idleSince"].as_str())
                        .and_then(|text| text.parse().ok());
                    let action = if limits.on_idle.value == OnIdle::StopAndRemove {
                        "stop and remove"
                    } else {
                        "stop"
                    };
                    let (from, when) = idle_since.map_or((now, "if idle from now on"), |since| {
                        (since, "idle since then")
                    });
                    push(
                        add(from, limit),
                        action,
                        format!(
                            "idleTimeout {limit} from {} ({when})",
                            limits.idle_timeout.source
                        ),
                    );
                }
            }
            ds01_host::ContainerState::Exited | ds01_host::ContainerState::Dead => {
                let (limit, source, name) = if record.info.gpu.has_gpu {
                    (
                        limits.gpu_hold_after_stop.value,
                        &limits.gpu_hold_after_stop.source,
                        "gpuHoldAfterStop",
                    )
                } else {
                    (
                        limits.remove_after_stop.value,
                        &limits.remove_after_stop.source,
                        "removeAfterStop",
                    )
                };
                if let (Some(limit), Some(finished)) = (limit, record.info.finished_at) {
                    push(
                        add(finished, limit),
                        "remove",
                        format!("{name} {limit} from {source}"),
                    );
                }
            }
            ds01_host::ContainerState::Created => {
                if let (Some(limit), Some(created)) =
                    (limits.created_timeout.value, record.info.created_at)
                {
                    push(
                        add(created, limit),
                        "remove",
                        format!(
                            "createdTimeout {limit} from {}",
                            limits.created_timeout.source
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    actions.sort_by_key(|(at, _)| *at);
    actions.into_iter().map(|(_, action)| action).collect()
}
