//! The inventory store: one writer per source, many readers (controllers, the API, the file).

use std::{collections::BTreeMap, sync::Arc};

use ds01_host::{ContainerInfo, gpu::GpuSnapshot};
use serde::Serialize;

use super::{
    classify::{Owner, OwnerConflict},
    gpu_resolve::{ResolvedGpus, resolve},
};

/// A container as the controller sees it.
#[derive(Clone, Debug, Serialize)]
pub struct ContainerRecord {
    /// What Docker said in the last inspect.
    pub info: ContainerInfo,
    /// `containerTypes` key.
    pub origin: String,
    /// Owner user.
    pub user: String,
    /// Which rule found the owner.
    pub owner_source: &'static str,
    /// The kernel vouches for the owner (the init process runs as that user, not root).
    pub owner_verified: bool,
    /// UUIDs of the GPUs the toolkit grants it (never label claims or ids NVML does not report).
    pub gpu_uuids: Vec<String>,
    /// Its GPU access resolved: grants with how, claims, unresolved ids.
    pub gpus: ResolvedGpus,
    /// An owner label the kernel's evidence contradicted.
    pub owner_conflict: Option<OwnerConflict>,
    /// When the controller first saw it.
    pub detected_at: jiff::Timestamp,
}

/// A GPU process outside any container.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostProcessRecord {
    /// PID.
    pub pid: u32,
    /// Start time (clock ticks since boot) — the identity with the pid.
    pub start_time: u64,
    /// Owner user name.
    pub user: String,
    /// Owner uid.
    pub uid: u32,
    /// Short name.
    pub name: String,
    /// Command line.
    pub cmdline: String,
    /// GPU or MIG device UUID.
    pub gpu_uuid: String,
    /// GPU memory in MiB, when known.
    pub gpu_memory_mb: Option<u64>,
    /// When first inventoried (its second observation).
    pub detected_at: jiff::Timestamp,
}

/// Health of the Docker source.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerHealth {
    /// Connected now.
    pub connected: bool,
    /// Since when (connected or not).
    pub since: Option<jiff::Timestamp>,
    /// Last full relist.
    pub last_relist: Option<jiff::Timestamp>,
    /// Last error, when disconnected.
    pub last_error: Option<String>,
    /// Container events received.
    pub events_received: u64,
    /// Daemon time of the last event minus our receipt, milliseconds (the stream's lag).
    pub event_lag_ms: Option<i64>,
}

/// Health of the GPU source.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuHealth {
    /// `nvml` or `none`.
    pub backend: String,
    /// Last error initialising or polling NVML.
    pub last_error: Option<String>,
    /// Last successful poll.
    pub last_poll: Option<jiff::Timestamp>,
}

/// Everything observed.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Containers by full id; shared, so readers take a snapshot without copying records.
    pub containers: BTreeMap<String, Arc<ContainerRecord>>,
    /// Host GPU processes by pid.
    pub host_processes: BTreeMap<u32, HostProcessRecord>,
    /// Latest GPU snapshot.
    pub gpus: GpuSnapshot,
    /// Every GPU process of the latest snapshot, attributed.
    pub gpu_processes: Vec<super::attribution::AttributedProcess>,
    /// Docker source health.
    pub docker: DockerHealth,
    /// GPU source health.
    pub gpu: GpuHealth,
    /// Last change of any kind.
    pub last_scan: Option<jiff::Timestamp>,
    /// Containers seen removed, with when (bounded, oldest forgotten first): processes left in
    /// their cgroups are orphans, while a container id nobody knows is not.
    pub removed: BTreeMap<String, jiff::Timestamp>,
    /// Containers the previous run knew (from the inventory file), until the first relist
    /// settles them: a restart reports only real transitions, never everything again.
    pub baseline: BTreeMap<String, BaselineEntry>,
    /// Containers the controller created itself, by id (shared: a clone sees every change).
    pub own: crate::controllers::own::OwnContainers,
}

