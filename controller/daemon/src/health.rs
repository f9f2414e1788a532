//! Liveness of the controller loops, read by the systemd watchdog and the metrics.
//!
//! Only loops that wait on nothing but their own queue and timers are registered (the
//! runtime controllers): a stale one means the process is stuck (a blocked worker thread, a
//! deadlock), which a restart fixes. Loops that wait on Docker or NVML are not, so a hung
//! engine or driver does not make systemd restart the controller over and over.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use ds01_runtime::Stats;

/// A loop's name and counters.
pub type NamedLoop = (&'static str, Arc<Stats>);

/// The registered loops; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Loops {
    inner: Arc<Mutex<Vec<NamedLoop>>>,
}

impl Loops {
    /// Adds a controller's loop.
    pub fn register(&self, name: &'static str, stats: Arc<Stats>) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name, stats));
    }

    /// Every registered loop.
    #[must_use]
    pub fn all(&self) -> Vec<NamedLoop> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Names of the loops that have not turned within `max_age`.
    #[must_use]
    pub fn stale(&self, max_age: Duration) -> Vec<&'static str> {
        self.all()
            .into_iter()
            .filter(|(_, stats)| stats.heartbeat.age() > max_age)
            .map(|(name, _)| name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_stopped_beating_is_named_as_stale() {
        let loops = Loops::default();
        let alive = Arc::new(Stats::default());
        let stuck = Arc::new(Stats::default());
        loops.register("alive", alive.clone());
        loops.register("stuck", stuck);
        std::thread::sleep(Duration::from_millis(60));
        alive.heartbeat.beat();
        assert_eq!(loops.stale(Duration::from_millis(40)), ["stuck"]);
        assert!(loops.stale(Duration::from_secs(5)).is_empty());
    }
}
