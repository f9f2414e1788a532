//! GPUs through NVML (nvml-wrapper): one blocking snapshot of devices, MIG devices, compute
//! processes and utilisation. A failing call degrades that one value and is recorded; it never
//! fails the snapshot. Tests load a fake `libnvidia-ml.so.1` through the same code.

use std::{ffi::OsStr, path::Path};

use nvml_wrapper::{
    Device, Nvml, enum_wrappers::device::TemperatureSensor, enums::device::UsedGpuMemory,
    error::NvmlError,
};
use serde::{Deserialize, Serialize};

/// A compute process on a GPU or MIG device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    /// Host PID.
    pub pid: u32,
    /// GPU memory it uses, when NVML can tell.
    pub used_memory_bytes: Option<u64>,
}

/// A MIG device (GPU instance slice).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigDevice {
    /// `MIG-…` UUID.
    pub uuid: String,
    /// Its GPU instance id (DCGM's `GPU_I_ID`); `None` when NVML cannot say.
    #[serde(default)]
    pub gpu_instance_id: Option<u32>,
    /// Total memory.
    pub memory_total_bytes: Option<u64>,
    /// Its compute processes.
    pub processes: Vec<GpuProcess>,
}

/// One physical GPU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuDevice {
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
    /// Memory utilisation percent.
    pub utilization_memory: Option<u32>,
    /// Temperature, °C.
    pub temperature_c: Option<u32>,
    /// MIG mode currently enabled; `None` when unknown or unsupported.
    pub mig_enabled: Option<bool>,
    /// MIG devices (only with MIG enabled).
    pub mig_devices: Vec<MigDevice>,
    /// Compute processes on the whole GPU.
    pub processes: Vec<GpuProcess>,
    /// Recent per-process SM utilisation samples: (pid, percent).
    pub process_utilization: Vec<(u32, u32)>,
    /// Calls that failed for this GPU (`utilization: Not supported`), for status.
    pub errors: Vec<String>,
    /// The GPU itself is unusable (lost, unknown); its other values are absent.
    pub lost: bool,
}

/// Everything NVML reported at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuSnapshot {
    /// Driver version.
    pub driver_version: Option<String>,
    /// Devices by index.
    pub gpus: Vec<GpuDevice>,
    /// Failures not tied to one GPU (the device count, say).
    pub errors: Vec<String>,
}

/// Errors initialising NVML.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// The library could not be loaded or initialised.
    #[error("cannot initialise NVML from {library}")]
    Init {
        /// Library path tried.
        library: String,
        /// Cause.
        #[source]
        source: NvmlError,
    },
}

/// An initialised NVML library.
pub struct NvmlGpus {
    nvml: Nvml,
}

impl std::fmt::Debug for NvmlGpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NvmlGpus")
    }
}

impl NvmlGpus {
    /// Loads `library` (default: the system `libnvidia-ml.so.1`) and initialises it.
    ///
    /// # Errors
    /// When the library is missing or NVML refuses to start (no driver).
    pub fn init(library: Option<&Path>) -> Result<Self, GpuError> {
        let described = library.map_or_else(
            || "libnvidia-ml.so.1".to_owned(),
            |path| path.display().to_string(),
        );
        let mut builder = Nvml::builder();
        if let Some(path) = library {
            builder.lib_path(OsStr::new(path.as_os_str()));
        }
        let nvml = builder.init().map_err(|source| GpuError::Init {
            library: described,
            source,
        })?;
        Ok(NvmlGpus { nvml })
    }

    /// Takes a snapshot (blocking: call from a blocking thread).
    #[must_use]
    pub fn snapshot(&self) -> GpuSnapshot {
        let mut snapshot = GpuSnapshot {
            driver_version: self.nvml.sys_driver_version().ok(),
            ..GpuSnapshot::default()
        };
        let count = match self.nvml.device_count() {
            Ok(count) => count,
            Err(error) => {
                snapshot.errors.push(format!("device count: {error}"));
                return snapshot;
            }
        };
        for index in 0..count {
            snapshot.gpus.push(match self.nvml.device_by_index(index) {
                Ok(device) => read_device(index, &device),
                Err(error) => GpuDevice {
                    index,
                    lost: true,
                    errors: vec![format!("device handle: {error}")],
                    ..GpuDevice::default()
                },
            });
        }
        snapshot
    }
}

fn record<T>(errors: &mut Vec<String>, what: &str, result: Result<T, NvmlError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            let lost = matches!(error, NvmlError::GpuLost);
            errors.push(format!(
                "{what}: {error}{}",
                if lost { LOST_MARK } else { "" }
            ));
            None
        }
    }
}

