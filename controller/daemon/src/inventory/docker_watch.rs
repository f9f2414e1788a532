//! The Docker source: keeps the inventory's containers equal to Docker's, level-triggered.
//!
//! # Guarantees
//! - Every (re)connect and every `resync_interval` runs a full relist diffed against the store,
//!   because the daemon replays at most 256 events: transitions missed while disconnected are
//!   found by the relist.
//! - Each container is inspected once per change (an event that can change it, or a relist
//!   that shows a different state), never per poll.
//! - A transition is reported once: `detection.*` events compare against the stored state, so
//!   an event replayed after a relist reports nothing new.
//! - Docker unreachable is a reported condition (`docker.disconnected`), retried with backoff.

use std::{collections::HashSet, path::PathBuf, sync::Arc, time::Duration};

use ds01_host::docker::{ContainerEvent, DockerClient, DockerError, container_events};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{
    SharedInventory, classify,
    store::{ContainerRecord, Transition},
};
use crate::recorder::Recorder;

/// What changed in the inventory, for controllers and the inventory file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A container appeared, changed or disappeared.
    Container(String),
    /// The GPU snapshot or the host GPU processes changed.
    Gpus,
    /// Docker (re)connected or disconnected.
    Docker,
}

/// The watcher's view of its connection.
#[derive(Debug, Default)]
struct Link {
    connected: bool,
    ever_connected: bool,
    reported_unreachable: bool,
}

const RECONNECT_INITIAL: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(10);

/// The Docker watcher.
pub struct DockerWatch {
    /// The engine.
    pub client: DockerClient,
    /// Where containers are recorded.
    pub inventory: SharedInventory,
    /// Where events go.
    pub recorder: Arc<Recorder>,
    /// `/proc`, for the init process's uid.
    pub proc_root: PathBuf,
    /// Full relist period.
    pub resync_interval: Duration,
    /// Change notifications.
    pub changes: broadcast::Sender<Change>,
}

