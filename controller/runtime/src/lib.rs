//! The reconciliation runtime: keys are scheduled (deduplicated, earliest deadline wins),
//! reconciled with bounded concurrency and never twice at once for one key, requeued by the
//! action the reconciler returns or by per-key exponential backoff on error, and drained on
//! shutdown. It knows nothing of Docker or GPUs.

pub mod action;
pub mod backoff;
pub mod controller;
pub mod heartbeat;
pub mod scheduler;

pub use action::{Action, ReconcileError};
pub use backoff::Backoff;
pub use controller::{
    Config, Controller, Finished, Handle, ReconcileObserver, Reconciler, Stats, error_chain,
};
pub use heartbeat::{HEARTBEAT_PERIOD, Heartbeat};
pub use scheduler::Scheduler;
