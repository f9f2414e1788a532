//! Adapters between ds01 and the host: Docker through bollard, GPUs through NVML, processes
//! and cgroups through `/proc` and `/sys/fs/cgroup`, and the JSONL event log. Each returns
//! plain domain types; nothing of bollard or nvml-wrapper leaks out.

pub mod atomic_file;
pub mod cgroup;
pub mod container_fs;
pub mod docker;
pub mod event_history;
pub mod event_log;
pub mod gpu;
pub mod gpu_access;
pub mod model;
pub mod process;
pub mod safe_read;
pub mod users;

pub use gpu_access::{GpuAccess, GpuVia};
pub use model::{ContainerInfo, ContainerState, Mount};
