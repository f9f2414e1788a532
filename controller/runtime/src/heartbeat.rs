//! Liveness of a loop: the loop beats on every turn (and at least every `HEARTBEAT_PERIOD`
//! while idle); a supervisor reads the age of the last beat.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// How often an idle controller loop beats.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(1);

/// The time of a loop's last beat.
#[derive(Debug)]
pub struct Heartbeat {
    origin: Instant,
    last_millis: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            origin: Instant::now(),
            last_millis: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    /// The loop is alive now.
    pub fn beat(&self) {
        let millis = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(millis, Ordering::Relaxed);
    }

    /// Time since the last beat (or since creation when it never beat).
    #[must_use]
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last_millis.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_makes_the_age_small_again() {
        let heartbeat = Heartbeat::default();
        std::thread::sleep(Duration::from_millis(30));
        assert!(heartbeat.age() >= Duration::from_millis(30));
        heartbeat.beat();
        assert!(heartbeat.age() < Duration::from_millis(30));
    }
}