impl DockerWatch {
    /// Watches until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut link = Link::default();
        let mut delay = RECONNECT_INITIAL;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(error) = self.client.ping().await {
                self.set_disconnected(&mut link, &error);
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(RECONNECT_MAX);
                continue;
            }
            delay = RECONNECT_INITIAL;
            let since = jiff::Timestamp::now();
            if let Err(error) = self.relist().await {
                self.set_disconnected(&mut link, &error);
                continue;
            }
            self.set_connected(&mut link);
            match self.follow(since, &shutdown).await {
                None => return,
                Some(error) => self.set_disconnected(&mut link, &error),
            }
        }
    }

    /// Follows events from `since` until the stream breaks (returns the error) or shutdown.
    async fn follow(
        &self,
        since: jiff::Timestamp,
        shutdown: &CancellationToken,
    ) -> Option<DockerError> {
        let mut events = Box::pin(container_events(&self.client, Some(since.as_second())));
        let mut resync = tokio::time::interval_at(
            tokio::time::Instant::now() + self.resync_interval,
            self.resync_interval,
        );
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                _ = resync.tick() => {
                    if let Err(error) = self.relist().await {
                        return Some(error);
                    }
                }
                event = events.next() => match event {
                    Some(Ok(event)) => self.apply_event(event).await,
                    Some(Err(error)) => return Some(error),
                    None => return Some(DockerError::StreamEnded),
                },
            }
        }
    }

    fn set_connected(&self, link: &mut Link) {
        if link.connected {
            return;
        }
        {
            let mut inventory = self
                .inventory
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            inventory.docker.connected = true;
            inventory.docker.since = Some(jiff::Timestamp::now());
            inventory.docker.last_error = None;
        }
        if link.ever_connected || link.reported_unreachable {
            self.recorder.emit(
                "docker.reconnected",
                None,
                json!({ "host": self.client.host() }),
            );
        }
        tracing::info!(host = self.client.host(), "connected to Docker");
        link.connected = true;
        link.ever_connected = true;
        link.reported_unreachable = false;
        let _ = self.changes.send(Change::Docker);
    }

    fn set_disconnected(&self, link: &mut Link, error: &DockerError) {
        let message = error_chain(error);
        {
            let mut inventory = self
                .inventory
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if inventory.docker.connected || inventory.docker.since.is_none() {
                inventory.docker.since = Some(jiff::Timestamp::now());
            }
            inventory.docker.connected = false;
            inventory.docker.last_error = Some(message.clone());
        }
        // Report the loss of the connection, or an engine unreachable at start-up, once.
        if link.connected || !link.reported_unreachable {
            self.recorder.emit(
                "docker.disconnected",
                None,
                json!({ "host": self.client.host(), "error": message }),
            );
            tracing::warn!(host = self.client.host(), error = %message, "Docker unreachable; retrying");
            let _ = self.changes.send(Change::Docker);
            link.reported_unreachable = true;
        }
        link.connected = false;
    }

    /// Lists every container and reconciles the store with it.
    ///
    /// # Errors
    /// When Docker fails the list.
    pub async fn relist(&self) -> Result<(), DockerError> {
        let listed = self.client.list().await?;
        let listed_ids: HashSet<&str> = listed.iter().map(|summary| summary.id.as_str()).collect();
        let stale: Vec<String> = {
            let inventory = self
                .inventory
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            inventory
                .containers
                .keys()
                .filter(|id| !listed_ids.contains(id.as_str()))
                .cloned()
                .collect()
        };
        for id in stale {
            self.forget(&id);
        }
        // Containers the previous run knew that are gone now were removed while we were away.
        let vanished: Vec<(String, super::store::BaselineEntry)> = {
            let mut inventory = self
                .inventory
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let ids: Vec<String> = inventory
                .baseline
                .keys()
                .filter(|id| !listed_ids.contains(id.as_str()))
                .cloned()
                .collect();
            ids.into_iter()
                .filter_map(|id| inventory.baseline.remove(&id).map(|entry| (id, entry)))
                .collect()
        };
        for (id, entry) in vanished {
            let details = json!({ "container": entry.name, "container_id": id.get(..12).unwrap_or(&id), "status": "removed", "while": "controller was not watching" });
            self.recorder
                .emit("detection.container_removed", Some(&entry.user), details);
            let _ = self.changes.send(Change::Container(id));
        }
        for summary in &listed {
            let known_state = {
                let inventory = self
                    .inventory
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                inventory
                    .containers
                    .get(&summary.id)
                    .map(|record| record.info.state.as_str())
            };
            if known_state.is_none_or(|state| state != summary.state) {
                self.observe(&summary.id).await?;
            }
        }
        let mut inventory = self
            .inventory
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inventory.docker.last_relist = Some(jiff::Timestamp::now());
        Ok(())
    }

    async fn apply_event(&self, event: ContainerEvent) {
        let lag_ms =
            (jiff::Timestamp::now().as_nanosecond() - i128::from(event.time_nanos)) / 1_000_000;
        {
            let mut inventory = self
                .inventory
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            inventory.docker.events_received += 1;
            inventory.docker.event_lag_ms = i64::try_from(lag_ms).ok();
        }
        if event.action == "destroy" {
            self.forget(&event.id);
        } else if event.changes_container()
            && let Err(error) = self.observe(&event.id).await
        {
            tracing::debug!(container = %event.id, error = %error_chain(&error), "inspect after event failed; the next relist will retry");
        }
    }

    /// Inspects one container and records what changed.
    async fn observe(&self, id: &str) -> Result<(), DockerError> {
        let Some(info) = self.client.inspect(id).await? else {
            self.forget(id);
            return Ok(());
        };
        let init_uid = info
            .pid
            .and_then(|pid| {
                ds01_host::process::read_process(&self.proc_root, pid)
                    .ok()
                    .flatten()
            })
            .map(|process| process.uid);
        let owner = classify::owner(&info, init_uid, ds01_host::users::user_name);
        let origin = classify::origin(&info);
        let now = jiff::Timestamp::now();
        let (transition, record) = {
            let mut inventory = self
                .inventory
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            inventory.upsert_container(info, owner, origin, now)
        };
        match transition {
            Transition::Discovered => self.recorder.emit(
                "detection.container_discovered",
                Some(&record.user),
                details(&record, json!({})),
            ),
            Transition::StatusChanged { from, to } => {
                self.recorder.emit(
                    "detection.container_status_changed",
                    Some(&record.user),
                    details(&record, json!({ "from": from, "to": to })),
                );
            }
            Transition::Unchanged => return Ok(()),
        }
        let _ = self.changes.send(Change::Container(record.info.id.clone()));
        Ok(())
    }

    fn forget(&self, id: &str) {
        let removed = {
            let mut inventory = self
                .inventory
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            inventory.remove_container(id, jiff::Timestamp::now())
        };
        if let Some(record) = removed {
            self.recorder.emit(
                "detection.container_removed",
                Some(&record.user),
                details(&record, json!({})),
            );
            let _ = self.changes.send(Change::Container(id.to_owned()));
        }
    }
}

fn details(record: &ContainerRecord, extra: serde_json::Value) -> serde_json::Value {
    let mut details = json!({
        "container": record.info.name,
        "container_id": record.info.short_id(),
        "origin": record.origin,
        "owner_source": record.owner_source,
        "image": record.info.image,
        "status": record.info.state.as_str(),
        "has_gpu": record.info.gpu.has_gpu,
        "gpu_devices": record.gpu_uuids,
    });
    if let (serde_json::Value::Object(target), serde_json::Value::Object(more)) =
        (&mut details, extra)
    {
        target.extend(more);
    }
    details
}

/// An error and its causes on one line.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
