//! DcgmExporter: "the DCGM exporter must run".

pub mod act;
pub mod context;
pub mod desired;
pub mod executor;
pub mod health;
pub mod inputs;
pub mod plan;
