//! Sampling a container's idle signals: CPU from its cgroup's usage counter, network from its
//! namespace's `/proc/<pid>/net/dev` (deltas, never cumulative counters), GPU from NVML (and,
//! for MIG devices, DCGM's engine activity of their GPU instance), and the keep-alive file
//! through the host path of a bind mount.

use std::{collections::HashMap, path::Path, time::Duration};

use ds01_host::{cgroup, process};
use tokio::time::Instant;

use super::{mig_activity::MigActivity, plan::Sample};
use crate::inventory::{ContainerRecord, Inventory};

/// The previous counters of each container, for deltas, and the last sample they gave.
#[derive(Debug, Default)]
pub struct Sampler {
    previous: HashMap<String, Counters>,
}

#[derive(Debug, Clone)]
struct Counters {
    at: Instant,
    cpu_ns: Option<u64>,
    network_bytes: Option<u64>,
    cpu: Option<f64>,
    network: Option<u64>,
}

impl Sampler {
    /// One sample of `record`'s signals. Counters are read at most once per `interval`
    /// (passes in between reuse the last deltas, so "bytes per interval" keeps its meaning); a
    /// counter seen for the first time gives `None` (unknown) until there is a delta.
    pub fn sample(
        &mut self,
        record: &ContainerRecord,
        inventory: &Inventory,
        proc_root: &Path,
        interval: Duration,
        keep_alive: (&str, Duration),
        mig: Option<&MigActivity>,
    ) -> Sample {
        let now = Instant::now();
        let gpu = gpu_signal(record, inventory, mig);
        let keep_alive = keep_alive_fresh(record, keep_alive.0, keep_alive.1);
        if let Some(previous) = self
            .previous
            .get(&record.info.id)
            .filter(|previous| now.duration_since(previous.at) < interval)
        {
            return Sample {
                gpu,
                cpu: previous.cpu,
                network: previous.network,
                keep_alive,
            };
        }
        let pid = record.info.pid;
        let cpu_ns = pid
            .and_then(|pid| cgroup::cgroup_paths_of_pid(proc_root, pid).ok())
            .and_then(|paths| cgroup::cpu_usage_nanos(Path::new("/sys/fs/cgroup"), &paths));
        let network_bytes = pid.and_then(|pid| process::network_bytes(proc_root, pid).ok());
        let (cpu, network) = match self.previous.get(&record.info.id) {
            Some(previous) if now > previous.at => {
                let elapsed = now.duration_since(previous.at).as_secs_f64();
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "nanosecond deltas over a sample interval"
                )]
                let cpu = cpu_ns
                    .zip(previous.cpu_ns)
                    .map(|(now, then)| now.saturating_sub(then) as f64 / 1e9 / elapsed * 100.0);
                // Bytes per interval, scaled when the pass came late.
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss,
                    reason = "byte counts"
                )]
                let network = network_bytes
                    .zip(previous.network_bytes)
                    .map(|(now, then)| {
                        (now.saturating_sub(then) as f64 * interval.as_secs_f64() / elapsed) as u64
                    });
                (cpu, network)
            }
            _ => (None, None),
        };
        self.previous.insert(
            record.info.id.clone(),
            Counters {
                at: now,
                cpu_ns,
                network_bytes,
                cpu,
                network,
            },
        );
        Sample {
            gpu,
            cpu,
            network,
            keep_alive,
        }
    }

    /// Drops a container's counters so its next sample starts a fresh delta (after the
    /// controller itself ran something inside it, which must not count as the owner's activity).
    pub fn rebaseline(&mut self, id: &str) {
        self.previous.remove(id);
    }

    /// Forgets containers that no longer exist.
    pub fn retain(&mut self, existing: &dyn Fn(&str) -> bool) {
        self.previous.retain(|id, _| existing(id));
    }
}

