//! GpuOrphanPolicy: "GPUs must be orphan-free".

pub mod executor;
pub mod plan;
