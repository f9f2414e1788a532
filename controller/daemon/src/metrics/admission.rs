//! Who may hold one of the metrics endpoint's few connections. The port is open to every local
//! user and carries no credentials, so a cap alone lets anyone hold every slot with idle
//! connections. Here a connection that has not yet sent a complete request gives way to a new
//! one, oldest first: holding slots then needs a steady stream of new connections, each one of
//! which frees a slot for the next scraper, while a scrape whose request is in is never cut.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicBool, Ordering},
};

use tokio_util::sync::CancellationToken;

#[derive(Debug)]
struct Held {
    id: u64,
    asked: Arc<AtomicBool>,
    evict: CancellationToken,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    held: Vec<Held>,
}

/// The connections held, at most `cap`.
#[derive(Debug)]
pub struct Admission {
    open: Arc<Mutex<Open>>,
    cap: usize,
}

/// One admitted connection; leaves the count on drop.
#[derive(Debug)]
pub struct Ticket {
    open: Arc<Mutex<Open>>,
    id: u64,
    asked: Arc<AtomicBool>,
    /// Cancelled when a newer connection took this one's place.
    pub evicted: CancellationToken,
}

impl Admission {
    /// At most `cap` connections at once.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Admission {
            open: Arc::default(),
            cap,
        }
    }

    /// A ticket for a new connection: a free slot, or the slot of the oldest connection that
    /// has not sent a complete request (which is told to close); `None` when every connection
    /// is being answered.
    #[must_use]
    pub fn admit(&self) -> Option<Ticket> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.held.len() >= self.cap {
            let waiting = open
                .held
                .iter()
                .position(|held| !held.asked.load(Ordering::Acquire))?;
            open.held.remove(waiting).evict.cancel();
        }
        open.next_id += 1;
        let ticket = Ticket {
            open: self.open.clone(),
            id: open.next_id,
            asked: Arc::default(),
            evicted: CancellationToken::new(),
        };
        open.held.push(Held {
            id: ticket.id,
            asked: ticket.asked.clone(),
            evict: ticket.evicted.clone(),
        });
        Some(ticket)
    }
}

impl Ticket {
    /// Marks the connection as asking (its request head is in): it is no longer given way.
    pub fn asked(&self) {
        self.asked.store(true, Ordering::Release);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.held.retain(|held| held.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_give_way_oldest_first_and_scrapes_in_progress_never_do() {
        let admission = Admission::new(3);
        let idle_old = admission.admit().expect("first");
        let scraping = admission.admit().expect("second");
        scraping.asked();
        let idle_new = admission.admit().expect("third");
        // Full: the newcomer takes the oldest idle connection's place.
        let newcomer = admission.admit().expect("fourth, by eviction");
        assert!(idle_old.evicted.is_cancelled());
        assert!(!scraping.evicted.is_cancelled());
        assert!(!idle_new.evicted.is_cancelled());
        // The evicted ticket's own drop does not free a second slot.
        drop(idle_old);
        let next = admission.admit().expect("fifth, by eviction");
        assert!(idle_new.evicted.is_cancelled());
        // Every holder is being answered: a newcomer is refused.
        newcomer.asked();
        next.asked();
        assert!(admission.admit().is_none());
        drop(scraping);
        assert!(
            admission.admit().is_some(),
            "a finished scrape frees its slot"
        );
    }
}
