//! Applied specs on disk: one file per resource under `<state-dir>/specs/`, each written
//! atomically and fsync'd; a set is applied all or nothing, also across a crash.
//!
//! # Guarantees
//! - `apply` validates the whole set through the same parser as `ds01ctl validate` before
//!   anything is written; an invalid set changes nothing.
//! - `generation` bumps only when a resource's content (defaults filled in) changes.
//! - A set is first written whole to `specs/.pending.json`, then into the per-resource files,
//!   then the journal is removed; a crash in between is finished at the next start.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use ds01_host::atomic_file::write_atomic;
use ds01_spec::{Diagnostics, Kind, ParsedResource, Resource, Source, parse_sources};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How applying changed one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    /// New.
    Created,
    /// Content changed; generation bumped.
    Configured,
    /// Same content.
    Unchanged,
}

/// One stored resource.
#[derive(Clone, Debug)]
pub struct StoredSpec {
    /// The typed resource, defaults filled in.
    pub resource: Resource,
    /// The document as it was submitted.
    pub written: Value,
    /// Bumped on every content change, from 1.
    pub generation: u64,
    /// When the current generation was applied.
    pub applied_at: jiff::Timestamp,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileForm {
    generation: u64,
    applied_at: jiff::Timestamp,
    document: Value,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum SpecStoreError {
    /// The submitted set is invalid; nothing was written.
    #[error("the submitted specs are invalid")]
    Invalid(#[source] Diagnostics),
    /// The state directory could not be read or written.
    #[error("cannot write applied specs under {path}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The applied specs.
#[derive(Debug)]
pub struct SpecStore {
    directory: PathBuf,
    specs: BTreeMap<(Kind, String), StoredSpec>,
}

fn file_name(kind: Kind, name: &str) -> String {
    format!("{}-{name}.json", kind.lowercase())
}

impl SpecStore {
    /// Opens the store under `state_dir/specs`, finishing an interrupted apply and loading
    /// every stored resource (a file that no longer parses is skipped and reported).
    ///
    /// # Errors
    /// When the directory cannot be created or read.
    pub fn open(state_dir: &Path) -> Result<Self, SpecStoreError> {
        let directory = state_dir.join("specs");
        let io = |source| SpecStoreError::Io {
            path: directory.clone(),
            source,
        };
        std::fs::create_dir_all(&directory).map_err(io)?;
        let mut store = SpecStore {
            directory: directory.clone(),
            specs: BTreeMap::new(),
        };
        store.finish_pending()?;
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&directory)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .collect();
        entries.sort();
        for path in entries
            .into_iter()
            .filter(|path| path.extension().is_some_and(|ext| ext == "json") && !is_hidden(path))
        {
            match load_file(&path) {
                Ok(stored) => {
                    store.specs.insert(
                        (
                            stored.resource.kind(),
                            stored.resource.metadata.name.clone(),
                        ),
                        stored,
                    );
                }
                Err(problem) => {
                    tracing::warn!(path = %path.display(), %problem, "skipping a stored spec that no longer loads")
                }
            }
        }
        Ok(store)
    }

    /// Every stored resource, by kind then name.
    pub fn all(&self) -> impl Iterator<Item = &StoredSpec> {
        self.specs.values()
    }

    /// One resource.
    #[must_use]
    pub fn get(&self, kind: Kind, name: &str) -> Option<&StoredSpec> {
        self.specs.get(&(kind, name.to_owned()))
    }

    /// The spec and generation of one resource, cloned out so the store's lock can be released.
    #[must_use]
    pub fn spec_of(&self, kind: Kind, name: &str) -> Option<(ds01_spec::SpecBody, u64)> {
        self.get(kind, name)
            .map(|stored| (stored.resource.spec.clone(), stored.generation))
    }

    /// What applying `sources` would do, without writing (`apply --dry-run`, `diff`).
    ///
    /// # Errors
    /// When the set is invalid.
    pub fn plan(
        &self,
        sources: &[Source],
    ) -> Result<Vec<(ParsedResource, ApplyOutcome)>, SpecStoreError> {
        let parsed = parse_sources(sources).map_err(SpecStoreError::Invalid)?;
        Ok(self.outcomes(parsed))
    }

    /// What applying already parsed resources would do (the caller parsed them without
    /// holding the store, e.g. on a blocking thread).
    #[must_use]
    pub fn outcomes(&self, parsed: Vec<ParsedResource>) -> Vec<(ParsedResource, ApplyOutcome)> {
        parsed
            .into_iter()
            .map(|item| {
                let outcome = match self.get(item.resource.kind(), &item.resource.metadata.name) {
                    None => ApplyOutcome::Created,
                    Some(stored) if stored.resource == item.resource => ApplyOutcome::Unchanged,
                    Some(_) => ApplyOutcome::Configured,
                };
                (item, outcome)
            })
            .collect()
    }

    /// Applies a set all or nothing; returns each resource's reference and outcome.
    ///
    /// # Errors
    /// When the set is invalid (nothing written) or the disk refuses (the journal finishes
    /// the apply at the next start).
    pub fn apply(
        &mut self,
        sources: &[Source],
        now: jiff::Timestamp,
    ) -> Result<Vec<(String, ApplyOutcome)>, SpecStoreError> {
        let planned = self.plan(sources)?;
        let mut writes: Vec<(String, FileForm, StoredSpec)> = Vec::new();
        for (item, outcome) in &planned {
            if *outcome == ApplyOutcome::Unchanged {
                continue;
            }
            let key = (item.resource.kind(), item.resource.metadata.name.clone());
            let generation = self
                .specs
                .get(&key)
                .map_or(1, |stored| stored.generation + 1);
            let form = FileForm {
                generation,
                applied_at: now,
                document: item.written.clone(),
            };
            let stored = StoredSpec {
                resource: item.resource.clone(),
                written: item.written.clone(),
                generation,
                applied_at: now,
            };
            writes.push((file_name(key.0, &key.1), form, stored));
        }
        if !writes.is_empty() {
            let journal: BTreeMap<&str, &FileForm> = writes
                .iter()
                .map(|(name, form, _)| (name.as_str(), form))
                .collect();
            self.write(
                ".pending.json",
                &serde_json::to_vec(&journal).unwrap_or_default(),
            )?;
            for (name, form, _) in &writes {
                self.write(name, &serde_json::to_vec_pretty(form).unwrap_or_default())?;
            }
            self.remove(".pending.json")?;
        }
        for (_, _, stored) in writes {
            self.specs.insert(
                (
                    stored.resource.kind(),
                    stored.resource.metadata.name.clone(),
                ),
                stored,
            );
        }
        Ok(planned
            .into_iter()
            .map(|(item, outcome)| (item.resource.reference(), outcome))
            .collect())
    }

    /// Deletes a resource; `false` when there was none.
    ///
    /// # Errors
    /// When its file cannot be removed.
    pub fn delete(&mut self, kind: Kind, name: &str) -> Result<bool, SpecStoreError> {
        if self.specs.remove(&(kind, name.to_owned())).is_none() {
            return Ok(false);
        }
        self.remove(&file_name(kind, name))?;
        Ok(true)
    }

    fn write(&self, name: &str, content: &[u8]) -> Result<(), SpecStoreError> {
        let path = self.directory.join(name);
        write_atomic(&path, content).map_err(|source| SpecStoreError::Io { path, source })
    }

    fn remove(&self, name: &str) -> Result<(), SpecStoreError> {
        let path = self.directory.join(name);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(SpecStoreError::Io {
                path,
                source: error,
            }),
            _ => Ok(()),
        }
    }

    fn finish_pending(&self) -> Result<(), SpecStoreError> {
        let path = self.directory.join(".pending.json");
        let Ok(text) = std::fs::read(&path) else {
            return Ok(());
        };
        let Ok(journal) = serde_json::from_slice::<BTreeMap<String, FileForm>>(&text) else {
            tracing::warn!(path = %path.display(), "discarding an unreadable apply journal");
            return self.remove(".pending.json");
        };
        tracing::info!(
            resources = journal.len(),
            "finishing an apply interrupted by a crash"
        );
        for (name, form) in &journal {
            self.write(name, &serde_json::to_vec_pretty(form).unwrap_or_default())?;
        }
        self.remove(".pending.json")
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
}

/// Why a stored spec no longer loads.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    #[error("not a stored spec: {0}")]
    Form(#[from] serde_json::Error),
    #[error("its document no longer parses: {0}")]
    Document(String),
    #[error("it holds no document")]
    Empty,
}

fn load_file(path: &Path) -> Result<StoredSpec, LoadError> {
    let text = std::fs::read_to_string(path)?;
    let form: FileForm = serde_json::from_str(&text)?;
    let source = Source {
        name: path.display().to_string(),
        text: serde_json::to_string(&form.document).unwrap_or_default(),
    };
    let mut parsed = parse_sources(&[source]).map_err(|diagnostics| {
        LoadError::Document(
            diagnostics
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let item = parsed.pop().ok_or(LoadError::Empty)?;
    Ok(StoredSpec {
        resource: item.resource,
        written: item.written,
        generation: form.generation,
        applied_at: form.applied_at,
    })
}

#[cfg(test)]
#[path = "spec_store_tests.rs"]
mod tests;
