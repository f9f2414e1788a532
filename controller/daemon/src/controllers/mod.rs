//! The per-resource controllers. Each is a pure planner plus an executor.

pub mod dcgm;
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "the planner is tested; its executor is next")
)]
pub mod lifecycle;
pub mod orphans;
pub mod start;
pub mod status;
pub mod triggers;
