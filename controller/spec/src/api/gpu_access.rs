//! How a container reaches GPUs, as the API shows it: the GPUs the NVIDIA toolkit grants it
//! (each with how), the GPUs labels claim (never a grant), and an owner label the kernel's
//! evidence contradicted.

use serde::{Deserialize, Serialize};

/// A GPU or MIG device a container is granted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuGrantView {
    /// GPU or MIG device UUID.
    pub uuid: String,
    /// How: `device_request`, `env`, `environ`, `devices`.
    pub via: String,
    /// The device as written (`all`, an index, a UUID, `N:M`).
    pub device: String,
    /// `CUDA_VISIBLE_DEVICES` narrowed the grant to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub narrowed: bool,
}

/// A GPU a label claims: shown, never counted as held.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuClaimView {
    /// UUID, when NVML reports the device.
    pub uuid: Option<String>,
    /// The device as written.
    pub device: String,
    /// The label (`ds01.gpu.uuid`, `ds01.gpu.uuids`, `ds01.gpu_slot`).
    pub label: String,
    /// Always `label`.
    pub via: String,
}

/// A device the toolkit grants, as written, before resolution against NVML.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuGrantWritten {
    /// The device as written.
    pub device: String,
    /// How it was granted.
    pub via: String,
}

/// An owner label contradicted by kernel evidence; the evidence won.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerConflictView {
    /// The user the label names.
    pub claimed: String,
    /// The label: `label:ds01.user`, `label:aime.mlc.USER`.
    pub claimed_by: String,
    /// The user the evidence names (the owner).
    pub evidence: String,
    /// `init-process` or `cgroup-parent`.
    pub evidence_source: String,
    /// What was observed (`uid 1001`, `cgroup parent ds01-student-bob.slice`).
    pub observed: String,
    /// Always `evidence`.
    pub winner: String,
}
