//! What every part of the lifecycle controller shares: the applied specs, the inventory, the
//! recorder, the state file section, the engine, samples, members files, views, the set of
//! stops in progress, background tasks and the notice store.

use std::{path::PathBuf, sync::Arc};

use tokio_util::task::TaskTracker;

use super::{
    members::MembersFiles, memory::Memory, notice_store::NoticeStore, observe::LatestSamples,
    signals::Sampler, view::LifecycleViews,
};
use crate::{
    controllers::status::StatusBoard, inventory::SharedInventory, recorder::Recorder,
    spec_store::SpecStore, state_file::Section,
};

/// The state file section of lifecycle memory, keyed `policy/container-id`.
pub const SECTION: &str = "containerLifecycle";

/// What the reconciler works with.
pub struct LifecycleContext<E> {
    /// Applied specs.
    pub store: Arc<tokio::sync::Mutex<SpecStore>>,
    /// Observations.
    pub inventory: SharedInventory,
    /// Events.
    pub recorder: Arc<Recorder>,
    /// Reported status.
    pub board: StatusBoard,
    /// Persistent memory (idle-since, warnings sent).
    pub state: Section<Memory>,
    /// The container engine.
    pub engine: E,
    /// Signal deltas.
    pub sampler: std::sync::Mutex<Sampler>,
    /// The latest sample of each container (for previews).
    pub samples: LatestSamples,
    /// Members files, with their last good reading.
    pub members: MembersFiles,
    /// `/proc`.
    pub proc_root: PathBuf,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--gpu-poll-interval`: a GPU snapshot older than two of these says nothing.
    pub gpu_poll_interval: std::time::Duration,
    /// What `describe container` and `get containers` show, by container id.
    pub views: LifecycleViews,
    /// Containers whose stop runs in the background.
    pub stopping: Stopping,
    /// Background stops and deliveries, drained at shutdown.
    pub tasks: TaskTracker,
    /// Notices kept for `ds01ctl notices`.
    pub notices: NoticeStore,
}

/// Containers whose stop is in progress (shared with the background stop tasks).
#[derive(Clone, Debug, Default)]
pub struct Stopping(Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl Stopping {
    /// Marks `id` as being stopped; `false` when it already is.
    pub fn begin(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned())
    }

    /// The stop of `id` is over.
    pub fn end(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }

    /// Whether `id` is being stopped.
    #[must_use]
    pub fn contains(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(id)
    }
}
