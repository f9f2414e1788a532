//! The Docker source: keeps the inventory's containers equal to Docker's, level-triggered.
//!
//! # Guarantees
//! - Every (re)connect and every `resync_interval` runs a full relist diffed against the store,
//!   because the daemon replays at most 256 events: transitions missed while disconnected are
//!   found by the relist.
//! - Each container is inspected once per change (an event that can change it, or a relist
//!   that shows a different state), never per poll; inspects run on the reconciliation runtime,
//!   so a container is never inspected twice at once and a burst of its events coalesces.
//! - A transition is reported once: `detection.*` events compare against the stored state, so
//!   an event replayed after a relist reports nothing new.
//! - Docker unreachable is a reported condition (`docker.disconnected`), retried with backoff.

use ds01_spec::EventType;
use std::{
    collections::HashSet,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use ds01_host::docker::{ContainerEvent, DockerClient, DockerError, container_events};
pub use ds01_runtime::error_chain;
use ds01_runtime::{Backoff, Config, Controller, Handle};
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::observe::{Change, InspectReconciler, Observer};
use crate::{health::Loops, metrics::Metrics};

const RECONNECT_INITIAL: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(10);
/// Inspects running at once.
const INSPECT_CONCURRENCY: usize = 16;

/// The watcher's view of its connection.
#[derive(Debug, Default)]
struct Link {
    connected: bool,
    ever_connected: bool,
    reported_unreachable: bool,
}

/// The Docker watcher.
pub struct DockerWatch {
    /// The engine.
    pub client: DockerClient,
    /// Records observations.
    pub observer: Arc<Observer>,
    /// Full relist period.
    pub resync_interval: Duration,
    /// Where the inspect loop registers its liveness.
    pub loops: Loops,
    /// Counts the inspect loop's reconciles.
    pub metrics: Option<Arc<Metrics>>,
    /// Cancelled once the first observation is complete (every container inspected) or
    /// Docker was found unreachable at start-up.
    pub observed: CancellationToken,
}

impl DockerWatch {
    /// Watches until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let shared_client = Arc::new(RwLock::new(self.client.clone()));
        let config = Config {
            max_concurrency: INSPECT_CONCURRENCY,
            reconcile_timeout: Duration::from_secs(30),
            backoff: Backoff {
                initial: RECONNECT_INITIAL,
                max: RECONNECT_MAX,
            },
            debounce: Duration::ZERO,
            drain_deadline: Duration::from_secs(5),
        };
        let mut inspector = Controller::new(
            "inventory",
            InspectReconciler {
                client: shared_client.clone(),
                observer: self.observer.clone(),
            },
            config,
        );
        if let Some(metrics) = &self.metrics {
            inspector = inspector.observed_by(metrics.clone());
        }
        self.loops.register("inventory", inspector.stats());
        let inspect = inspector.handle();
        let inspector_task = tokio::spawn(inspector.run(shutdown.clone()));
        let mut link = Link::default();
        let mut delay = RECONNECT_INITIAL;
        while !shutdown.is_cancelled() {
            if let Err(error) = self.client.ping().await {
                self.set_disconnected(&mut link, &error);
                self.observed.cancel();
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(RECONNECT_MAX);
                continue;
            }
            delay = RECONNECT_INITIAL;
            *shared_client
                .write()
                .unwrap_or_else(PoisonError::into_inner) = self.client.clone();
            let since = jiff::Timestamp::now();
            // The first relist inspects inline, so "observed" means every container is known.
            let queue = self.observed.is_cancelled().then_some(&inspect);
            if let Err(error) = self.relist(queue).await {
                self.set_disconnected(&mut link, &error);
                self.observed.cancel();
                continue;
            }
            self.observed.cancel();
            self.set_connected(&mut link);
            match self.follow(since, &inspect, &shutdown).await {
                None => break,
                Some(error) => self.set_disconnected(&mut link, &error),
            }
        }
        let _ = inspector_task.await;
    }

    /// Follows events from `since` until the stream breaks (returns the error) or shutdown.
    async fn follow(
        &self,
        since: jiff::Timestamp,
        inspect: &Handle<String>,
        shutdown: &CancellationToken,
    ) -> Option<DockerError> {
        let mut events = container_events(&self.client, Some(since.as_second()));
        let mut resync = tokio::time::interval_at(
            tokio::time::Instant::now() + self.resync_interval,
            self.resync_interval,
        );
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                _ = resync.tick() => {
                    if let Err(error) = self.relist(Some(inspect)).await {
                        return Some(error);
                    }
                }
                event = events.next() => match event {
                    Some(Ok(event)) => self.apply_event(&event, inspect),
                    Some(Err(error)) => return Some(error),
                    None => return Some(DockerError::StreamEnded),
                },
            }
        }
    }

    fn apply_event(&self, event: &ContainerEvent, inspect: &Handle<String>) {
        let lag_ms =
            (jiff::Timestamp::now().as_nanosecond() - i128::from(event.time_nanos)) / 1_000_000;
        {
            let mut inventory = self
                .observer
                .inventory
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            inventory.docker.events_received += 1;
            inventory.docker.event_lag_ms = i64::try_from(lag_ms).ok();
        }
        // A destroy goes through the same queue: the inspect answers "gone" after any inspect
        // still in flight for that container, so a removal can never be overtaken.
        if event.action == "destroy" || event.changes_container() {
            inspect.trigger(event.id.clone());
        }
    }

    /// Lists every container and reconciles the store with it: through the inspect queue when
    /// `inspect` is given, else inline (for `--once`) with the same bounded concurrency.
    ///
    /// # Errors
    /// When Docker fails the list (or an inline inspect).
    pub async fn relist(&self, inspect: Option<&Handle<String>>) -> Result<(), DockerError> {
        let listed = self.client.list().await?;
        let listed_ids: HashSet<&str> = listed.iter().map(|summary| summary.id.as_str()).collect();
        let (stale, vanished, changed) = {
            let mut inventory = self
                .observer
                .inventory
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let stale: Vec<String> = inventory
                .containers
                .keys()
                .filter(|id| !listed_ids.contains(id.as_str()))
                .cloned()
                .collect();
            // Containers the previous run knew that are gone now were removed while we were away.
            let gone: Vec<String> = inventory
                .baseline
                .keys()
                .filter(|id| !listed_ids.contains(id.as_str()))
                .cloned()
                .collect();
            let vanished: Vec<_> = gone
                .into_iter()
                .filter_map(|id| inventory.baseline.remove(&id).map(|entry| (id, entry)))
                .collect();
            let now = jiff::Timestamp::now();
            for (id, _) in &vanished {
                inventory.note_removed(id, now);
            }
            let changed: Vec<String> = listed
                .iter()
                .filter(|summary| {
                    inventory
                        .containers
                        .get(&summary.id)
                        .is_none_or(|record| record.info.state.as_str() != summary.state)
                })
                .map(|summary| summary.id.clone())
                .collect();
            inventory.docker.last_relist = Some(jiff::Timestamp::now());
            (stale, vanished, changed)
        };
        for (id, entry) in &vanished {
            self.observer.forget_from_baseline(id, entry);
        }
        match inspect {
            Some(queue) => {
                for id in stale.into_iter().chain(changed) {
                    queue.trigger(id);
                }
            }
            None => {
                for id in stale {
                    self.observer.forget(&id);
                }
                let client = &self.client;
                // Recorded as they arrive: no list of every inspect held at once.
                let mut inspected = futures::stream::iter(changed)
                    .map(|id| async move {
                        let result = client.inspect(&id).await;
                        (id, result)
                    })
                    .buffer_unordered(INSPECT_CONCURRENCY);
                while let Some((id, result)) = inspected.next().await {
                    match result {
                        Ok(info) => self.observer.record(&id, info),
                        // Removed between the list and the inspect: it is simply gone.
                        Err(error) if error.is_not_found() => self.observer.forget(&id),
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        Ok(())
    }

    fn set_connected(&self, link: &mut Link) {
        if link.connected {
            return;
        }
        {
            let mut inventory = self
                .observer
                .inventory
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            inventory.docker.connected = true;
            inventory.docker.since = Some(jiff::Timestamp::now());
            inventory.docker.last_error = None;
        }
        if link.ever_connected || link.reported_unreachable {
            self.observer.recorder.emit(
                EventType::DockerReconnected,
                None,
                json!({ "host": self.client.host() }),
            );
        }
        tracing::info!(host = self.client.host(), "connected to Docker");
        link.connected = true;
        link.ever_connected = true;
        link.reported_unreachable = false;
        let _ = self.observer.changes.send(Change::Docker);
    }

    fn set_disconnected(&self, link: &mut Link, error: &DockerError) {
        let message = error_chain(error);
        {
            let mut inventory = self
                .observer
                .inventory
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if inventory.docker.connected || inventory.docker.since.is_none() {
                inventory.docker.since = Some(jiff::Timestamp::now());
            }
            inventory.docker.connected = false;
            inventory.docker.last_error = Some(message.clone());
        }
        // Report the loss of the connection, or an engine unreachable at start-up, once.
        if link.connected || !link.reported_unreachable {
            self.observer.recorder.emit(
                EventType::DockerDisconnected,
                None,
                json!({ "host": self.client.host(), "error": message }),
            );
            tracing::warn!(host = self.client.host(), error = %message, "Docker unreachable; retrying");
            let _ = self.observer.changes.send(Change::Docker);
            link.reported_unreachable = true;
        }
        link.connected = false;
    }
}
