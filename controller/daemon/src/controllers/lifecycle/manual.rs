//! `ds01ctl stop CONTAINER --reason TEXT`: an admin's stop of one container, carried out like
//! a policy stop — the same ledger, SIGTERM, grace period, SIGKILL, and the "was stopped"
//! notice to the owner with the admin's reason — and recorded as `lifecycle.manual_stop`.
//!
//! # Guarantees
//! - The grace period and the notice settings are those of the first applied
//!   ContainerLifecyclePolicy (by name) whose `scope` covers the container, resolved for its
//!   owner and origin; with none, the built-in 60 s and the built-in `notify`.
//! - The controller's own containers are never stopped (their controller would start them
//!   again); a protected one only with `force`; a container that is not live is not "stopped".
//! - Nothing is stopped unless its event can be written: the event log must be writable and
//!   the stop is remembered in the ledger (key `@manual/<id>`) before it is issued; a
//!   controller killed mid-stop has the event written by the next one (`settle_left_over`).

use std::{sync::Arc, time::Duration};

use ds01_spec::{ContainerLifecyclePolicySpec, EventType, Kind, Scope, SpecBody, resolve};
use serde_json::json;

use super::{
    context::LifecycleContext,
    messages,
    stop::{StopOrder, StopStart, stop_in_background},
};
use crate::{controllers::engine::ContainerEngine, inventory::ContainerRecord};

pub use super::ledger::MANUAL_KEY_PREFIX as KEY_PREFIX;

/// Why a manual stop was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManualStopError {
    /// Exited, created, dead: nothing to stop.
    #[error("container {name} is {state}, not running: there is nothing to stop")]
    NotRunning {
        /// Container name.
        name: String,
        /// Its state.
        state: String,
    },
    /// One of the controller's own containers.
    #[error(
        "container {0} is the controller's own (it would only be started again); change or delete its DcgmExporter spec instead"
    )]
    Own(String),
    /// A protected label matches and `force` was not given.
    #[error("container {name} is {why}; stop it with --force if you must")]
    Protected {
        /// Container name.
        name: String,
        /// `protected by label ds01.protected=true`.
        why: String,
    },
    /// Its stop is already under way.
    #[error("a stop of container {0} is already in progress")]
    InProgress(String),
    /// The event log cannot be written, so the stop was not issued.
    #[error(
        "the stop cannot be recorded: the event log cannot be written ({0}); nothing was stopped"
    )]
    EventLogUnwritable(#[source] crate::recorder::FlushError),
    /// The stop could not be remembered in the state file first, so it was not issued.
    #[error(
        "the stop cannot be recorded: the state file cannot be written ({0}); nothing was stopped"
    )]
    StateFileUnwritable(#[source] std::io::Error),
}

/// What an accepted stop will do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// SIGTERM-to-SIGKILL grace.
    pub grace: ds01_spec::Duration,
    /// Where it comes from.
    pub grace_source: String,
    /// A `--dry-run` controller only records it.
    pub dry_run: bool,
}

/// Who asked, and why.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The admin's user name.
    pub admin: &'a str,
    /// Their reason (already checked by the API).
    pub reason: &'a str,
    /// Stop a protected container too.
    pub force: bool,
}

/// The policy whose settings a manual stop of `record` uses: the first applied
/// ContainerLifecyclePolicy, by name, whose scope covers it.
async fn covering<E>(
    context: &LifecycleContext<E>,
    record: &ContainerRecord,
) -> Option<(String, ContainerLifecyclePolicySpec)> {
    let store = context.store.lock().await;
    store
        .all()
        .filter(|stored| stored.resource.kind() == Kind::ContainerLifecyclePolicy)
        .find_map(|stored| match &stored.resource.spec {
            SpecBody::ContainerLifecyclePolicy(spec)
                if spec.scope == Scope::All || record.info.gpu.has_gpu =>
            {
                Some((stored.resource.metadata.name.clone(), (**spec).clone()))
            }
            _ => None,
        })
}

