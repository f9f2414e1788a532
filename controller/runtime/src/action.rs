//! What a reconcile asks for next, and how it fails.

use std::time::Duration;

/// The next step after a successful reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile the key again after `delay` (a deadline, a sample interval, a safety net).
    #[must_use]
    pub const fn requeue(delay: Duration) -> Self {
        Action {
            requeue_after: Some(delay),
        }
    }

    /// Nothing to do until something about the key changes.
    #[must_use]
    pub const fn await_change() -> Self {
        Action {
            requeue_after: None,
        }
    }

    /// The requested delay, if any.
    #[must_use]
    pub const fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// A failed reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError<E: std::error::Error + 'static> {
    /// Worth retrying: the key is requeued with exponential backoff.
    #[error("transient reconcile failure")]
    Transient(#[source] E),
    /// Retrying cannot help (bad input, refused permanently): wait for a change.
    #[error("terminal reconcile failure")]
    Terminal(#[source] E),
}
