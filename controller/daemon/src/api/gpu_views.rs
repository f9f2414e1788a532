//! A container's GPU access and owner conflict in the API's wire types.

use ds01_host::{ContainerInfo, GpuVia, gpu_access::EnvSource};
use ds01_spec::api::{
    GpuAccessView, GpuClaimView, GpuGrantView, GpuGrantWritten, OwnerConflictView,
};

use crate::inventory::ContainerRecord;

/// The granted GPUs with how each was granted.
#[must_use]
pub fn grants(record: &ContainerRecord) -> Vec<GpuGrantView> {
    record
        .gpus
        .granted
        .iter()
        .map(|held| GpuGrantView {
            uuid: held.uuid.clone(),
            via: held.via.as_str().to_owned(),
            device: held.device.clone(),
            narrowed: held.narrowed,
        })
        .collect()
}

/// The GPUs labels claim.
#[must_use]
pub fn claims(record: &ContainerRecord) -> Vec<GpuClaimView> {
    record
        .gpus
        .claims
        .iter()
        .map(|claim| GpuClaimView {
            uuid: claim.uuid.clone(),
            device: claim.device.clone(),
            label: claim.label.clone(),
            via: GpuVia::Label.as_str().to_owned(),
        })
        .collect()
}

/// How the container reaches GPUs, before resolution against NVML.
#[must_use]
pub fn access(info: &ContainerInfo) -> GpuAccessView {
    let gpu = &info.gpu;
    let mut via: Vec<String> = Vec::new();
    for grant in &gpu.granted {
        let word = grant.via.as_str().to_owned();
        if !via.contains(&word) {
            via.push(word);
        }
    }
    GpuAccessView {
        has_gpu: gpu.has_gpu,
        all: gpu.granted.iter().any(|grant| grant.device == "all"),
        devices: gpu
            .granted
            .iter()
            .filter(|grant| grant.device != "all")
            .map(|grant| grant.device.clone())
            .collect(),
        via,
        granted: gpu
            .granted
            .iter()
            .map(|grant| GpuGrantWritten {
                device: grant.device.clone(),
                via: grant.via.as_str().to_owned(),
            })
            .collect(),
        cuda_visible: gpu.cuda_visible.clone(),
        runtime: gpu.runtime.clone(),
        hook: gpu.hook,
        requested: gpu.requested.clone(),
        env_source: match gpu.env_source {
            EnvSource::Inspect => "inspect",
            EnvSource::Environ => "environ",
        }
        .to_owned(),
    }
}

/// The owner conflict, if any.
#[must_use]
pub fn conflict(record: &ContainerRecord) -> Option<OwnerConflictView> {
    record
        .owner_conflict
        .as_ref()
        .map(|conflict| OwnerConflictView {
            claimed: conflict.claimed.clone(),
            claimed_by: conflict.claimed_by.to_owned(),
            evidence: conflict.evidence.clone(),
            evidence_source: conflict.evidence_source.to_owned(),
            observed: conflict.observed.clone(),
            winner: conflict.winner.to_owned(),
        })
}
