//! Admission to the control API's costly work (history reads, non-admin dry runs): one at a
//! time per user and a few at a time in all, so no user can take all of it. Root passes
//! without waiting: nothing a local user does may stop the daemon from answering root.

use std::{
    collections::BTreeSet,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::{Semaphore, SemaphorePermit};

/// One kind of costly work and who is doing it.
pub struct Gate {
    running: Semaphore,
    users: Mutex<BTreeSet<Option<u32>>>,
    permits: usize,
}

/// Work admitted through a gate; leaves it on drop.
pub struct Pass {
    gate: &'static Gate,
    /// `None` for root, who is not counted.
    uid: Option<Option<u32>>,
    _permit: Option<SemaphorePermit<'static>>,
}

impl Gate {
    /// A gate for `permits` users' work at once.
    #[must_use]
    pub const fn new(permits: usize) -> Self {
        Gate {
            running: Semaphore::const_new(permits),
            users: Mutex::new(BTreeSet::new()),
            permits,
        }
    }

    /// How many users' work may run at once.
    #[must_use]
    pub const fn permits(&self) -> usize {
        self.permits
    }

    /// A pass for `uid`, waiting up to `wait` for a free place; `None` when this user's work of
    /// this kind is running already or no place frees up in time.
    pub async fn enter(&'static self, uid: Option<u32>, wait: Duration) -> Option<Pass> {
        if uid == Some(0) {
            return Some(Pass {
                gate: self,
                uid: None,
                _permit: None,
            });
        }
        if !self
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(uid)
        {
            return None;
        }
        // From here on, dropping the pass (also on a timeout) forgets the user again.
        let mut pass = Pass {
            gate: self,
            uid: Some(uid),
            _permit: None,
        };
        pass._permit = Some(
            tokio::time::timeout(wait, self.running.acquire())
                .await
                .ok()?
                .ok()?,
        );
        Some(pass)
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(uid) = self.uid {
            self.gate
                .users
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TWO: Gate = Gate::new(2);

    #[tokio::test]
    async fn one_pass_per_user_a_few_in_all_and_root_always() {
        let wait = Duration::from_millis(50);
        let first = TWO.enter(Some(4242), wait).await.expect("first");
        assert!(TWO.enter(Some(4242), wait).await.is_none(), "same user");
        let second = TWO.enter(Some(4343), wait).await.expect("another user");
        assert!(
            TWO.enter(Some(4444), wait).await.is_none(),
            "all places taken"
        );
        // The refused user was forgotten: they may try again once a place frees up.
        let root: Vec<_> = futures::future::join_all((0..5).map(|_| TWO.enter(Some(0), wait)))
            .await
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(root.len(), 5, "root is never kept waiting");
        drop(first);
        assert!(TWO.enter(Some(4444), wait).await.is_some(), "a freed place");
        drop(second);
        assert!(TWO.enter(Some(4242), wait).await.is_some(), "given back");
    }
}