/// Appended to an error message when NVML says the GPU is lost.
const LOST_MARK: &str = " (gpu lost)";

fn processes(errors: &mut Vec<String>, device: &Device<'_>) -> Vec<GpuProcess> {
    record(
        errors,
        "compute processes",
        device.running_compute_processes(),
    )
    .unwrap_or_default()
    .into_iter()
    .map(|process| GpuProcess {
        pid: process.pid,
        used_memory_bytes: match process.used_gpu_memory {
            UsedGpuMemory::Used(bytes) => Some(bytes),
            UsedGpuMemory::Unavailable => None,
        },
    })
    .collect()
}

/// NVML's GPU instance id of a MIG device handle; nvml-wrapper has no safe call for it.
#[allow(unsafe_code)]
fn gpu_instance_id(mig: &Device<'_>) -> Result<u32, String> {
    let library = mig.nvml().lib();
    if library.nvmlDeviceGetGpuInstanceId.is_err() {
        return Err("nvmlDeviceGetGpuInstanceId is not in this NVML library".to_owned());
    }
    let mut id: std::ffi::c_uint = 0;
    // SAFETY: the symbol is present (checked above); the handle is a live MIG device handle of
    // this NVML instance, and `id` is a valid place for the answer.
    let code = unsafe { library.nvmlDeviceGetGpuInstanceId(mig.handle(), &raw mut id) };
    if code == 0 {
        Ok(id)
    } else {
        Err(format!(
            "nvmlDeviceGetGpuInstanceId returned NVML error {code}"
        ))
    }
}

fn read_device(index: u32, device: &Device<'_>) -> GpuDevice {
    let mut errors = Vec::new();
    let Some(uuid) = record(&mut errors, "uuid", device.uuid()) else {
        // Without its UUID a GPU cannot be matched to anything: treat it as lost.
        return GpuDevice {
            index,
            lost: true,
            errors,
            ..GpuDevice::default()
        };
    };
    let name = record(&mut errors, "name", device.name()).unwrap_or_default();
    let memory = record(&mut errors, "memory", device.memory_info());
    let utilization = record(&mut errors, "utilization", device.utilization_rates());
    let temperature_c = record(
        &mut errors,
        "temperature",
        device.temperature(TemperatureSensor::Gpu),
    );
    let mig_enabled =
        record(&mut errors, "mig mode", device.mig_mode()).map(|mode| mode.current == 1);
    let mut mig_devices = Vec::new();
    if mig_enabled == Some(true) {
        let max = record(&mut errors, "mig device count", device.mig_device_count()).unwrap_or(0);
        for mig_index in 0..max {
            match device.mig_device_by_index(mig_index) {
                Ok(mig) => {
                    let Some(uuid) = record(&mut errors, "mig uuid", mig.uuid()) else {
                        continue;
                    };
                    mig_devices.push(MigDevice {
                        uuid,
                        gpu_instance_id: gpu_instance_id(&mig)
                            .map_err(|error| errors.push(format!("mig gpu instance id: {error}")))
                            .ok(),
                        memory_total_bytes: record(&mut errors, "mig memory", mig.memory_info())
                            .map(|m| m.total),
                        processes: processes(&mut errors, &mig),
                    });
                }
                Err(NvmlError::NotFound) => {}
                Err(error) => errors.push(format!("mig device {mig_index}: {error}")),
            }
        }
    }
    let process_utilization = match device.process_utilization_stats(0) {
        Ok(samples) => samples
            .into_iter()
            .map(|sample| (sample.pid, sample.sm_util))
            .collect(),
        // NotFound means "no samples yet", which is normal for an idle GPU.
        Err(NvmlError::NotFound) => Vec::new(),
        Err(error) => {
            errors.push(format!("process utilization: {error}"));
            Vec::new()
        }
    };
    let processes = processes(&mut errors, device);
    let lost = errors.iter().any(|error| error.ends_with(LOST_MARK));
    GpuDevice {
        index,
        processes,
        uuid,
        name,
        memory_total_bytes: memory.as_ref().map(|m| m.total),
        memory_used_bytes: memory.as_ref().map(|m| m.used),
        utilization_gpu: utilization.as_ref().map(|u| u.gpu),
        utilization_memory: utilization.as_ref().map(|u| u.memory),
        temperature_c,
        mig_enabled,
        mig_devices,
        process_utilization,
        errors,
        lost,
    }
}
