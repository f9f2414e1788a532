//! The per-resource controllers. Each is a pure planner plus an executor.

pub mod dcgm;
pub mod lifecycle;
pub mod orphans;
pub mod start;
pub mod status;
pub mod triggers;
