//! GpuOrphanPolicy: "GPUs must be orphan-free".

pub mod classify;
pub mod context;
pub mod executor;
pub mod observe;
pub mod plan;
pub mod reset;
