//! The GPU source: NVML snapshots on a blocking thread every `--gpu-poll-interval`, GPU
//! processes attributed to containers (through `/proc/<pid>/cgroup`) or to host users, and host
//! GPU processes inventoried from their second observation.

use ds01_spec::EventType;
use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use ds01_host::{
    cgroup::CgroupPlacement,
    gpu::{GpuProcess, GpuSnapshot, NvmlGpus},
    process::{ProcessIdentity, read_process},
};
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{HostProcessRecord, SharedInventory, observe::Change};
use crate::recorder::Recorder;

/// Process names never inventoried as host GPU processes (the orphan policy's defaults).
pub use ds01_spec::kinds::orphan::DEFAULT_SYSTEM_PROCESSES as SYSTEM_PROCESSES;

/// Where a GPU process lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Placement {
    /// In a container's cgroup (whether that container is known, running or gone).
    Container {
        /// Full id of the outermost container on the cgroup path (the one Docker runs).
        id: String,
        /// Ids of containers nested inside it on the path (Docker-in-Docker), outermost first.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        nested: Vec<String>,
    },
    /// In the cgroup of another container engine (Kubernetes, Podman, rootless Docker, …).
    Foreign {
        /// The cgroup path.
        cgroup: String,
    },
    /// Outside any container.
    Host,
    /// Listed by NVML but gone from `/proc`.
    Ghost,
}

/// A GPU process with what `/proc` says about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttributedProcess {
    /// PID and start time (start time 0 for ghosts).
    pub identity: ProcessIdentity,
    /// GPU or MIG device UUID.
    pub gpu_uuid: String,
    /// Parent GPU UUID (same as `gpu_uuid` when not MIG).
    pub parent_gpu_uuid: String,
    /// GPU memory in bytes, when known.
    pub used_memory_bytes: Option<u64>,
    /// Where it lives.
    pub placement: Placement,
    /// Owner uid and name (none for ghosts).
    pub uid: Option<u32>,
    /// Owner name.
    pub user: Option<String>,
    /// Short name.
    pub name: String,
    /// Command line.
    pub cmdline: String,
    /// Zombie (exited, unreaped).
    pub zombie: bool,
}

/// The GPU watcher.
pub struct GpuWatch {
    /// NVML, or none.
    pub nvml: Option<Arc<NvmlGpus>>,
    /// Where GPUs and processes are recorded.
    pub inventory: SharedInventory,
    /// Where events go.
    pub recorder: Arc<Recorder>,
    /// `/proc`.
    pub proc_root: PathBuf,
    /// Poll period.
    pub interval: Duration,
    /// Change notifications.
    pub changes: broadcast::Sender<Change>,
    /// Cancelled after the first poll (at once without NVML).
    pub observed: CancellationToken,
}

