//! Emitting controller events: appended to the JSONL log, broadcast to followers
//! (`ds01ctl events --follow`), and kept in a bounded in-memory ring for queries. A log that
//! cannot be written is reported, never fatal: the events that missed it are kept (bounded)
//! and written first once it can be written again.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

use ds01_host::event_log::{Event, EventLog};
use ds01_spec::EventType;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::metrics::Metrics;

/// Events kept in memory for `ds01ctl events`.
const RING_CAPACITY: usize = 10_000;
/// Events kept for the log while it cannot be written.
const PENDING_CAPACITY: usize = 10_000;

/// The event log cannot be written; the message says why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FlushError(pub String);

/// Where events go.
#[derive(Debug)]
pub struct Recorder {
    log: Option<EventLog>,
    dry_run: bool,
    followers: broadcast::Sender<Event>,
    /// Recent events as their compact JSON lines (a parsed event costs several times more).
    ring: Mutex<VecDeque<Box<str>>>,
    last_error: Mutex<Option<String>>,
    pending: Mutex<VecDeque<Box<str>>>,
    metrics: Option<Arc<Metrics>>,
}

impl Recorder {
    /// A recorder writing to `log` (none: memory only). With `dry_run`, every event carries
    /// `details.dry_run: true`.
    #[must_use]
    pub fn new(log: Option<EventLog>, dry_run: bool) -> Self {
        let (followers, _) = broadcast::channel(1024);
        Recorder {
            log,
            dry_run,
            followers,
            ring: Mutex::new(VecDeque::new()),
            last_error: Mutex::new(None),
            pending: Mutex::new(VecDeque::new()),
            metrics: None,
        }
    }

    /// The event log's path, when there is one.
    #[must_use]
    pub fn log_path(&self) -> Option<&std::path::Path> {
        self.log.as_ref().map(EventLog::path)
    }

    /// Counts every event into `metrics` too.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Emits one event.
    pub fn emit(&self, event_type: EventType, user: Option<&str>, mut details: Value) {
        if self.dry_run
            && let Value::Object(map) = &mut details
        {
            map.insert("dry_run".to_owned(), Value::Bool(true));
        }
        if let Some(metrics) = &self.metrics {
            metrics.on_event(event_type, &details);
        }
        let event = Event::new(event_type.as_str(), user, details);
        // Serialized once: for the log, and as the ring's compact copy.
        let line: Box<str> = event.to_line().into();
        if self.log.is_some() {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.len() == PENDING_CAPACITY {
                pending.pop_front();
            }
            pending.push_back(line.clone());
            drop(pending);
            if let Err(message) = self.flush() {
                tracing::warn!(error = %message, event_type = event_type.as_str(), "event not written to the log yet");
            }
        }
        let field = |key: &str| event.details.get(key).and_then(Value::as_str);
        // One log line per event, with the fields log shippers index on.
        tracing::info!(
            action = event_type.as_str(),
            container = field("container"),
            user,
            gpu = field("gpu"),
            reason = field("reason"),
            "event"
        );
        {
            let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
            if ring.len() == RING_CAPACITY {
                ring.pop_front();
            }
            ring.push_back(line);
        }
        // No follower is not an error.
        let _ = self.followers.send(event);
    }

    /// A receiver of events emitted from now on.
    #[must_use]
    pub fn follow(&self) -> broadcast::Receiver<Event> {
        self.followers.subscribe()
    }

    /// The events still in memory, oldest first.
    #[must_use]
    pub fn recent(&self) -> Vec<Event> {
        self.ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Reopens the log file (SIGHUP, after logrotate).
    pub fn reopen(&self) {
        if let Some(log) = &self.log
            && let Err(error) = log.reopen()
        {
            tracing::warn!(error = %anyhow::Error::from(error), "cannot reopen the event log");
        }
    }

    /// Writes the events that missed the log, oldest first; `Err` says why it still cannot.
    ///
    /// # Errors
    /// The log's write error.
    pub fn flush(&self) -> Result<(), FlushError> {
        let Some(log) = &self.log else {
            return Ok(());
        };
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut last_error = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while let Some(line) = pending.front() {
            if let Err(error) = log.append_line(line) {
                let message = format!("{:#}", anyhow::Error::from(error));
                *last_error = Some(message.clone());
                return Err(FlushError(message));
            }
            pending.pop_front();
        }
        *last_error = None;
        Ok(())
    }

    /// Why the log cannot be written now: the last append failed (cleared by the next one that
    /// succeeds).
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
