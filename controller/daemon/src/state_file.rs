//! `controller-state.json`: what the controllers must remember across restarts (backoff,
//! restarts in the window, idle timers, warnings sent), written atomically and fsync'd after
//! every change.

use std::{
    path::PathBuf,
    sync::{Mutex, PoisonError},
};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

/// The state file, sectioned by controller then keyed by resource.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    content: Mutex<Map<String, Value>>,
}

impl StateFile {
    /// Loads `state_dir/controller-state.json` (an unreadable file starts empty, with a warning).
    #[must_use]
    pub fn open(state_dir: &std::path::Path) -> Self {
        let path = state_dir.join("controller-state.json");
        let content = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Map<String, Value>>(&bytes).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), %error, "ignoring an unreadable controller state file");
                Map::new()
            }),
            Err(_) => Map::new(),
        };
        StateFile {
            path,
            content: Mutex::new(content),
        }
    }

    /// The value stored under `section`/`key`.
    #[must_use]
    pub fn get<T: DeserializeOwned>(&self, section: &str, key: &str) -> Option<T> {
        let content = self.content.lock().unwrap_or_else(PoisonError::into_inner);
        content
            .get(section)?
            .get(key)
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }

    /// The keys stored under `section`.
    #[must_use]
    pub fn keys(&self, section: &str) -> Vec<String> {
        let content = self.content.lock().unwrap_or_else(PoisonError::into_inner);
        content
            .get(section)
            .and_then(Value::as_object)
            .map(|map| map.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Stores a value and writes the file if it changed.
    ///
    /// # Errors
    /// When the file cannot be written (the value is kept in memory).
    pub fn set<T: Serialize>(&self, section: &str, key: &str, value: &T) -> std::io::Result<()> {
        let value = serde_json::to_value(value).map_err(std::io::Error::other)?;
        let bytes = {
            let mut content = self.content.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = content
                .entry(section.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if entry.get(key) == Some(&value) {
                return Ok(());
            }
            if let Value::Object(map) = entry {
                map.insert(key.to_owned(), value);
            }
            serde_json::to_vec_pretty(&*content).map_err(std::io::Error::other)?
        };
        ds01_host::atomic_file::write_atomic(&self.path, &bytes)
    }

    /// Writes the file as it is now: proof, before a destructive action, that what the
    /// controller remembers reaches the disk.
    ///
    /// # Errors
    /// When the file cannot be written (a read-only or full state directory).
    pub fn sync(&self) -> std::io::Result<()> {
        let bytes = {
            let content = self.content.lock().unwrap_or_else(PoisonError::into_inner);
            serde_json::to_vec_pretty(&*content).map_err(std::io::Error::other)?
        };
        ds01_host::atomic_file::write_atomic(&self.path, &bytes)
    }

    /// Forgets `section`/`key`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn remove(&self, section: &str, key: &str) -> std::io::Result<()> {
        self.remove_all(section, &[key])
    }

    /// Forgets several keys of `section` with one write of the file.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn remove_all(&self, section: &str, keys: &[&str]) -> std::io::Result<()> {
        let bytes = {
            let mut content = self.content.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(map) = content.get_mut(section).and_then(Value::as_object_mut) else {
                return Ok(());
            };
            let before = map.len();
            for key in keys {
                map.remove(*key);
            }
            if map.len() == before {
                return Ok(());
            }
            serde_json::to_vec_pretty(&*content).map_err(std::io::Error::other)?
        };
        ds01_host::atomic_file::write_atomic(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgotten_keys_are_gone_from_the_file_and_the_rest_survive_a_reload() {
        let directory = tempfile::tempdir().expect("tempdir");
        let state = StateFile::open(directory.path());
        for key in ["lab/a", "lab/b", "lab/c"] {
            state.set("section", key, &key).expect("set");
        }
        state
            .remove_all("section", &["lab/a", "lab/c", "lab/never"])
            .expect("remove");
        let reloaded = StateFile::open(directory.path());
        assert_eq!(reloaded.keys("section"), ["lab/b"]);
        assert_eq!(
            reloaded.get::<String>("section", "lab/b").as_deref(),
            Some("lab/b")
        );
        state.remove("section", "lab/b").expect("remove one");
        assert!(StateFile::open(directory.path()).keys("section").is_empty());
    }
}
