//! How much request-body memory users may hold at once: each uid at most
//! [`MAX_BODY_BYTES_PER_USER`] across its in-flight requests, all users but root together at
//! most [`MAX_BODY_BYTES_TOTAL`]. A request is charged its declared `Content-Length` (a body
//! of unknown length: the per-request maximum) before its body is read, and released when it
//! is answered; past the cap it is answered 503 `too_much_in_flight` without reading the body.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

/// Request-body bytes one user's in-flight requests may hold.
pub const MAX_BODY_BYTES_PER_USER: usize = 16 << 20;
/// Request-body bytes all users other than root may hold together.
pub const MAX_BODY_BYTES_TOTAL: usize = 64 << 20;

#[derive(Debug, Default)]
struct Held {
    per_user: HashMap<Option<u32>, usize>,
    total: usize,
}

/// The shared account of held body bytes.
#[derive(Clone, Debug, Default)]
pub struct BodyBudget {
    held: Arc<Mutex<Held>>,
}

/// Bytes charged to a user; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: BodyBudget,
    uid: Option<u32>,
    bytes: usize,
}

impl BodyBudget {
    /// Charges `bytes` to `uid`, or `None` when that would pass a cap.
    #[must_use]
    pub fn reserve(&self, uid: Option<u32>, bytes: usize) -> Option<Reservation> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = held.per_user.get(&uid).copied().unwrap_or(0);
        let counted = uid != Some(0);
        if mine + bytes > MAX_BODY_BYTES_PER_USER
            || (counted && held.total + bytes > MAX_BODY_BYTES_TOTAL)
        {
            return None;
        }
        *held.per_user.entry(uid).or_default() += bytes;
        if counted {
            held.total += bytes;
        }
        Some(Reservation {
            budget: self.clone(),
            uid,
            bytes,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = self
            .budget
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(mine) = held.per_user.get_mut(&self.uid) {
            *mine = mine.saturating_sub(self.bytes);
            if *mine == 0 {
                held.per_user.remove(&self.uid);
            }
        }
        if self.uid != Some(0) {
            held.total = held.total.saturating_sub(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_is_capped_and_root_is_not_crowded_out() {
        let budget = BodyBudget::default();
        let eight = 8 << 20;
        let first = budget.reserve(Some(1000), eight).expect("first");
        let second = budget.reserve(Some(1000), eight).expect("second");
        assert!(budget.reserve(Some(1000), 1).is_none(), "over 16 MiB");
        let others: Vec<_> = (1001..1007)
            .filter_map(|uid| budget.reserve(Some(uid), eight))
            .collect();
        assert_eq!(others.len(), 6, "64 MiB in all");
        assert!(budget.reserve(Some(2000), 1).is_none(), "total reached");
        assert!(
            budget.reserve(Some(0), eight).is_some(),
            "root still served"
        );
        drop(first);
        assert!(budget.reserve(Some(1000), eight).is_some(), "given back");
        drop(second);
    }
}
