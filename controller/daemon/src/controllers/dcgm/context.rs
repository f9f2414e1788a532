//! What the DcgmExporter reconciler and its actions share: Docker, the applied specs, the
//! inventory, the recorder, the status board, the GPU-maintenance lock and its memory.

use std::sync::Arc;

use ds01_host::docker::DockerClient;

use super::plan::Memory;
use crate::{
    controllers::status::StatusBoard, inventory::SharedInventory, recorder::Recorder,
    spec_store::SpecStore, state_file::Section,
};

/// State-file section of this controller.
pub const SECTION: &str = "dcgmExporter";

/// What the reconciler works with.
pub struct DcgmContext {
    /// Docker (reconnected on demand).
    pub docker: tokio::sync::Mutex<DockerClient>,
    /// Applied specs.
    pub store: Arc<tokio::sync::Mutex<SpecStore>>,
    /// GPUs and containers as observed.
    pub inventory: SharedInventory,
    /// Events.
    pub recorder: Arc<Recorder>,
    /// Reported status.
    pub board: StatusBoard,
    /// Held while a GPU maintenance action runs (exporter restarts, GPU resets).
    pub maintenance: Arc<tokio::sync::Mutex<()>>,
    /// Persistent memory.
    pub state: Section<Memory>,
    /// `--dry-run`: decide and record, change nothing.
    pub dry_run: bool,
}
