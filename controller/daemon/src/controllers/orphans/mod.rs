//! GpuOrphanPolicy: "GPUs must be orphan-free".

pub mod classify;
pub mod executor;
pub mod plan;
