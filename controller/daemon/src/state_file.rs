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
                Ok(content) => return Ok((StateFile::with(path, content), None)),
                Err(error) => Some(format!("not a JSON object: {error}")),
            },
        };
        let Some(reason) = problem else {
            return Ok((StateFile::with(path, Map::new()), None));
        };
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let kept_as = state_dir.join(format!("{FILE_NAME}.unreadable-{stamp}"));
        if let Err(error) = std::fs::rename(&path, &kept_as) {
            return Err(StateFileError::CannotKeepAside {
                path,
                reason,
                error,
            });
        }
        tracing::error!(path = %path.display(), kept_as = %kept_as.display(), %reason, "the controller state file was unreadable; kept aside, starting without it");
        Ok((
            StateFile::with(path, Map::new()),
            Some(KeptAside { kept_as, reason }),
        ))
    }

    fn with(path: PathBuf, content: Map<String, Value>) -> Self {
        StateFile {
            path,
            content: Mutex::new(content),
            writer: Mutex::new(()),
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
    /// The value stored under `key` (a value this version cannot read counts as absent).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<T> {
        self.file.read(self.name, |section| {
            section?
                .get(key)
                .and_then(|value| serde_json::from_value(value.clone()).ok())
        })
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