/// Stops `record` for an admin, in the background; returns what the stop will do.
///
/// # Errors
/// When it must not be stopped, is being stopped, or the stop could not be recorded.
pub async fn stop<E: ContainerEngine>(
    context: &Arc<LifecycleContext<E>>,
    record: Arc<ContainerRecord>,
    request: Request<'_>,
) -> Result<Accepted, ManualStopError> {
    let name = record.info.name.clone();
    if !record.info.state.is_live() {
        return Err(ManualStopError::NotRunning {
            name,
            state: record.info.state.as_str().to_owned(),
        });
    }
    let own = {
        let inventory = context
            .inventory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        super::observe::own(&inventory)
    };
    if own.contains(&record.info.id) {
        return Err(ManualStopError::Own(name));
    }
    let covering = covering(context, &record).await;
    let (policy, spec) = covering.clone().unwrap_or_default();
    let protected_by = spec.protected_labels.iter().find(|selector| {
        selector.matches(
            record
                .info
                .labels
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        )
    });
    if let Some(selector) = protected_by.filter(|_| !request.force) {
        return Err(ManualStopError::Protected {
            name,
            why: format!("protected by label {selector}"),
        });
    }
    let (grace, grace_source) = match &covering {
        Some((policy, spec)) => {
            let membership = context.members.read(spec).await;
            let limits = resolve::resolve(
                spec,
                resolve::Subject {
                    user: &record.user,
                    origin: &record.origin,
                },
                &membership.by_group,
                jiff::Timestamp::now(),
            );
            let grace = limits.stop_grace_period;
            (
                grace.value,
                format!(
                    "stopGracePeriod from {} in containerlifecyclepolicy/{policy}",
                    grace.source
                ),
            )
        }
        None => (
            ds01_spec::Duration::from(Duration::from_secs(60)),
            "the built-in default (no ContainerLifecyclePolicy covers this container)".to_owned(),
        ),
    };
    let details = json!({
        "container": record.info.name,
        "container_id": record.info.short_id(),
        "origin": record.origin,
        "by": request.admin,
        "reason": request.reason,
        "forced": request.force,
        "grace": grace.to_string(),
        "grace_source": grace_source,
        "policy": covering.as_ref().map(|_| policy.as_str()),
        "issued_at": format!("{:.3}", jiff::Timestamp::now()),
    });
    let accepted = Accepted {
        grace,
        grace_source,
        dry_run: context.dry_run,
    };
    if context.dry_run {
        let mut details = details;
        details["outcome"] = json!("stopped");
        context
            .recorder
            .emit(EventType::ManualStop, Some(&record.user), details);
        return Ok(accepted);
    }
    context
        .recorder
        .flush()
        .map_err(ManualStopError::EventLogUnwritable)?;
    let order = StopOrder {
        key: format!("{KEY_PREFIX}{}", record.info.id),
        record: record.clone(),
        grace: grace.std(),
        remove: false,
        remove_volumes: false,
        event: EventType::ManualStop,
        details,
        why: messages::manual_stop_reason(request.admin, request.reason),
        notice: spec.notify.clone(),
    };
    match stop_in_background(context, order) {
        StopStart::Started => Ok(accepted),
        StopStart::InProgress => Err(ManualStopError::InProgress(name)),
        StopStart::CannotRemember(error) => Err(ManualStopError::StateFileUnwritable(error)),
    }
}

/// Settles the manual stops a previous controller left unrecorded, once Docker has been
/// listed: the event of a container no longer live is written, a live one's record dropped.
pub async fn settle_left_over<E: ContainerEngine>(
    context: Arc<LifecycleContext<E>>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let left: Vec<String> = context
        .state
        .keys()
        .into_iter()
        .filter(|key| key.starts_with(KEY_PREFIX))
        .collect();
    if left.is_empty() {
        return;
    }
    loop {
        let connected = context
            .inventory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .docker
            .connected;
        if connected {
            break;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    super::ledger::settle_manual(&context, &left);
}

#[cfg(test)]
#[path = "manual_tests.rs"]
mod tests;
