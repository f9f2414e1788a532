//! A fake `libnvidia-ml.so.1`: the NVML C functions ds01 calls, with nvml-wrapper-sys's struct
//! layouts, answering from the state file named by `DS01_FAKE_NVML_STATE`. The daemon loads it
//! with `--nvml-library`, so production adapter code runs unchanged in tests.
//!
//! Device handles are not pointers here: a handle encodes `(gpu index + 1) << 8 | mig slot + 1`.

#![allow(unsafe_code, clippy::missing_safety_doc, non_snake_case)]

pub mod state;

use std::{
    ffi::{c_char, c_uint, c_ulonglong},
    sync::{Mutex, PoisonError},
};

use nvml_wrapper_sys::bindings::{
    nvmlDevice_t, nvmlMemory_v2_t, nvmlProcessInfo_t, nvmlProcessUtilizationSample_t, nvmlReturn_t,
    nvmlUtilization_t,
};
use state::{FakeGpu, FakeProcess, FakeState};

const SUCCESS: nvmlReturn_t = 0;
const UNINITIALIZED: nvmlReturn_t = 1;
const INVALID_ARGUMENT: nvmlReturn_t = 2;
const NOT_FOUND: nvmlReturn_t = 6;
const INSUFFICIENT_SIZE: nvmlReturn_t = 7;
const GPU_IS_LOST: nvmlReturn_t = 15;
const NO_VALUE: u32 = 0xFFFF_FFFF;

static STATE: Mutex<Option<FakeState>> = Mutex::new(None);

fn with_state<T>(
    action: impl FnOnce(&FakeState) -> Result<T, nvmlReturn_t>,
) -> Result<T, nvmlReturn_t> {
    let guard = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    match guard.as_ref() {
        Some(state) => action(state),
        None => Err(UNINITIALIZED),
    }
}

fn result(outcome: Result<(), nvmlReturn_t>) -> nvmlReturn_t {
    outcome.err().unwrap_or(SUCCESS)
}

/// The GPU (and MIG device) a handle names, after the lost/error checks for `call`.
fn device<'a>(
    state: &'a FakeState,
    handle: nvmlDevice_t,
    call: &str,
) -> Result<(&'a FakeGpu, Option<usize>), nvmlReturn_t> {
    let value = handle as usize;
    let gpu_index = (value >> 8).checked_sub(1).ok_or(INVALID_ARGUMENT)?;
    let gpu = state.gpus.get(gpu_index).ok_or(INVALID_ARGUMENT)?;
    if gpu.lost {
        return Err(GPU_IS_LOST);
    }
    if let Some(code) = gpu.errors.get(call) {
        return Err(*code);
    }
    let mig = (value & 0xFF).checked_sub(1);
    if mig.is_some_and(|slot| slot >= gpu.mig_devices.len()) {
        return Err(INVALID_ARGUMENT);
    }
    Ok((gpu, mig))
}

fn handle(gpu_index: usize, mig_slot: Option<usize>) -> nvmlDevice_t {
    std::ptr::without_provenance_mut((gpu_index + 1) << 8 | mig_slot.map_or(0, |slot| slot + 1))
}

unsafe fn write_string(text: &str, buffer: *mut c_char, length: c_uint) -> nvmlReturn_t {
    let bytes = text.as_bytes();
    if buffer.is_null() || bytes.len() + 1 > length as usize {
        return INSUFFICIENT_SIZE;
    }
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buffer, bytes.len());
        *buffer.add(bytes.len()) = 0;
    }
    SUCCESS
}

