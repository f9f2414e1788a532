//! GpuOrphanPolicy: "GPUs must be orphan-free".

pub mod plan;