impl GpuWatch {
    /// Polls until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let Some(nvml) = self.nvml.clone() else {
            self.observed.cancel();
            return;
        };
        let mut seen_once: HashMap<ProcessIdentity, jiff::Timestamp> = HashMap::new();
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let handle = nvml.clone();
            let proc_root = self.proc_root.clone();
            let observed = tokio::task::spawn_blocking(move || {
                let snapshot = handle.snapshot();
                let processes = attribute(&snapshot, &proc_root);
                (snapshot, processes)
            })
            .await;
            match observed {
                Ok((snapshot, processes)) => self.apply(snapshot, processes, &mut seen_once),
                Err(error) => tracing::error!(%error, "GPU poll thread failed"),
            }
            self.observed.cancel();
        }
    }

    /// Records one observation: GPUs, attributed processes, host-process transitions.
    pub fn apply(
        &self,
        snapshot: GpuSnapshot,
        processes: Vec<AttributedProcess>,
        seen_once: &mut HashMap<ProcessIdentity, jiff::Timestamp>,
    ) {
        let now = jiff::Timestamp::now();
        let host: BTreeMap<u32, &AttributedProcess> = processes
            .iter()
            .filter(|process| {
                process.placement == Placement::Host
                    && !SYSTEM_PROCESSES.contains(&process.name.as_str())
            })
            .map(|process| (process.identity.pid, process))
            .collect();
        let mut discovered = Vec::new();
        let mut exited = Vec::new();
        {
            let mut inventory = self
                .inventory
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed_gpus = inventory.gpus != snapshot;
            let errors: Vec<String> = snapshot
                .errors
                .iter()
                .cloned()
                .chain(snapshot.gpus.iter().flat_map(|gpu| {
                    gpu.errors
                        .iter()
                        .map(move |e| format!("{}: {e}", gpu_label(gpu)))
                }))
                .collect();
            inventory.gpu.last_error = (!errors.is_empty()).then(|| errors.join("; "));
            inventory.gpu.last_poll = Some(now);
            inventory.gpus = snapshot;
            inventory.gpu_processes = processes.clone();
            if changed_gpus {
                inventory.refresh_gpu_holders();
            }
            // Gone, or a different process under the same pid: exited.
            let gone: Vec<u32> = inventory
                .host_processes
                .values()
                .filter(|known| {
                    host.get(&known.pid)
                        .is_none_or(|now| now.identity.start_time != known.start_time)
                })
                .map(|known| known.pid)
                .collect();
            for pid in gone {
                if let Some(record) = inventory.host_processes.remove(&pid) {
                    exited.push(record);
                }
            }
            for process in host.values() {
                if inventory.host_processes.contains_key(&process.identity.pid) {
                    continue;
                }
                // Inventoried from the second observation: a process seen once may be transient.
                if seen_once.contains_key(&process.identity) {
                    let record = HostProcessRecord {
                        pid: process.identity.pid,
                        start_time: process.identity.start_time,
                        user: process.user.clone().unwrap_or_default(),
                        uid: process.uid.unwrap_or(u32::MAX),
                        name: process.name.clone(),
                        cmdline: process.cmdline.clone(),
                        gpu_uuid: process.gpu_uuid.clone(),
                        gpu_memory_mb: process.used_memory_bytes.map(|bytes| bytes >> 20),
                        detected_at: now,
                    };
                    inventory.host_processes.insert(record.pid, record.clone());
                    discovered.push(record);
                }
            }
            inventory.last_scan = Some(now);
        }
        seen_once.retain(|identity, _| {
            host.get(&identity.pid)
                .is_some_and(|process| process.identity == *identity)
        });
        for process in host.values() {
            seen_once.entry(process.identity).or_insert(now);
        }
        for record in &discovered {
            self.recorder.emit(
                EventType::HostGpuProcessDiscovered,
                Some(&record.user),
                host_details(record),
            );
        }
        for record in &exited {
            self.recorder.emit(
                EventType::HostGpuProcessExited,
                Some(&record.user),
                host_details(record),
            );
        }
        let _ = self.changes.send(Change::Gpus);
    }
}

fn gpu_label(gpu: &ds01_host::gpu::GpuDevice) -> String {
    if gpu.uuid.is_empty() {
        format!("gpu {}", gpu.index)
    } else {
        gpu.uuid.clone()
    }
}

fn host_details(record: &HostProcessRecord) -> serde_json::Value {
    json!({
        "pid": record.pid,
        "uid": record.uid,
        "name": record.name,
        "cmdline": record.cmdline,
        "gpu_uuid": record.gpu_uuid,
        "gpu_memory_mb": record.gpu_memory_mb,
    })
}

/// Attributes every GPU and MIG-device process of a snapshot through `/proc`.
#[must_use]
pub fn attribute(snapshot: &GpuSnapshot, proc_root: &std::path::Path) -> Vec<AttributedProcess> {
    let mut attributed = Vec::new();
    for gpu in &snapshot.gpus {
        let listed = gpu
            .processes
            .iter()
            .map(|process| (gpu.uuid.clone(), process))
            .chain(gpu.mig_devices.iter().flat_map(|mig| {
                mig.processes
                    .iter()
                    .map(move |process| (mig.uuid.clone(), process))
            }));
        for (device_uuid, process) in listed {
            if attributed.iter().any(|known: &AttributedProcess| {
                known.identity.pid == process.pid && known.gpu_uuid == device_uuid
            }) {
                continue;
            }
            attributed.push(attribute_one(proc_root, &gpu.uuid, device_uuid, process));
        }
    }
    attributed
}

