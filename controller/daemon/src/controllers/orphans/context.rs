//! What the GpuOrphanPolicy reconciler works with: specs, inventory, recorder, status board,
//! the GPU-maintenance lock shared with the exporter controller, its memory, `/proc` and Docker.

use std::{path::PathBuf, sync::Arc, time::Duration};

use ds01_host::docker::DockerClient;

use super::plan::Memory;
use crate::{
    controllers::status::StatusBoard, inventory::SharedInventory, recorder::Recorder,
    spec_store::SpecStore, state_file::Section,
};

/// The state file section of orphan memory, keyed by policy.
pub const SECTION: &str = "gpuOrphanPolicy";

/// What the reconciler works with.
pub struct OrphanContext {
    /// Applied specs.
    pub store: Arc<tokio::sync::Mutex<SpecStore>>,
    /// Observations.
    pub inventory: SharedInventory,
    /// Events.
    pub recorder: Arc<Recorder>,
    /// Reported status.
    pub board: StatusBoard,
    /// Shared with the DCGM exporter controller: one GPU maintenance action at a time.
    pub maintenance: Arc<tokio::sync::Mutex<()>>,
    /// Persistent memory.
    pub state: Section<Memory>,
    /// `/proc`.
    pub proc_root: PathBuf,
    /// Docker, to stop the exporter around a reset.
    pub docker: tokio::sync::Mutex<DockerClient>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--gpu-poll-interval`: snapshots older than two of these decide nothing.
    pub gpu_poll_interval: Duration,
}
