//! `controller-state.json`: what the controllers must remember across restarts (backoff,
//! restarts in the window, orphans being terminated, idle timers, warnings sent) — one owner
//! of the file, typed sections per controller, every write serialized and fsync'd.
//!
//! # Guarantees
//! - Writes are serialized: each takes the writer lock, then snapshots the content, so a write
//!   never replaces the file with an older snapshot than the one before it (no rollback by a
//!   slower concurrent writer).
//! - A file that cannot be read at start is kept aside (renamed with a timestamp) and reported,
//!   never silently replaced by an empty one.

use std::{
    marker::PhantomData,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "controller-state.json";

/// Why the state file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Unreadable, and it could not be kept aside either: starting empty would destroy it.
    #[error(
        "{path} cannot be read ({reason}) and cannot be moved aside ({error}); fix or remove it by hand"
    )]
    CannotKeepAside {
        /// The state file.
        path: PathBuf,
        /// Why it could not be read.
        reason: String,
        /// Why it could not be renamed.
        #[source]
        error: std::io::Error,
    },
}

/// A state file that could not be read at start and was kept aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptAside {
    /// Where the unreadable file is now.
    pub kept_as: PathBuf,
    /// Why it could not be read.
    pub reason: String,
}

/// The state file: sections by controller, each keyed by resource.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    content: Mutex<Map<String, Value>>,
    /// Held for the whole of a write: snapshot, then write, in order.
    writer: Mutex<()>,
    /// `section/key` of entries this version could not read, each reported once.
    unreadable: Mutex<std::collections::BTreeSet<String>>,
}

impl StateFile {
    /// Loads `state_dir/controller-state.json`. An unreadable file is renamed to
    /// `controller-state.json.unreadable-<time>` and the state starts empty; the caller reports it.
    ///
    /// # Errors
    /// When an unreadable file cannot be moved aside.
    pub fn open(state_dir: &Path) -> Result<(Self, Option<KeptAside>), StateFileError> {
        let path = state_dir.join(FILE_NAME);
        let problem = match std::fs::read(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => Some(error.to_string()),
            Ok(bytes) => match serde_json::from_slice::<Map<String, Value>>(&bytes) {
                Ok(content) => return Self::with_sections_checked(state_dir, path, content),
                Err(error) => Some(format!("not a JSON object: {error}")),
            },
        };
        let Some(reason) = problem else {
            return Ok((StateFile::with(path, Map::new()), None));
        };
        let kept = keep_aside(state_dir, &path, reason, |from, to| {
            std::fs::rename(from, to)
        })?;
        tracing::error!(path = %path.display(), kept_as = %kept.kept_as.display(), reason = %kept.reason, "the controller state file was unreadable; kept aside, starting without it");
        Ok((StateFile::with(path, Map::new()), Some(kept)))
    }

    /// A readable file whose sections are not all objects (a hand edit, another version): a
    /// copy of the whole file is kept aside, the sections that are objects are used, and the
    /// caller reports it like an unreadable file.
    fn with_sections_checked(
        state_dir: &Path,
        path: PathBuf,
        mut content: Map<String, Value>,
    ) -> Result<(Self, Option<KeptAside>), StateFileError> {
        let odd: Vec<String> = content
            .iter()
            .filter(|(_, section)| !section.is_object())
            .map(|(name, _)| name.clone())
            .collect();
        if odd.is_empty() {
            return Ok((StateFile::with(path, content), None));
        }
        let reason = format!(
            "section(s) {} are not of a shape this version can read",
            odd.join(", ")
        );
        let kept = keep_aside(state_dir, &path, reason, |from, to| {
            std::fs::copy(from, to).map(drop)
        })?;
        tracing::error!(path = %path.display(), kept_as = %kept.kept_as.display(), reason = %kept.reason, "part of the controller state file was unreadable; a copy was kept aside, those sections start afresh");
        content.retain(|_, section| section.is_object());
        Ok((StateFile::with(path, content), Some(kept)))
    }

    fn with(path: PathBuf, content: Map<String, Value>) -> Self {
        StateFile {
            path,
            content: Mutex::new(content),
            writer: Mutex::new(()),
            unreadable: Mutex::default(),
        }
    }

    /// A typed view of one section.
    #[must_use]
    pub fn section<T>(self: &Arc<Self>, name: &'static str) -> Section<T> {
        Section {
            file: self.clone(),
            name,
            marker: PhantomData,
        }
    }

    /// Writes the file as it is now: proof, before a destructive action, that what the
    /// controller remembers reaches the disk.
    ///
    /// # Errors
    /// When the file cannot be written (a read-only or full state directory).
    pub fn sync(&self) -> std::io::Result<()> {
        self.write_out()
    }

    /// Changes the content with `change`; writes the file when `change` says it changed.
    fn update(&self, change: impl FnOnce(&mut Map<String, Value>) -> bool) -> std::io::Result<()> {
        let changed = {
            let mut content = self.content.lock().unwrap_or_else(PoisonError::into_inner);
            change(&mut content)
        };
        if changed { self.write_out() } else { Ok(()) }
    }

