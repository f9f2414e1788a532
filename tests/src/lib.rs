//! End-to-end test harness for ds01: a real Docker engine, a tiny local image built from a
//! static busybox (no registry is reachable), containers labelled per test and removed even
//! when the test fails, and the project's real binaries.

pub mod accounts;
pub mod binaries;
pub mod cli_fixtures;
pub mod daemon;
pub mod dcgm_fixtures;
pub mod deploy;
pub mod engine;
pub mod host_process;
pub mod lifecycle_fixtures;
pub mod orphan_policy;
pub mod private_engine;
pub mod scope;
pub mod testbox;

pub use daemon::{Daemon, DaemonOptions};
pub use engine::engine;
pub use scope::{ContainerRequest, TestScope};
pub use testbox::{
    CUDA_LIKE_IMAGE, NO_COMMAND_IMAGE, TESTBOX_IMAGE, ensure_cuda_like_image,
    ensure_no_command_image, ensure_testbox,
};

/// Label every test resource carries; its value identifies the test scope.
pub const TEST_LABEL: &str = "ds01.test";
