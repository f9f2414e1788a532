//! What every `/v1` handler shares: the applied specs, the controllers' reports and handles,
//! the inventory, the recorder, the admin rule and the shutdown signal.

use std::sync::Arc;

use ds01_spec::Kind;

use super::AdminPolicy;
use crate::{inventory::SharedInventory, recorder::Recorder, spec_store::SpecStore};

/// Called with the kind and name of a spec that was applied or deleted.
pub type SpecChanged = Arc<dyn Fn(Kind, &str) + Send + Sync>;

/// What the handlers share.
pub struct ApiState {
    /// Applied specs.
    pub store: Arc<tokio::sync::Mutex<SpecStore>>,
    /// What the controllers report.
    pub board: crate::controllers::status::StatusBoard,
    /// Tells the controllers a spec changed.
    pub notify: SpecChanged,
    /// Lifecycle facts per container.
    pub lifecycle: crate::controllers::lifecycle::view::LifecycleViews,
    /// What lifecycle previews read.
    pub lifecycle_preview: crate::controllers::lifecycle::preview::PreviewSources,
    /// The lifecycle controller: manual stops and the notices kept for users.
    pub lifecycle_context: Arc<
        crate::controllers::lifecycle::context::LifecycleContext<
            crate::controllers::engine::Docker,
        >,
    >,
    /// What the controller observes.
    pub inventory: SharedInventory,
    /// Event sink.
    pub recorder: Arc<Recorder>,
    /// Start time.
    pub started: jiff::Timestamp,
    /// Who may change things.
    pub admin: AdminPolicy,
    /// Cancelled when the controller stops: ends `events --follow` streams.
    pub shutdown: tokio_util::sync::CancellationToken,
}
