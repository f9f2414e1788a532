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
    gpu::{GpuSnapshot, NvmlGpus},
    process::ProcessIdentity,
};
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::attribution::{AttributedProcess, Placement, attribute};
use super::{HostProcessRecord, InventoryWriter, observe::Change};
use crate::recorder::Recorder;

/// Process names never inventoried as host GPU processes (the orphan policy's defaults).
pub use ds01_spec::kinds::orphan::DEFAULT_SYSTEM_PROCESSES as SYSTEM_PROCESSES;

/// The GPU watcher.
pub struct GpuWatch {
    /// NVML, or none.
    pub nvml: Option<Arc<NvmlGpus>>,
    /// Where GPUs and processes are recorded.
    pub inventory: InventoryWriter,
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
            let poll = tokio::task::spawn_blocking(move || {
                let snapshot = handle.snapshot();
                let processes = attribute(&snapshot, &proc_root);
                (snapshot, processes)
            });
            // A hung driver never returns: shutdown does not wait for it (the thread is left
            // to the runtime's shutdown timeout).
            let observed = tokio::select! {
                () = shutdown.cancelled() => return,
                observed = poll => observed,
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> (GpuWatch, crate::inventory::SharedInventory) {
        let inventory = InventoryWriter::default();
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
        (watch, inventory.reader())
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
