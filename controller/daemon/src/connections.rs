//! What the daemon's HTTP listeners (control API, metrics) share: counted connection slots per
//! key, the HTTP/1 settings that close stalled and idle connections, and the answer to a
//! connection over its cap.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A client must send a request's headers within this time, or the connection is closed. It
/// also bounds how long a kept-alive connection may sit idle between requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes hyper buffers per connection for a request head.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long writing a refusal may take before the connection is dropped without one.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Open connections per key (a uid, or one key for a whole listener), each up to `cap`.
pub struct Slots<K> {
    open: Arc<Mutex<HashMap<K, usize>>>,
    cap: usize,
}

impl<K: Clone + Eq + Hash> Slots<K> {
    /// At most `cap` open connections per key.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Slots {
            open: Arc::default(),
            cap,
        }
    }

    /// A slot for one more connection of `key`, or `None` when `key` holds `cap` already.
    #[must_use]
    pub fn take(&self, key: K) -> Option<Slot<K>> {
        let mut counts = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key.clone()).or_default();
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.open.clone(),
            key,
        })
    }
}

/// One open connection counted against its key; released on drop.
pub struct Slot<K: Eq + Hash> {
    open: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// HTTP/1 connection settings: headers within [`HEADER_READ_TIMEOUT`] and at most 64 KiB of
/// them, idle keep-alive connections closed after the same time.
#[must_use]
pub fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
}

/// Answers a connection over its cap with a JSON 503 (`code`, `message`) and closes it,
/// giving up after a second.
pub async fn refuse<S: AsyncWrite + Unpin>(mut stream: S, code: &str, message: &str) {
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_at_most_its_cap_and_a_closed_connection_frees_its_slot() {
        let slots = Slots::new(2);
        let first = slots.take(7).expect("first");
        let _second = slots.take(7).expect("second");
        assert!(slots.take(7).is_none(), "a third connection of key 7");
        assert!(slots.take(8).is_some(), "another key has its own cap");
        drop(first);
        assert!(slots.take(7).is_some(), "a freed slot is usable again");
    }
}