fn initialise() -> nvmlReturn_t {
    let state = state::load();
    if let Some(code) = state.init_error {
        return code;
    }
    *STATE.lock().unwrap_or_else(PoisonError::into_inner) = Some(state);
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    initialise()
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    initialise()
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    *STATE.lock().unwrap_or_else(PoisonError::into_inner) = None;
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlErrorString(code: nvmlReturn_t) -> *const c_char {
    let text: &'static [u8] = match code {
        SUCCESS => b"Success\0",
        UNINITIALIZED => b"Uninitialized\0",
        INVALID_ARGUMENT => b"Invalid Argument\0",
        3 => b"Not Supported\0",
        NOT_FOUND => b"Not Found\0",
        INSUFFICIENT_SIZE => b"Insufficient Size\0",
        9 => b"Driver Not Loaded\0",
        GPU_IS_LOST => b"GPU is lost\0",
        _ => b"Unknown Error\0",
    };
    text.as_ptr().cast()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    match with_state(|state| Ok(state.driver_version.clone())) {
        Ok(text) => unsafe { write_string(&text, version, length) },
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> nvmlReturn_t {
    if count.is_null() {
        return INVALID_ARGUMENT;
    }
    // Every observation starts by counting devices: re-read the state file here.
    {
        let mut guard = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            return UNINITIALIZED;
        }
        *guard = Some(state::load());
    }
    result(with_state(|state| {
        if let Some(code) = state.count_error {
            return Err(code);
        }
        unsafe { *count = u32::try_from(state.gpus.len()).unwrap_or(u32::MAX) };
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    result(with_state(|state| {
        if device.is_null() || index as usize >= state.gpus.len() {
            return Err(INVALID_ARGUMENT);
        }
        unsafe { *device = handle(index as usize, None) };
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device_handle: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    match with_state(|state| {
        let (gpu, mig) = device(state, device_handle, "uuid")?;
        Ok(mig.map_or_else(
            || gpu.uuid.clone(),
            |slot| gpu.mig_devices[slot].uuid.clone(),
        ))
    }) {
        Ok(text) => unsafe { write_string(&text, uuid, length) },
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device_handle: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    match with_state(|state| device(state, device_handle, "name").map(|(gpu, _)| gpu.name.clone()))
    {
        Ok(text) => unsafe { write_string(&text, name, length) },
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device_handle: nvmlDevice_t,
    memory: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    result(with_state(|state| {
        let (gpu, mig) = device(state, device_handle, "memory")?;
        let (total, used) = match mig {
            Some(slot) => (
                gpu.mig_devices[slot].memory_total_mi_b,
                gpu.mig_devices[slot]
                    .processes
                    .iter()
                    .map(|p| p.used_memory_mi_b)
                    .sum(),
            ),
            None => (gpu.memory_total_mi_b, gpu.memory_used_mi_b),
        };
        if memory.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        unsafe {
            (*memory).total = total << 20;
            (*memory).used = used << 20;
            (*memory).free = total.saturating_sub(used) << 20;
            (*memory).reserved = 0;
        }
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUtilizationRates(
    device_handle: nvmlDevice_t,
    utilization: *mut nvmlUtilization_t,
) -> nvmlReturn_t {
    result(with_state(|state| {
        let (gpu, _) = device(state, device_handle, "utilization")?;
        if utilization.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        unsafe {
            (*utilization).gpu = gpu.utilization_gpu;
            (*utilization).memory = gpu.utilization_memory;
        }
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    device_handle: nvmlDevice_t,
    _sensor: c_uint,
    temperature: *mut c_uint,
) -> nvmlReturn_t {
    result(with_state(|state| {
        let (gpu, _) = device(state, device_handle, "temperature")?;
        if temperature.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        unsafe { *temperature = gpu.temperature_c };
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device_handle: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    result(with_state(|state| {
        let (gpu, mig) = device(state, device_handle, "processes")?;
        let (processes, instance): (&[FakeProcess], Option<(u32, u32)>) = match mig {
            Some(slot) => {
                let mig = &gpu.mig_devices[slot];
                (
                    &mig.processes,
                    Some((mig.gpu_instance_id, mig.compute_instance_id)),
                )
            }
            None => (&gpu.processes, None),
        };
        if count.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let capacity = unsafe { *count } as usize;
        unsafe { *count = u32::try_from(processes.len()).unwrap_or(u32::MAX) };
        if infos.is_null() || capacity < processes.len() {
            return if processes.is_empty() {
                Ok(())
            } else {
                Err(INSUFFICIENT_SIZE)
            };
        }
        for (index, process) in processes.iter().enumerate() {
            unsafe {
                *infos.add(index) = nvmlProcessInfo_t {
                    pid: process.pid,
                    usedGpuMemory: process.used_memory_mi_b << 20,
                    gpuInstanceId: instance.map_or(NO_VALUE, |(gi, _)| gi),
                    computeInstanceId: instance.map_or(NO_VALUE, |(_, ci)| ci),
                };
            }
        }
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetProcessUtilization(
    device_handle: nvmlDevice_t,
    samples: *mut nvmlProcessUtilizationSample_t,
    count: *mut c_uint,
    _last_seen: c_ulonglong,
) -> nvmlReturn_t {
    result(with_state(|state| {
        let (gpu, _) = device(state, device_handle, "processUtilization")?;
        if count.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        if gpu.process_utilization.is_empty() {
            return Err(NOT_FOUND);
        }
        let capacity = unsafe { *count } as usize;
        unsafe { *count = u32::try_from(gpu.process_utilization.len()).unwrap_or(u32::MAX) };
        if samples.is_null() || capacity < gpu.process_utilization.len() {
            return Err(INSUFFICIENT_SIZE);
        }
        for (index, sample) in gpu.process_utilization.iter().enumerate() {
            unsafe {
                *samples.add(index) = nvmlProcessUtilizationSample_t {
                    pid: sample.pid,
                    timeStamp: 1,
                    smUtil: sample.sm_util,
                    memUtil: 0,
                    encUtil: 0,
                    decUtil: 0,
                };
            }
        }
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device_handle: nvmlDevice_t,
    current: *mut c_uint,
    pending: *mut c_uint,
) -> nvmlReturn_t {
    result(with_state(|state| {
        let (gpu, _) = device(state, device_handle, "migMode")?;
        if current.is_null() || pending.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        unsafe {
            *current = u32::from(gpu.mig_mode);
            *pending = u32::from(gpu.mig_mode);
        }
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMaxMigDeviceCount(
    device_handle: nvmlDevice_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    result(with_state(|state| {
        let (gpu, _) = device(state, device_handle, "migDeviceCount")?;
        if count.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        unsafe { *count = if gpu.mig_mode { 7 } else { 0 } };
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device_handle: nvmlDevice_t,
    index: c_uint,
    mig: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    result(with_state(|state| {
        let (gpu, _) = device(state, device_handle, "migDevice")?;
        if mig.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        if !gpu.mig_mode || index as usize >= gpu.mig_devices.len() {
            return Err(NOT_FOUND);
        }
        let gpu_index = (device_handle as usize >> 8) - 1;
        unsafe { *mig = handle(gpu_index, Some(index as usize)) };
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceId(
    device_handle: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    result(with_state(|state| {
        let (gpu, mig) = device(state, device_handle, "gpuInstanceId")?;
        let Some(slot) = mig else {
            // Real NVML answers this only for MIG device handles.
            return Err(INVALID_ARGUMENT);
        };
        if id.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        unsafe { *id = gpu.mig_devices[slot].gpu_instance_id };
        Ok(())
    }))
}
