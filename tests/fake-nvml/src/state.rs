//! The fake's state file (DESIGN §5): read on init and at the start of every observation
//! (`nvmlDeviceGetCount_v2`), so tests change GPUs and processes by rewriting the file.

use serde::Deserialize;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FakeState {
    /// Reported driver version.
    pub driver_version: String,
    /// GPUs, index = position.
    pub gpus: Vec<FakeGpu>,
    /// Make `nvmlInit` fail with this NVML return code (e.g. 9 driver not loaded).
    pub init_error: Option<u32>,
    /// Make `nvmlDeviceGetCount` fail with this code.
    pub count_error: Option<u32>,
}

/// One GPU.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FakeGpu {
    /// `GPU-…`.
    pub uuid: String,
    /// Product name.
    pub name: String,
    /// Total memory, MiB.
    pub memory_total_mi_b: u64,
    /// Used memory, MiB.
    pub memory_used_mi_b: u64,
    /// Utilisation, percent.
    pub utilization_gpu: u32,
    /// Memory utilisation, percent.
    pub utilization_memory: u32,
    /// Temperature, °C.
    pub temperature_c: u32,
    /// MIG mode.
    pub mig_mode: bool,
    /// Compute processes.
    pub processes: Vec<FakeProcess>,
    /// Per-process samples.
    pub process_utilization: Vec<FakeSample>,
    /// MIG devices.
    pub mig_devices: Vec<FakeMig>,
    /// Every call on this GPU fails with GPU_IS_LOST.
    pub lost: bool,
    /// Make single calls fail: `{utilization: 3, temperature: 3, processes: 999, …}`.
    pub errors: std::collections::HashMap<String, u32>,
}

/// One compute process.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FakeProcess {
    /// Host PID.
    pub pid: u32,
    /// Memory, MiB.
    pub used_memory_mi_b: u64,
}

/// One utilisation sample.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FakeSample {
    /// PID.
    pub pid: u32,
    /// SM utilisation, percent.
    pub sm_util: u32,
}

/// One MIG device.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FakeMig {
    /// `MIG-…`.
    pub uuid: String,
    /// GPU instance.
    pub gpu_instance_id: u32,
    /// Compute instance.
    pub compute_instance_id: u32,
    /// Memory, MiB.
    pub memory_total_mi_b: u64,
    /// Processes.
    pub processes: Vec<FakeProcess>,
}

/// Reads the file named by `DS01_FAKE_NVML_STATE`; an unreadable or invalid file reads as no
/// GPUs (and says why on stderr), so a test sees the problem instead of a crash.
#[must_use]
pub fn load() -> FakeState {
    let Ok(path) = std::env::var("DS01_FAKE_NVML_STATE") else {
        return FakeState::default();
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return FakeState::default();
    };
    let stream = ds01_spec::yaml::parse_stream(&text);
    let Some(document) = stream.documents.into_iter().next() else {
        return FakeState::default();
    };
    match serde_json::from_value(document.value) {
        Ok(state) => state,
        Err(error) => {
            eprintln!("fake NVML: invalid state file {path}: {error}");
            FakeState::default()
        }
    }
}
