//! The JSONL event log: one envelope per line, at most 4000 bytes, appended with a single
//! `write` on an `O_APPEND` descriptor so concurrent writers never interleave.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Mutex,
};

/// Mode of a log file the controller creates: root and the admin group (logrotate's
/// `create 0640 root ds01-admin` keeps it so across rotations).
pub const LOG_MODE: u32 = 0o640;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Longest line written, newline included.
pub const MAX_LINE_BYTES: usize = 4000;

/// One event as written to the log (the incumbent's schema v1 envelope).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    /// e.g. `detection.container_discovered`.
    pub event_type: String,
    /// Always "1".
    pub schema_version: String,
    /// The user the event concerns, if any.
    pub user: Option<String>,
    /// Always `ds01-controller`.
    pub source: String,
    /// Event-specific fields.
    pub details: Value,
}

impl Event {
    /// An event stamped now.
    #[must_use]
    pub fn new(event_type: &str, user: Option<&str>, details: Value) -> Self {
        Event::at(jiff::Timestamp::now(), event_type, user, details)
    }

    /// An event stamped `at`.
    #[must_use]
    pub fn at(at: jiff::Timestamp, event_type: &str, user: Option<&str>, details: Value) -> Self {
        Event {
            timestamp: format!("{at:.3}"),
            event_type: event_type.to_owned(),
            schema_version: "1".to_owned(),
            user: user.map(str::to_owned),
            source: "ds01-controller".to_owned(),
            details,
        }
    }

    /// The JSON line (with newline), shortened to fit [`MAX_LINE_BYTES`].
    #[must_use]
    pub fn to_line(&self) -> String {
        let line = serde_json::to_string(self).unwrap_or_default();
        if line.len() < MAX_LINE_BYTES {
            return line + "\n";
        }
        // Keep short scalar details, drop the rest, and say so.
        let mut shortened = self.clone();
        let mut kept = serde_json::Map::new();
        if let Value::Object(details) = &self.details {
            for (key, value) in details {
                let small = match value {
                    Value::String(text) => text.len() <= 200,
                    Value::Number(_) | Value::Bool(_) | Value::Null => true,
                    _ => false,
                };
                if small {
                    kept.insert(key.clone(), value.clone());
                }
            }
        }
        kept.insert("truncated".to_owned(), json!(true));
        shortened.details = Value::Object(kept);
        let line = serde_json::to_string(&shortened).unwrap_or_default();
        if line.len() < MAX_LINE_BYTES {
            return line + "\n";
        }
        shortened.details = json!({ "truncated": true });
        serde_json::to_string(&shortened).unwrap_or_default() + "\n"
    }
}

/// Errors of the event log.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// The log file could not be opened.
    #[error("cannot open event log {path}")]
    Open {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A line could not be written (disk full, read-only, …).
    #[error("cannot append to event log {path}")]
    Append {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// An append-only event log file.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl EventLog {
    /// Opens (creating) the log at `path`.
    ///
    /// # Errors
    /// When the file or its directory cannot be created.
    pub fn open(path: &Path) -> Result<Self, EventLogError> {
        let log = EventLog {
            path: path.to_owned(),
            file: Mutex::new(None),
        };
        log.reopen()?;
        Ok(log)
    }

    /// Reopens the file (after logrotate moved it).
    ///
    /// # Errors
    /// When it cannot be opened.
    pub fn reopen(&self) -> Result<(), EventLogError> {
        let open_error = |source| EventLogError::Open {
            path: self.path.clone(),
            source,
        };
        if let Some(directory) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory).map_err(open_error)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(LOG_MODE)
            .open(&self.path)
            .map_err(open_error)?;
        *self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(file);
        Ok(())
    }

    /// Appends one event as one line.
    ///
    /// # Errors
    /// When the write fails; the event is then lost from the file (callers report it).
    pub fn append(&self, event: &Event) -> Result<(), EventLogError> {
        self.append_line(&event.to_line())
    }

    /// Appends a line made by [`Event::to_line`] (for callers that keep the line anyway). A
    /// line is written whole or not at all: when the disk fills halfway through, the part
    /// already written is cut off again, so the file never holds a broken line.
    ///
    /// # Errors
    /// When the write fails.
    pub fn append_line(&self, line: &str) -> Result<(), EventLogError> {
        let mut guard = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let append_error = |source| EventLogError::Append {
            path: self.path.clone(),
            source,
        };
        let file = guard
            .as_mut()
            .ok_or_else(|| append_error(std::io::Error::other("event log is not open")))?;
        let length_before = file.metadata().map(|metadata| metadata.len());
        let written = file.write_all(line.as_bytes());
        if written.is_err()
            && let Ok(length) = length_before
        {
            let _ = file.set_len(length);
        }
        written.map_err(append_error)
    }

    /// The path of the log.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_envelope_with_millisecond_utc_timestamps() {
        let at: jiff::Timestamp = "2026-11-22T10:00:00.5Z".parse().expect("timestamp");
        let line = Event::at(
            at,
            "detection.container_discovered",
            Some("alice"),
            json!({"container": "abc"}),
        )
        .to_line();
        let parsed: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(parsed["timestamp"], "2026-11-22T10:00:00.500Z");
        assert_eq!(parsed["schema_version"], "1");
        assert_eq!(parsed["source"], "ds01-controller");
        assert_eq!(parsed["user"], "alice");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn oversized_details_are_shortened_below_the_line_limit() {
        let huge = "x".repeat(10_000);
        let line = Event::new(
            "gpu.reset_failed",
            None,
            json!({"gpu": "GPU-1", "output": huge}),
        )
        .to_line();
        assert!(line.len() <= MAX_LINE_BYTES, "{}", line.len());
        let parsed: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(parsed["details"]["gpu"], "GPU-1");
        assert_eq!(parsed["details"]["truncated"], true);
    }

    #[test]
    fn appends_survive_a_reopen_after_rotation() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("log/events.jsonl");
        let log = EventLog::open(&path).expect("open");
        log.append(&Event::new("controller.started", None, json!({})))
            .expect("append");
        std::fs::rename(&path, directory.path().join("log/events.jsonl.1")).expect("rotate");
        log.reopen().expect("reopen");
        log.append(&Event::new("controller.stopping", None, json!({})))
            .expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("controller.stopping"));
    }
}