/// Device utilisation when the container holds its GPUs alone; its processes' SM utilisation
/// when a GPU is shared; on a MIG device, the engine activity of its GPU instance from DCGM.
/// Unknown when any of these is missing.
fn gpu_signal(
    record: &ContainerRecord,
    inventory: &Inventory,
    mig: Option<&MigActivity>,
) -> Option<f64> {
    if record.gpu_uuids.is_empty() {
        return None;
    }
    let mut utilization: f64 = 0.0;
    for uuid in &record.gpu_uuids {
        let Some(gpu) = inventory.gpus.gpus.iter().find(|gpu| gpu.uuid == *uuid) else {
            utilization = utilization.max(mig_signal(uuid, inventory, mig?)?);
            continue;
        };
        let shared = inventory.containers.values().any(|other| {
            other.info.id != record.info.id
                && other.info.state.is_live()
                && other.gpu_uuids.contains(uuid)
        });
        let value = if shared {
            let mine: Vec<u32> = inventory
                .gpu_processes
                .iter()
                .filter(|process| matches!(&process.placement, crate::inventory::gpu_watch::Placement::Container { id, .. } if *id == record.info.id))
                .map(|process| process.identity.pid)
                .collect();
            f64::from(
                gpu.process_utilization
                    .iter()
                    .filter(|(pid, _)| mine.contains(pid))
                    .map(|(_, sm)| *sm)
                    .sum::<u32>(),
            )
        } else {
            f64::from(gpu.utilization_gpu?)
        };
        utilization = utilization.max(value);
    }
    Some(utilization)
}

/// Percent engine activity of the GPU instance behind MIG device `uuid`.
fn mig_signal(uuid: &str, inventory: &Inventory, mig: &MigActivity) -> Option<f64> {
    inventory.gpus.gpus.iter().find_map(|gpu| {
        let device = gpu.mig_devices.iter().find(|device| device.uuid == uuid)?;
        let instance = device.gpu_instance_id?;
        mig.get(&(gpu.uuid.clone(), instance))
            .map(|fraction| fraction * 100.0)
    })
}

/// Whether `record` holds a MIG device.
#[must_use]
pub fn holds_mig_device(record: &ContainerRecord, inventory: &Inventory) -> bool {
    record.gpu_uuids.iter().any(|uuid| {
        inventory
            .gpus
            .gpus
            .iter()
            .any(|gpu| gpu.mig_devices.iter().any(|device| device.uuid == *uuid))
    })
}

/// A keep-alive file younger than `max_age`, read through the host path of the bind mount
/// that contains it, else through the container's root (`/proc/<pid>/root`). Nothing runs in
/// the container, so the check itself is never activity; a symlink is not followed.
fn keep_alive_fresh(record: &ContainerRecord, file: &str, max_age: Duration) -> bool {
    let path = host_path(record, file).or_else(|| {
        record
            .info
            .pid
            .map(|pid| std::path::PathBuf::from(format!("/proc/{pid}/root{file}")))
    });
    let Some(path) = path else { return false };
    std::fs::symlink_metadata(path)
        .ok()
        .filter(std::fs::Metadata::is_file)
        .and_then(|metadata| metadata.modified().ok())
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age < max_age)
}

/// The host path of `path` inside the container, when a bind mount covers it.
#[must_use]
pub fn host_path(record: &ContainerRecord, path: &str) -> Option<std::path::PathBuf> {
    host_path_parts(record, path)
        .map(|(source, rest)| std::path::PathBuf::from(format!("{}{rest}", source.display())))
}

/// The bind mount's host source covering `path` and the rest of `path` below the mount point.
#[must_use]
pub fn host_path_parts(
    record: &ContainerRecord,
    path: &str,
) -> Option<(std::path::PathBuf, String)> {
    record
        .info
        .mounts
        .iter()
        .filter(|mount| mount.kind == "bind")
        .filter_map(|mount| {
            let rest = path.strip_prefix(mount.destination.trim_end_matches('/'))?;
            (rest.is_empty() || rest.starts_with('/')).then(|| {
                (
                    mount.destination.len(),
                    (std::path::PathBuf::from(&mount.source), rest.to_owned()),
                )
            })
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, parts)| parts)
}
