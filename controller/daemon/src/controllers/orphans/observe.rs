//! One observation for the GpuOrphanPolicy planner, from the inventory and `/proc`: GPU
//! processes with their placement, the containers this engine knows live, stopped or removed,
//! each GPU with its holders and whether NVML's view of it is complete — or why there is none.

use std::collections::HashSet;

use ds01_host::process::ProcessIdentity;

use super::{
    context::OrphanContext,
    plan::{Memory, Observed, ObservedGpu, ObservedProcess, Placement},
};
use crate::inventory::attribution;

/// Why there is no observation to decide on (missing data means doing nothing).
#[derive(Debug, thiserror::Error)]
pub enum Unobserved {
    #[error("Docker is not observed right now; nothing is done until it is")]
    Docker,
    #[error("the GPU backend has not been polled yet; nothing is done until it is")]
    NotPolled,
    #[error("NVML cannot list the GPUs ({0}); nothing is done until it can")]
    NvmlCannotList(String),
    #[error("{0}")]
    Stale(String),
}

/// Builds the observation, or says why there is none.
pub fn observe(context: &OrphanContext, memory: &Memory) -> Result<Observed, Unobserved> {
    let inventory = context
        .inventory
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !inventory.docker.connected {
        return Err(Unobserved::Docker);
    }
    let Some(polled_at) = inventory.gpu.last_poll else {
        return Err(Unobserved::NotPolled);
    };
    if let Some(error) = inventory.gpus.errors.first() {
        return Err(Unobserved::NvmlCannotList(error.clone()));
    }
    let mut live_containers = HashSet::new();
    let mut stopped_containers = HashSet::new();
    for record in inventory.containers.values() {
        if record.info.state.is_live() {
            live_containers.insert(record.info.id.clone());
        } else {
            stopped_containers.insert(record.info.id.clone());
        }
    }
    let processes = inventory
        .gpu_processes
        .iter()
        .map(|process| ObservedProcess {
            identity: process.identity,
            gpu: process.gpu_uuid.clone(),
            parent_gpu: process.parent_gpu_uuid.clone(),
            // The snapshot may predate a termination: a process gone from /proc by now is a
            // ghost, whatever the snapshot said.
            placement: match &process.placement {
                _ if !exists(&context.proc_root, process.identity) => Placement::Ghost,
                attribution::Placement::Container { id, nested } => Placement::Container(
                    std::iter::once(id.clone())
                        .chain(nested.iter().cloned())
                        .collect(),
                ),
                attribution::Placement::Foreign { cgroup } => Placement::Foreign(cgroup.clone()),
                attribution::Placement::Host => Placement::Host,
                attribution::Placement::Ghost => Placement::Ghost,
            },
            uid: process.uid,
            user: process.user.clone(),
            name: process.name.clone(),
            cmdline: process.cmdline.clone(),
            zombie: process.zombie,
        })
        .collect();
    let gpus = inventory
        .gpus
        .gpus
        .iter()
        .filter(|gpu| !gpu.uuid.is_empty())
        .map(|gpu| ObservedGpu {
            uuid: gpu.uuid.clone(),
            index: gpu.index,
            mig: gpu.mig_enabled,
            holders: holders(&inventory, gpu),
            incomplete: (!gpu.errors.is_empty()).then(|| gpu.errors.join("; ")),
        })
        .collect();
    let removed_containers = inventory.removed.keys().cloned().collect();
    drop(inventory);
    let alive = memory
        .tracked
        .values()
        .map(|tracked| tracked.identity)
        .filter(|identity| is_alive(&context.proc_root, *identity))
        .collect();
    Ok(Observed {
        polled_at,
        processes,
        live_containers,
        stopped_containers,
        removed_containers,
        gpus,
        alive,
    })
}

/// Running containers that hold or claim `gpu` (or one of its MIG devices) in any form, and
/// running containers with GPU access the controller could not resolve to devices of this host
/// (an index or slot it cannot place may be this GPU; a UUID NVML does not report is not).
fn holders(
    inventory: &crate::inventory::Inventory,
    gpu: &ds01_host::gpu::GpuDevice,
) -> Vec<String> {
    let devices: Vec<&str> = std::iter::once(gpu.uuid.as_str())
        .chain(gpu.mig_devices.iter().map(|mig| mig.uuid.as_str()))
        .collect();
    let known: HashSet<&str> = inventory
        .gpus
        .gpus
        .iter()
        .flat_map(|gpu| {
            std::iter::once(gpu.uuid.as_str())
                .chain(gpu.mig_devices.iter().map(|mig| mig.uuid.as_str()))
        })
        .collect();
    inventory
        .containers
        .values()
        .filter(|record| record.info.state.is_live())
        .filter(|record| {
            // labhost: label claims count here too (DESIGN §2.2): a claim may hold a reset back,
            // never cause one.
            let claimed = record
                .gpus
                .claims
                .iter()
                .filter_map(|claim| claim.uuid.as_ref());
            let held = record
                .gpu_uuids
                .iter()
                .chain(claimed)
                .any(|held| devices.contains(&held.as_str()));
            let unresolved = (record.info.gpu.has_gpu && record.gpu_uuids.is_empty())
                || record.gpus.unresolved.iter().any(|id| {
                    !known.contains(id.as_str())
                        && !id.starts_with("GPU-")
                        && !id.starts_with("MIG-")
                });
            held || unresolved
        })
        .map(|record| record.info.name.clone())
        .collect()
}

/// The same process (pid and start time) is still in `/proc`, zombie or not.
pub fn exists(proc_root: &std::path::Path, identity: ProcessIdentity) -> bool {
    ds01_host::process::read_process(proc_root, identity.pid)
        .ok()
        .flatten()
        .is_some_and(|process| process.identity == identity)
}

/// The same process is still running (a zombie has exited already).
pub fn is_alive(proc_root: &std::path::Path, identity: ProcessIdentity) -> bool {
    ds01_host::process::read_process(proc_root, identity.pid)
        .ok()
        .flatten()
        .is_some_and(|process| process.identity == identity && !process.is_zombie())
}
