//! DcgmExporter: "the DCGM exporter must run".

pub mod plan;
