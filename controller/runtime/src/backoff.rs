//! Exponential backoff: `initial`, doubling, capped at `max`.

use std::time::Duration;

/// A backoff schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (0 = first retry).
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(300),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_initial_and_stops_at_max() {
        let backoff = Backoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(60),
        };
        let delays: Vec<u64> = (0..6)
            .map(|attempt| backoff.delay(attempt).as_secs())
            .collect();
        assert_eq!(delays, [10, 20, 40, 60, 60, 60]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(60));
    }
}
