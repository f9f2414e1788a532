//! Delays and deduplicates keys: one slot per key, and a new request for a key already waiting
//! keeps whichever deadline is earlier.

use std::{
    collections::{BTreeSet, HashMap},
    hash::Hash,
};

use tokio::time::Instant;

/// Keys waiting for their deadline.
#[derive(Debug)]
pub struct Scheduler<K> {
    deadlines: HashMap<K, (Instant, u64)>,
    queue: BTreeSet<(Instant, u64)>,
    keys_by_slot: HashMap<u64, K>,
    next_sequence: u64,
}

impl<K> Default for Scheduler<K> {
    fn default() -> Self {
        Scheduler {
            deadlines: HashMap::new(),
            queue: BTreeSet::new(),
            keys_by_slot: HashMap::new(),
            next_sequence: 0,
        }
    }
}

impl<K: Clone + Eq + Hash> Scheduler<K> {
    /// Schedules `key` at `at`, unless it already waits for an earlier deadline.
    pub fn schedule(&mut self, key: K, at: Instant) {
        if let Some(&(existing, sequence)) = self.deadlines.get(&key) {
            if existing <= at {
                return;
            }
            self.queue.remove(&(existing, sequence));
            self.keys_by_slot.remove(&sequence);
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.deadlines.insert(key.clone(), (at, sequence));
        self.queue.insert((at, sequence));
        self.keys_by_slot.insert(sequence, key);
    }

    /// The earliest deadline, if any key waits.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Removes and returns the first key due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let &(at, sequence) = self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.remove(&(at, sequence));
        let key = self.keys_by_slot.remove(&sequence)?;
        self.deadlines.remove(&key);
        Some(key)
    }

    /// Whether `key` waits.
    #[must_use]
    pub fn contains(&self, key: &K) -> bool {
        self.deadlines.contains_key(key)
    }

    /// Number of waiting keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Whether no key waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_key_holds_one_slot_and_keeps_its_earliest_deadline() {
        let now = Instant::now();
        let mut scheduler = Scheduler::default();
        scheduler.schedule("a", now + Duration::from_secs(10));
        scheduler.schedule("a", now + Duration::from_secs(5));
        scheduler.schedule("a", now + Duration::from_secs(20));
        assert_eq!(scheduler.len(), 1);
        assert_eq!(
            scheduler.next_deadline(),
            Some(now + Duration::from_secs(5))
        );
        assert_eq!(scheduler.pop_due(now + Duration::from_secs(4)), None);
        assert_eq!(scheduler.pop_due(now + Duration::from_secs(5)), Some("a"));
        assert!(scheduler.is_empty());
    }

    #[test]
    fn keys_come_out_in_deadline_order() {
        let now = Instant::now();
        let mut scheduler = Scheduler::default();
        scheduler.schedule("late", now + Duration::from_secs(3));
        scheduler.schedule("early", now + Duration::from_secs(1));
        scheduler.schedule("middle", now + Duration::from_secs(2));
        let later = now + Duration::from_secs(10);
        let order: Vec<_> = std::iter::from_fn(|| scheduler.pop_due(later)).collect();
        assert_eq!(order, ["early", "middle", "late"]);
    }
}
