//! Sampling a container's idle signals: CPU from its cgroup's usage counter, network from its
//! namespace's `/proc/<pid>/net/dev` (deltas over a window, never cumulative counters), GPU
//! from NVML (and, for MIG devices, DCGM's engine activity of their GPU instance), and the
//! keep-alive file, read inside the container's root without following symlinks.

use std::{collections::HashMap, path::Path, time::Duration};

use ds01_host::{cgroup, process};
use jiff::Timestamp;
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
    wall: Timestamp,
    cpu_ns: Option<u64>,
    network_bytes: Option<u64>,
    cpu: Option<f64>,
    network: Option<u64>,
    /// The window `cpu` and `network` measure began at this reading's predecessor.
    window_start: Option<Timestamp>,
}

/// What sampling needs besides the container.
#[derive(Clone, Copy, Debug)]
pub struct SampleSettings<'a> {
    /// `/proc`.
    pub proc_root: &'a Path,
    /// `sampleInterval`.
    pub interval: Duration,
    /// `keepAlive.file` inside the container.
    pub keep_alive_file: &'a str,
    /// `keepAlive.maxAge`.
    pub keep_alive_age: Duration,
}

impl Sampler {
    /// One sample of `record`'s counters and keep-alive file, with `gpu` already known.
    /// Counters are read at most once per `interval` (passes in between reuse the last
    /// deltas, so "bytes per interval" keeps its meaning); a counter seen for the first time
    /// gives `None` (unknown) until there is a delta.
    pub fn sample(
        &mut self,
        record: &ContainerRecord,
        gpu: Option<f64>,
        settings: SampleSettings<'_>,
        now: Timestamp,
    ) -> Sample {
        let monotonic = Instant::now();
        let keep_alive = keep_alive_fresh(record, settings);
        if let Some(previous) = self
            .previous
            .get(&record.info.id)
            .filter(|previous| monotonic.duration_since(previous.at) < settings.interval)
        {
            return Sample {
                gpu,
                cpu: previous.cpu,
                network: previous.network,
                keep_alive,
                window_start: previous.window_start,
            };
        }
        let pid = record.info.pid;
        let proc_root = settings.proc_root;
        let cpu_ns = pid
            .and_then(|pid| cgroup::cgroup_paths_of_pid(proc_root, pid).ok())
            .and_then(|paths| cgroup::cpu_usage_nanos(Path::new("/sys/fs/cgroup"), &paths));
        let network_bytes = pid.and_then(|pid| process::network_bytes(proc_root, pid).ok());
        let (cpu, network, window_start) = match self.previous.get(&record.info.id) {
            Some(previous) if monotonic > previous.at => {
                let elapsed = monotonic.duration_since(previous.at).as_secs_f64();
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
                        (now.saturating_sub(then) as f64 * settings.interval.as_secs_f64()
                            / elapsed) as u64
                    });
                (cpu, network, Some(previous.wall))
            }
            _ => (None, None, None),
        };
        self.previous.insert(
            record.info.id.clone(),
            Counters {
                at: monotonic,
                wall: now,
                cpu_ns,
                network_bytes,
                cpu,
                network,
                window_start,
            },
        );
        Sample {
            gpu,
            cpu,
            network,
            keep_alive,
            window_start,
        }
    }

    /// Forgets containers that no longer exist.
    pub fn retain(&mut self, existing: &dyn Fn(&str) -> bool) {
        self.previous.retain(|id, _| existing(id));
    }
}

/// Device utilisation when the container holds its GPUs alone; its processes' SM utilisation
/// when a GPU is shared (unknown when it has processes there but NVML gave no samples for
/// them); on a MIG device, the engine activity of its GPU instance from DCGM. UUIDs NVML does
/// not report are not this host's GPUs and are skipped. Unknown when any value is missing.
pub fn gpu_signal(
    record: &ContainerRecord,
    inventory: &Inventory,
    mig: Option<&MigActivity>,
) -> Option<f64> {
    if record.gpu_uuids.is_empty() {
        return None;
    }
    let mut utilization: f64 = 0.0;
    let mut measured = false;
    for uuid in &record.gpu_uuids {
        let Some(gpu) = inventory.gpus.gpus.iter().find(|gpu| gpu.uuid == *uuid) else {
            let is_mig_device = inventory
                .gpus
                .gpus
                .iter()
                .any(|gpu| gpu.mig_devices.iter().any(|device| device.uuid == *uuid));
            if is_mig_device {
                utilization = utilization.max(mig_signal(uuid, inventory, mig?)?);
                measured = true;
            }
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
                .filter(|process| process.parent_gpu_uuid == *uuid)
                .filter(|process| matches!(&process.placement, crate::inventory::attribution::Placement::Container { id, .. } if *id == record.info.id))
                .map(|process| process.identity.pid)
                .collect();
            let samples: Vec<u32> = gpu
                .process_utilization
                .iter()
                .filter(|(pid, _)| mine.contains(pid))
                .map(|(_, sm)| *sm)
                .collect();
            if !mine.is_empty() && samples.is_empty() {
                return None;
            }
            f64::from(samples.iter().sum::<u32>())
        } else {
            f64::from(gpu.utilization_gpu?)
        };
        utilization = utilization.max(value);
        measured = true;
    }
    measured.then_some(utilization)
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

/// A keep-alive file younger than `keepAlive.maxAge`, read inside the container's root
/// (`/proc/<pid>/root`) without following symlinks: nothing runs in the container, so the
/// check itself is never activity, and no symlink can make it read a host file.
fn keep_alive_fresh(record: &ContainerRecord, settings: SampleSettings<'_>) -> bool {
    let Some(pid) = record.info.pid else {
        return false;
    };
    ds01_host::container_fs::open_root(settings.proc_root, pid, &record.info.id)
        .and_then(|root| root.modified(settings.keep_alive_file))
        .ok()
        .flatten()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age < settings.keep_alive_age)
}
