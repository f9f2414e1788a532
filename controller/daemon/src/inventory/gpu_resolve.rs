//! A container's GPU access resolved against NVML: the UUIDs it is granted (each with how),
//! the UUIDs labels claim, and ids NVML does not report — kept apart, so no consumer can take
//! a claim or an unknown id for a grant.
//!
//! Device forms: `all` (every GPU, by index), an index `N`, `N:M` (MIG device M of GPU N in
//! NVML's MIG device order), a `GPU-…` or `MIG-…` UUID; claims also take the slot form `N.M`.
//! `CUDA_VISIBLE_DEVICES` narrows the granted list: indexes count among the granted devices
//! in NVML order, UUIDs pick a granted device (a MIG UUID also through its granted parent), and
//! like CUDA the list stops at the first entry that names nothing. A value that names none of
//! the granted devices is ignored: the container's processes can set another one, so it keeps
//! what the toolkit granted.

use ds01_host::{
    GpuAccess, GpuVia,
    gpu::{GpuDevice, GpuSnapshot},
};
use serde::Serialize;

/// A GPU a container is granted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldGpu {
    /// GPU or MIG device UUID.
    pub uuid: String,
    /// How it was granted.
    pub via: GpuVia,
    /// The device as written (`all`, an index, a UUID, `N:M`).
    pub device: String,
    /// `CUDA_VISIBLE_DEVICES` narrowed the grant to it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub narrowed: bool,
}

/// A GPU a label claims (never a grant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimedGpu {
    /// UUID, when NVML reports the device.
    pub uuid: Option<String>,
    /// The device as written.
    pub device: String,
    /// The label.
    pub label: String,
    /// Always `label`.
    pub via: GpuVia,
}

/// What a container's GPU access amounts to on this host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResolvedGpus {
    /// Granted GPUs, in NVML order.
    pub granted: Vec<HeldGpu>,
    /// Claimed GPUs.
    pub claims: Vec<ClaimedGpu>,
    /// Granted or claimed ids NVML does not report (kept out of `granted`).
    pub unresolved: Vec<String>,
}

impl ResolvedGpus {
    /// The granted UUIDs, sorted.
    #[must_use]
    pub fn uuids(&self) -> Vec<String> {
        let mut uuids: Vec<String> = self.granted.iter().map(|held| held.uuid.clone()).collect();
        uuids.sort();
        uuids.dedup();
        uuids
    }
}

/// NVML position of a device: (GPU index, 0 for the GPU itself or MIG position + 1).
type Position = (u32, usize);

fn usable(gpus: &[GpuDevice]) -> impl Iterator<Item = &GpuDevice> {
    gpus.iter().filter(|gpu| !gpu.uuid.is_empty())
}

/// The devices one id names, with their NVML positions; empty when NVML reports none.
fn lookup(device: &str, gpus: &[GpuDevice], slots: bool) -> Vec<(String, Position)> {
    let whole = |gpu: &GpuDevice| (gpu.uuid.clone(), (gpu.index, 0));
    if device == "all" {
        return usable(gpus).map(whole).collect();
    }
    let separator = if slots { '.' } else { ':' };
    if let Some((gpu, mig)) = device.split_once(separator)
        && let (Ok(gpu), Ok(mig)) = (gpu.parse::<u32>(), mig.parse::<usize>())
    {
        return usable(gpus)
            .find(|candidate| candidate.index == gpu)
            .and_then(|parent| {
                let child = parent.mig_devices.get(mig)?;
                Some((child.uuid.clone(), (parent.index, mig + 1)))
            })
            .into_iter()
            .collect();
    }
    if let Ok(index) = device.parse::<u32>() {
        return usable(gpus)
            .find(|gpu| gpu.index == index)
            .map(whole)
            .into_iter()
            .collect();
    }
    for gpu in usable(gpus) {
        if gpu.uuid == device {
            return vec![whole(gpu)];
        }
        if let Some(position) = gpu.mig_devices.iter().position(|mig| mig.uuid == device) {
            return vec![(device.to_owned(), (gpu.index, position + 1))];
        }
    }
    Vec::new()
}

/// The parent GPU UUID of a MIG device UUID.
fn parent_of<'a>(uuid: &str, gpus: &'a [GpuDevice]) -> Option<&'a str> {
    usable(gpus)
        .find(|gpu| gpu.mig_devices.iter().any(|mig| mig.uuid == uuid))
        .map(|gpu| gpu.uuid.as_str())
}

/// Resolves a container's access against a snapshot.
#[must_use]
pub fn resolve(access: &GpuAccess, snapshot: &GpuSnapshot) -> ResolvedGpus {
    let gpus = &snapshot.gpus;
    let mut resolved = ResolvedGpus::default();
    let mut positioned: Vec<(Position, HeldGpu)> = Vec::new();
    for grant in &access.granted {
        let found = lookup(&grant.device, gpus, false);
        if found.is_empty() {
            resolved.unresolved.push(grant.device.clone());
        }
        for (uuid, position) in found {
            if !positioned.iter().any(|(_, held)| held.uuid == uuid) {
                positioned.push((
                    position,
                    HeldGpu {
                        uuid,
                        via: grant.via,
                        device: grant.device.clone(),
                        narrowed: false,
                    },
                ));
            }
        }
    }
    positioned.sort_by_key(|(position, _)| *position);
    let granted: Vec<HeldGpu> = positioned.into_iter().map(|(_, held)| held).collect();
    resolved.granted = match &access.cuda_visible {
        Some(visible) => narrow(&granted, visible, gpus).unwrap_or(granted),
        None => granted,
    };
    for claim in &access.claims {
        let found = lookup(&claim.device, gpus, true);
        if found.is_empty() {
            resolved.unresolved.push(claim.device.clone());
        }
        let uuids: Vec<Option<String>> = if found.is_empty() {
            vec![None]
        } else {
            found.into_iter().map(|(uuid, _)| Some(uuid)).collect()
        };
        for uuid in uuids {
            resolved.claims.push(ClaimedGpu {
                uuid,
                device: claim.device.clone(),
                label: claim.label.clone(),
                via: GpuVia::Label,
            });
        }
    }
    resolved.unresolved.dedup();
    resolved
}

/// The granted GPUs `CUDA_VISIBLE_DEVICES` leaves visible; `None` when it names none of them.
fn narrow(granted: &[HeldGpu], visible: &[String], gpus: &[GpuDevice]) -> Option<Vec<HeldGpu>> {
    let mut kept: Vec<HeldGpu> = Vec::new();
    for entry in visible {
        let picked = if let Ok(index) = entry.parse::<usize>() {
            granted.get(index).cloned()
        } else if let Some(held) = granted.iter().find(|held| held.uuid == *entry) {
            Some(held.clone())
        } else {
            parent_of(entry, gpus).and_then(|parent| {
                granted
                    .iter()
                    .find(|held| held.uuid == parent)
                    .map(|held| HeldGpu {
                        uuid: entry.clone(),
                        ..held.clone()
                    })
            })
        };
        // CUDA ignores everything after an entry that names no visible device.
        let Some(mut held) = picked else { break };
        held.narrowed = true;
        if !kept.iter().any(|other| other.uuid == held.uuid) {
            kept.push(held);
        }
    }
    (!kept.is_empty()).then_some(kept)
}

#[cfg(test)]
#[path = "gpu_resolve_tests.rs"]
mod tests;