fn attribute_one(
    proc_root: &std::path::Path,
    parent: &str,
    device_uuid: String,
    process: &GpuProcess,
) -> AttributedProcess {
    let info = read_process(proc_root, process.pid).ok().flatten();
    let cgroup = ds01_host::cgroup::placement_of_pid(proc_root, process.pid).ok();
    let placement = match (&info, cgroup) {
        (None, _) | (_, None) => Placement::Ghost,
        (Some(_), Some(CgroupPlacement::Containers(mut ids))) => {
            let id = ids.remove(0);
            Placement::Container { id, nested: ids }
        }
        (Some(_), Some(CgroupPlacement::Foreign(cgroup))) => Placement::Foreign { cgroup },
        (Some(_), Some(CgroupPlacement::Host)) => Placement::Host,
    };
    AttributedProcess {
        identity: info.as_ref().map_or(
            ProcessIdentity {
                pid: process.pid,
                start_time: 0,
            },
            |info| info.identity,
        ),
        gpu_uuid: device_uuid,
        parent_gpu_uuid: parent.to_owned(),
        used_memory_bytes: process.used_memory_bytes,
        placement,
        uid: info.as_ref().map(|info| info.uid),
        user: info
            .as_ref()
            .map(|info| ds01_host::users::user_name(info.uid)),
        name: info
            .as_ref()
            .map(|info| info.name.clone())
            .unwrap_or_default(),
        cmdline: info
            .as_ref()
            .map(|info| info.cmdline.clone())
            .unwrap_or_default(),
        zombie: info
            .as_ref()
            .is_some_and(ds01_host::process::ProcessInfo::is_zombie),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> (GpuWatch, SharedInventory) {
        let inventory = SharedInventory::default();
        let (changes, _) = broadcast::channel(16);
        let watch = GpuWatch {
            nvml: None,
            inventory: inventory.clone(),
            recorder: Arc::new(Recorder::new(None, false)),
            proc_root: "/proc".into(),
            interval: Duration::from_secs(1),
            changes,
            observed: CancellationToken::new(),
        };
        (watch, inventory)
    }

    fn host(pid: u32, start_time: u64, name: &str) -> AttributedProcess {
        AttributedProcess {
            identity: ProcessIdentity { pid, start_time },
            gpu_uuid: "GPU-1".into(),
            parent_gpu_uuid: "GPU-1".into(),
            used_memory_bytes: Some(1 << 30),
            placement: Placement::Host,
            uid: Some(1000),
            user: Some("alice".into()),
            name: name.into(),
            cmdline: format!("{name} --train"),
            zombie: false,
        }
    }

    #[test]
    fn a_host_process_enters_the_inventory_at_its_second_observation() {
        let (watch, inventory) = watch();
        let mut seen = HashMap::new();
        watch.apply(
            GpuSnapshot::default(),
            vec![host(42, 100, "python")],
            &mut seen,
        );
        assert!(
            inventory.read().expect("lock").host_processes.is_empty(),
            "inventoried after one observation"
        );
        watch.apply(
            GpuSnapshot::default(),
            vec![host(42, 100, "python")],
            &mut seen,
        );
        let recorded = inventory
            .read()
            .expect("lock")
            .host_processes
            .get(&42)
            .cloned()
            .expect("inventoried");
        assert_eq!(
            (recorded.user.as_str(), recorded.gpu_memory_mb),
            ("alice", Some(1024))
        );
        let events: Vec<String> = watch
            .recorder
            .recent()
            .into_iter()
            .map(|event| event.event_type)
            .collect();
        assert_eq!(events, ["detection.host_gpu_process_discovered"]);
    }

    #[test]
    fn a_reused_pid_is_a_new_process_and_system_processes_are_never_inventoried() {
        let (watch, inventory) = watch();
        let mut seen = HashMap::new();
        for _ in 0..2 {
            watch.apply(
                GpuSnapshot::default(),
                vec![host(42, 100, "python"), host(7, 5, "nvidia-persistenced")],
                &mut seen,
            );
        }
        // Same pid, different start time: the old process exited, the new one starts over.
        watch.apply(
            GpuSnapshot::default(),
            vec![host(42, 999, "python")],
            &mut seen,
        );
        assert!(inventory.read().expect("lock").host_processes.is_empty());
        watch.apply(
            GpuSnapshot::default(),
            vec![host(42, 999, "python")],
            &mut seen,
        );
        let recorded = inventory
            .read()
            .expect("lock")
            .host_processes
            .get(&42)
            .cloned()
            .expect("new process inventoried");
        assert_eq!(recorded.start_time, 999);
        assert!(
            !inventory
                .read()
                .expect("lock")
                .host_processes
                .contains_key(&7)
        );
        let events: Vec<String> = watch
            .recorder
            .recent()
            .into_iter()
            .map(|event| event.event_type)
            .collect();
        assert_eq!(
            events,
            [
                "detection.host_gpu_process_discovered",
                "detection.host_gpu_process_exited",
                "detection.host_gpu_process_discovered"
            ]
        );
    }
}
