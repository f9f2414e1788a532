//! Stopping a container in the background — remembered in the ledger first, SIGTERM, the grace
//! period, SIGKILL, removal when asked — then telling the owner it was stopped, why and how to
//! restart; shared by policy stops and `ds01ctl stop`.

use std::{path::Path, sync::Arc, time::Duration};

use ds01_host::{
    container_fs::{ContainerFsError, PinnedDirectory},
    docker::RemoveOptions,
};
use ds01_spec::{EventType, NotifySpec};
use serde_json::{Value, json};

use super::{
    context::LifecycleContext,
    messages,
    notice_store::{Notice, NoticeStore},
    notify,
};
use crate::{controllers::engine::ContainerEngine, inventory::ContainerRecord};

/// A stop to carry out.
#[derive(Clone, Debug)]
pub struct StopOrder {
    /// The container's key in the state file (`policy/id`).
    pub key: String,
    /// The container.
    pub record: Arc<ContainerRecord>,
    /// SIGTERM-to-SIGKILL grace.
    pub grace: Duration,
    /// Remove it once stopped.
    pub remove: bool,
    /// Remove its anonymous volumes with it.
    pub remove_volumes: bool,
    /// The event to write.
    pub event: EventType,
    /// Its details, without the outcome.
    pub details: Value,
    /// Why, for the owner's notice ("it was idle for …").
    pub why: String,
    /// Where the owner's notice goes.
    pub notice: NotifySpec,
}

/// Whether a stop was started.
#[derive(Debug)]
pub enum StopStart {
    /// It runs in the background.
    Started,
    /// The container's stop was already in progress.
    InProgress,
    /// Its event could not be remembered first, so it was not issued.
    CannotRemember(std::io::Error),
}

/// Starts `order` unless the container's stop is already in progress. The stop's event is
/// remembered before the stop is issued (see `ledger`); when that cannot be written the stop
/// is not issued.
pub fn stop_in_background<E: ContainerEngine>(
    context: &Arc<LifecycleContext<E>>,
    order: StopOrder,
) -> StopStart {
    let id = order.record.info.id.clone();
    if !context.stopping.begin(&id) {
        return StopStart::InProgress;
    }
    if let Err(error) = super::ledger::begin(
        context,
        &order.key,
        order.event,
        &order.record.user,
        &order.details,
    ) {
        tracing::warn!(%error, container = %order.record.info.name, "cannot remember the stop; held back");
        context.stopping.end(&id);
        return StopStart::CannotRemember(error);
    }
    let context = context.clone();
    context.tasks.clone().spawn(async move {
        // The alert file's directory is pinned while the container runs: after the stop its
        // root is gone, and the notice must still reach the file the owner sees.
        let pinned = {
            let proc_root = context.proc_root.clone();
            let record = order.record.clone();
            let file = order.notice.container_file.clone();
            tokio::task::spawn_blocking(move || {
                notify::pin_container_file(&proc_root, &record, &file)
            })
            .await
            .ok()
        };
        let (outcome, stopped, removed) = stop(&context.engine, &order).await;
        let mut details = order.details;
        details["outcome"] = json!(outcome);
        if stopped {
            let text =
                messages::stopped(&order.record, &order.why, removed, jiff::Timestamp::now());
            let proc_root = context.proc_root.clone();
            let record = order.record.clone();
            let notice = order.notice.clone();
            let notices = context.notices.clone();
            let event = order.event;
            details["notice"] = tokio::task::spawn_blocking(move || {
                let owner = Owner {
                    proc_root: &proc_root,
                    record: &record,
                    notify: &notice,
                    notices: &notices,
                };
                notify_owner(&owner, event, &text, pinned)
            })
            .await
            .unwrap_or_else(|error| json!({ "error": error.to_string() }));
        }
        context
            .recorder
            .emit(order.event, Some(&order.record.user), details);
        super::ledger::end(&context, &order.key);
        context.stopping.end(&id);
    });
    StopStart::Started
}

/// SIGTERM, the grace period, SIGKILL (Docker's stop), then removal when asked (never forced:
/// the container has just stopped); "no such container" counts as done. Returns the outcome
/// for the event, whether it stopped, and whether it was removed.
async fn stop<E: ContainerEngine>(engine: &E, order: &StopOrder) -> (String, bool, bool) {
    let id = &order.record.info.id;
    match engine.stop(id, order.grace).await {
        Ok(()) => {}
        Err(error) if error.is_not_found() => return ("already gone".to_owned(), false, false),
        Err(error) => {
            return (
                format!("stop failed: {}", ds01_runtime::error_chain(&error)),
                false,
                false,
            );
        }
    }
    if !order.remove {
        return ("stopped".to_owned(), true, false);
    }
    let options = RemoveOptions {
        force: false,
        volumes: order.remove_volumes,
    };
    match engine.remove(id, options).await {
        Ok(()) => ("stopped and removed".to_owned(), true, true),
        Err(error) if error.is_not_found() => ("stopped and removed".to_owned(), true, true),
        Err(error) => (
            format!(
                "stopped; remove failed: {}",
                ds01_runtime::error_chain(&error)
            ),
            true,
            false,
        ),
    }
}

/// Whom a notice goes to and how.
pub struct Owner<'a> {
    /// `/proc`.
    pub proc_root: &'a Path,
    /// The container (and its owner).
    pub record: &'a ContainerRecord,
    /// The policy's `notify`.
    pub notify: &'a NotifySpec,
    /// Where notices are kept for `ds01ctl notices`.
    pub notices: &'a NoticeStore,
}

/// Tells the owner on their terminals and in the alert file (through `pinned` when the
/// container may have stopped), and keeps the notice for `ds01ctl notices`; returns where it
/// went, for the event. Blocking.
pub fn notify_owner(
    owner: &Owner<'_>,
    event: EventType,
    text: &str,
    pinned: Option<Result<PinnedDirectory, ContainerFsError>>,
) -> Value {
    let Owner {
        proc_root,
        record,
        notify: notice,
        notices,
    } = owner;
    let terminals = notice
        .tty
        .then(|| match ds01_host::users::user_id(&record.user) {
            Some(uid) => notify::to_terminals(
                Path::new("/var/run/utmp"),
                Path::new("/dev"),
                &record.user,
                uid,
                text,
            ),
            None => notify::Terminals {
                delivered: 0,
                ignored: vec![format!("{} is not a user of this host", record.user)],
            },
        });
    let file = match pinned {
        Some(Ok(directory)) => directory.append_as_owner(&format!("{text}\n")),
        Some(Err(error)) => Err(error),
        None => notify::to_container_file(proc_root, record, &notice.container_file, text),
    };
    notices.keep(&Notice {
        user: &record.user,
        event_type: event,
        container: &record.info.name,
        container_id: record.info.short_id(),
        message: text,
        at: jiff::Timestamp::now(),
    });
    notify::delivery(terminals.as_ref(), &file)
}
