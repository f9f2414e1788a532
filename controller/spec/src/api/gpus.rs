//! `GET /v1/gpus`: GPUs and MIG devices with their holders and processes by class.

use serde::{Deserialize, Serialize};

use super::GpuBackendView;

/// The list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuList {
    /// GPUs by index.
    pub gpus: Vec<GpuView>,
    /// The GPU source's health.
    pub backend: GpuBackendView,
}

/// GPU processes on one device, by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCounts {
    /// In containers.
    pub container: usize,
    /// Outside containers.
    pub host: usize,
    /// Gone from `/proc` but still listed by NVML.
    pub ghost: usize,
    /// In the cgroup of another container engine.
    #[serde(default)]
    pub foreign: usize,
}

/// One physical GPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuView {
    /// NVML index.
    pub index: u32,
    /// `GPU-…` UUID.
    pub uuid: String,
    /// Product name.
    pub name: String,
    /// Total memory.
    pub memory_total_bytes: Option<u64>,
    /// Used memory.
    pub memory_used_bytes: Option<u64>,
    /// Utilisation percent.
    pub utilization_gpu: Option<u32>,
    /// Temperature, °C.
    pub temperature_c: Option<u32>,
    /// MIG mode; `None` when unknown.
    pub mig_enabled: Option<bool>,
    /// Unusable (lost, unknown).
    pub lost: bool,
    /// Calls that failed for this GPU.
    pub errors: Vec<String>,
    /// Running containers holding it, by name; for a non-admin, other users' containers are
    /// `(another user)` (see `othersHolding`).
    pub holders: Vec<String>,
    /// How many of `holders` belong to other users (non-admins only; 0 for admins).
    #[serde(default)]
    pub others_holding: usize,
    /// Its processes by class.
    pub processes: ProcessCounts,
    /// Its MIG devices.
    pub mig_devices: Vec<MigDeviceView>,
}

/// One MIG device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigDeviceView {
    /// `MIG-…` UUID.
    pub uuid: String,
    /// Total memory.
    pub memory_total_bytes: Option<u64>,
    /// Running containers holding it (as for a GPU).
    pub holders: Vec<String>,
    /// How many of `holders` belong to other users.
    #[serde(default)]
    pub others_holding: usize,
    /// Its processes by class.
    pub processes: ProcessCounts,
}