/// What the previous run knew of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaselineEntry {
    /// State then.
    pub state: String,
    /// When it was first detected.
    pub detected_at: jiff::Timestamp,
    /// Owner then.
    pub user: String,
    /// Name then.
    pub name: String,
}

/// How many removed containers are remembered.
const REMOVED_REMEMBERED: usize = 10_000;

/// What changed for one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// First seen.
    Discovered,
    /// State moved.
    StatusChanged {
        /// Previous state.
        from: &'static str,
        /// New state.
        to: &'static str,
    },
    /// Nothing a user would notice changed.
    Unchanged,
}

impl Inventory {
    /// Records a freshly inspected container and says what changed; the third value says
    /// whether an owner conflict is new (not reported for this container before).
    pub fn upsert_container(
        &mut self,
        info: ContainerInfo,
        owner: Owner,
        origin: String,
        now: jiff::Timestamp,
    ) -> (Transition, Arc<ContainerRecord>, bool) {
        let gpus = self.resolve_gpus(&info);
        let new_conflict = owner.conflict.is_some()
            && self
                .containers
                .get(&info.id)
                .is_none_or(|previous| previous.owner_conflict != owner.conflict);
        let baseline = self.baseline.remove(&info.id);
        let (transition, detected_at) = match self.containers.get(&info.id) {
            None => match baseline {
                Some(known) if known.state == info.state.as_str() => {
                    (Transition::Unchanged, known.detected_at)
                }
                Some(known) => (
                    Transition::StatusChanged {
                        from: ds01_host::ContainerState::parse(&known.state).as_str(),
                        to: info.state.as_str(),
                    },
                    known.detected_at,
                ),
                None => (Transition::Discovered, now),
            },
            Some(previous)
                if previous.info.state != info.state
                    || previous.info.started_at != info.started_at =>
            {
                (
                    Transition::StatusChanged {
                        from: previous.info.state.as_str(),
                        to: info.state.as_str(),
                    },
                    previous.detected_at,
                )
            }
            Some(previous) => (Transition::Unchanged, previous.detected_at),
        };
        let record = Arc::new(ContainerRecord {
            info,
            origin,
            user: owner.user,
            owner_source: owner.source,
            owner_verified: owner.verified,
            gpu_uuids: gpus.uuids(),
            gpus,
            owner_conflict: owner.conflict,
            detected_at,
        });
        self.containers
            .insert(record.info.id.clone(), record.clone());
        self.last_scan = Some(now);
        (transition, record, new_conflict)
    }

    /// Forgets a removed container.
    pub fn remove_container(
        &mut self,
        id: &str,
        now: jiff::Timestamp,
    ) -> Option<Arc<ContainerRecord>> {
        let removed = self.containers.remove(id);
        if removed.is_some() {
            self.last_scan = Some(now);
            self.note_removed(id, now);
        }
        removed
    }

    /// Remembers that a container was removed (also one removed while the controller was away).
    pub fn note_removed(&mut self, id: &str, now: jiff::Timestamp) {
        self.removed.insert(id.to_owned(), now);
        while self.removed.len() > REMOVED_REMEMBERED {
            let oldest = self
                .removed
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.removed.remove(&oldest);
            }
        }
    }

    /// A container's GPU access resolved against the latest GPU snapshot.
    #[must_use]
    pub fn resolve_gpus(&self, info: &ContainerInfo) -> ResolvedGpus {
        resolve(&info.gpu, &self.gpus)
    }

    /// Re-resolves every container's GPUs after the GPU snapshot changed.
    pub fn refresh_gpu_holders(&mut self) {
        let resolved: Vec<(String, ResolvedGpus)> = self
            .containers
            .values()
            .map(|record| (record.info.id.clone(), self.resolve_gpus(&record.info)))
            .filter(|(id, gpus)| {
                self.containers
                    .get(id)
                    .is_some_and(|record| record.gpus != *gpus)
            })
            .collect();
        for (id, gpus) in resolved {
            if let Some(record) = self.containers.get_mut(&id) {
                let record = Arc::make_mut(record);
                record.gpu_uuids = gpus.uuids();
                record.gpus = gpus;
            }
        }
    }
}
