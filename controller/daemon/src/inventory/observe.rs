//! Recording what an inspect found: classify, upsert, and report the transition — and the
//! per-container reconciler that runs inspects on the runtime (bounded concurrency, one inspect
//! per container at a time, bursts of events coalesced).

use ds01_spec::EventType;
use std::{
    path::PathBuf,
    sync::{Arc, PoisonError, RwLock},
};

use ds01_host::{
    ContainerInfo,
    docker::{DockerClient, DockerError},
};
use ds01_runtime::{Action, ReconcileError, Reconciler};
use serde_json::json;
use tokio::sync::broadcast;

use super::{
    InventoryWriter, classify,
    store::{BaselineEntry, ContainerRecord, Transition},
};
use crate::recorder::Recorder;

/// What changed in the inventory, for controllers and the inventory file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A container appeared, changed or disappeared: its id and name.
    Container(String, String),
    /// The GPU snapshot or the host GPU processes changed.
    Gpus,
    /// Docker (re)connected or disconnected.
    Docker,
}

/// Writes observations into the inventory and reports transitions.
pub struct Observer {
    /// Where containers are recorded.
    pub inventory: InventoryWriter,
    /// Where events go.
    pub recorder: Arc<Recorder>,
    /// `/proc`, for the init process's uid.
    pub proc_root: PathBuf,
    /// Change notifications.
    pub changes: broadcast::Sender<Change>,
}

impl Observer {
    /// Records the result of inspecting `id`: the container, or its absence.
    pub fn record(&self, id: &str, inspected: Option<ContainerInfo>) {
        let Some(mut info) = inspected else {
            self.forget(id);
            return;
        };
        // A running container's GPUs are what its PID 1 received (dockerd's `--gpus` addition
        // included); a stopped one's come from Docker's record.
        if info.state.is_live()
            && let Some(pid) = info.pid
            && let Ok(Some(environ)) = ds01_host::process::read_environ(
                &self.proc_root,
                pid,
                &ds01_host::gpu_access::GPU_ENV_KEYS,
            )
        {
            info.gpu = info.gpu.with_environ(&environ);
        }
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
        let (transition, record, new_conflict) = {
            let mut inventory = self
                .inventory
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            inventory.upsert_container(info, owner, origin, jiff::Timestamp::now())
        };
        if new_conflict && let Some(conflict) = &record.owner_conflict {
            self.recorder.emit(
                EventType::OwnerConflict,
                Some(&record.user),
                details(
                    &record,
                    json!({
                        "claimed": conflict.claimed,
                        "claimed_by": conflict.claimed_by,
                        "evidence": conflict.evidence,
                        "evidence_source": conflict.evidence_source,
                        "observed": conflict.observed,
                        "winner": conflict.winner,
                    }),
                ),
            );
        }
        match transition {
            Transition::Discovered => self.recorder.emit(
                EventType::ContainerDiscovered,
                Some(&record.user),
                details(&record, json!({})),
            ),
            Transition::StatusChanged { from, to } => {
                self.recorder.emit(
                    EventType::ContainerStatusChanged,
                    Some(&record.user),
                    details(&record, json!({ "from": from, "to": to })),
                );
            }
            Transition::Unchanged => return,
        }
        let _ = self.changes.send(Change::Container(
            record.info.id.clone(),
            record.info.name.clone(),
        ));
    }

    /// Forgets a container that no longer exists, reporting it once.
    pub fn forget(&self, id: &str) {
        let removed = self
            .inventory
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove_container(id, jiff::Timestamp::now());
        if let Some(record) = removed {
            self.recorder.emit(
                EventType::ContainerRemoved,
                Some(&record.user),
                details(&record, json!({})),
            );
            let _ = self
                .changes
                .send(Change::Container(id.to_owned(), record.info.name.clone()));
        }
    }

    /// Reports a container the previous run knew and that is gone now.
    pub fn forget_from_baseline(&self, id: &str, entry: &BaselineEntry) {
        let details = json!({
            "container": entry.name,
            "container_id": id.get(..12).unwrap_or(id),
            "status": "removed",
            "while": "the controller was not watching",
        });
        self.recorder
            .emit(EventType::ContainerRemoved, Some(&entry.user), details);
        let _ = self
            .changes
            .send(Change::Container(id.to_owned(), entry.name.clone()));
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
    if !record.gpus.claims.is_empty() {
        details["gpu_claims"] = json!(record.gpus.claims);
    }
    if !record.gpus.unresolved.is_empty() {
        details["gpu_unresolved"] = json!(record.gpus.unresolved);
    }
    if let (serde_json::Value::Object(target), serde_json::Value::Object(more)) =
        (&mut details, extra)
    {
        target.extend(more);
    }
    details
}

/// Inspects one container per reconcile; keyed by container id.
pub struct InspectReconciler {
    /// The current client (replaced on every reconnect).
    pub client: Arc<RwLock<DockerClient>>,
    /// Where results go.
    pub observer: Arc<Observer>,
}

impl Reconciler<String> for InspectReconciler {
    type Error = DockerError;

    async fn reconcile(&self, id: String) -> Result<Action, ReconcileError<DockerError>> {
        let client = self
            .client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let inspected = client
            .inspect(&id)
            .await
            .map_err(ReconcileError::Transient)?;
        self.observer.record(&id, inspected);
        Ok(Action::await_change())
    }
}