    fn write_out(&self) -> std::io::Result<()> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = {
            let content = self.content.lock().unwrap_or_else(PoisonError::into_inner);
            serde_json::to_vec_pretty(&*content).map_err(std::io::Error::other)?
        };
        ds01_host::atomic_file::write_atomic(&self.path, &bytes)
    }

    fn read<R>(&self, section: &str, read: impl FnOnce(Option<&Map<String, Value>>) -> R) -> R {
        let content = self.content.lock().unwrap_or_else(PoisonError::into_inner);
        read(content.get(section).and_then(Value::as_object))
    }
}

/// Keeps the state file at `path` aside, beside it with the time, by `keep` (a rename, or a
/// copy when the readable part is used).
fn keep_aside(
    state_dir: &Path,
    path: &Path,
    reason: String,
    keep: impl FnOnce(&Path, &Path) -> std::io::Result<()>,
) -> Result<KeptAside, StateFileError> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let kept_as = state_dir.join(format!("{FILE_NAME}.unreadable-{stamp}"));
    match keep(path, &kept_as) {
        Ok(()) => Ok(KeptAside { kept_as, reason }),
        Err(error) => Err(StateFileError::CannotKeepAside {
            path: path.to_owned(),
            reason,
            error,
        }),
    }
}

/// One controller's section, with its value type.
pub struct Section<T> {
    file: Arc<StateFile>,
    name: &'static str,
    marker: PhantomData<fn() -> T>,
}

impl<T> Clone for Section<T> {
    fn clone(&self) -> Self {
        Section {
            file: self.file.clone(),
            name: self.name,
            marker: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Section<T> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Section")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + DeserializeOwned> Section<T> {
    /// The value stored under `key`. A value this version cannot read counts as absent and is
    /// logged once, in full (up to 2 KiB), so what it held is not lost without a trace.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<T> {
        let (value, problem) = self.file.read(self.name, |section| {
            let Some(stored) = section.and_then(|section| section.get(key)) else {
                return (None, None);
            };
            match serde_json::from_value(stored.clone()) {
                Ok(value) => (Some(value), None),
                Err(error) => (None, Some((error, stored.to_string()))),
            }
        });
        if let Some((error, stored)) = problem {
            self.report_unreadable(key, &error, &stored);
        }
        value
    }

    fn report_unreadable(&self, key: &str, error: &serde_json::Error, stored: &str) {
        let entry = format!("{}/{key}", self.name);
        let first = self
            .file
            .unreadable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(entry.clone());
        if first {
            let shown: String = stored.chars().take(2048).collect();
            tracing::error!(
                path = %self.file.path.display(),
                %entry,
                %error,
                stored = %shown,
                "a controller-state entry has a shape this version cannot read; it starts afresh"
            );
        }
    }

    /// `section/key` of the entries found unreadable so far.
    #[cfg(test)]
    #[must_use]
    pub fn unreadable_entries(&self) -> Vec<String> {
        self.file
            .unreadable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// The keys stored.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.file.read(self.name, |section| {
            section
                .map(|map| map.keys().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// Stores a value, writing the file if it changed.
    ///
    /// # Errors
    /// When the file cannot be written (the value is kept in memory).
    pub fn set(&self, key: &str, value: &T) -> std::io::Result<()> {
        self.apply(vec![(key.to_owned(), Some(value))])
    }

    /// Stores (`Some`) and forgets (`None`) several keys with at most one write of the file.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn apply(&self, changes: Vec<(String, Option<&T>)>) -> std::io::Result<()> {
        let mut encoded = Vec::with_capacity(changes.len());
        for (key, value) in changes {
            let value = value
                .map(serde_json::to_value)
                .transpose()
                .map_err(std::io::Error::other)?;
            encoded.push((key, value));
        }
        self.file.update(|content| {
            let entry = content
                .entry(self.name.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(map) = entry else {
                return false;
            };
            let mut changed = false;
            for (key, value) in encoded {
                changed |= match value {
                    Some(value) if map.get(&key) != Some(&value) => {
                        map.insert(key, value);
                        true
                    }
                    Some(_) => false,
                    None => map.remove(&key).is_some(),
                };
            }
            changed
        })
    }

    /// Forgets `key`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn remove(&self, key: &str) -> std::io::Result<()> {
        self.remove_all(&[key])
    }

    /// Forgets several keys with one write of the file.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn remove_all(&self, keys: &[&str]) -> std::io::Result<()> {
        self.apply(keys.iter().map(|key| ((*key).to_owned(), None)).collect())
    }

    /// The whole state file (for the proof-of-recording sync).
    #[must_use]
    pub fn file(&self) -> &StateFile {
        &self.file
    }
}

#[cfg(test)]
#[path = "state_file_tests.rs"]
mod tests;
