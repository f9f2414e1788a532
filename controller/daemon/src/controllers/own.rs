//! The containers the controller created itself (its exporters), by the id Docker gave them:
//! the one way it recognises its own. Labels are never asked: a user can copy any label.
//!
//! The ids are persisted with each exporter's memory in the state file and loaded at start;
//! the set lives in the inventory so every reader (lifecycle passes, `apply --dry-run`
//! previews) sees the same answer.

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError, RwLock},
};

/// Container ids the controller created, by the resource that owns each.
#[derive(Clone, Debug, Default)]
pub struct OwnContainers(Arc<RwLock<BTreeMap<String, String>>>);

impl OwnContainers {
    /// Whether the controller created the container with this full id.
    #[must_use]
    pub fn contains(&self, id: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .any(|own| own == id)
    }

    /// Records the container `resource` owns now (`None`: none).
    pub fn set(&self, resource: &str, id: Option<&str>) {
        let mut owned = self.0.write().unwrap_or_else(PoisonError::into_inner);
        match id {
            Some(id) => {
                owned.insert(resource.to_owned(), id.to_owned());
            }
            None => {
                owned.remove(resource);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_known_per_resource_and_forgotten_when_replaced() {
        let own = OwnContainers::default();
        let reader = own.clone();
        own.set("dcgmexporter/a", Some("1111"));
        own.set("dcgmexporter/b", Some("2222"));
        assert!(reader.contains("1111") && reader.contains("2222"));
        own.set("dcgmexporter/a", Some("3333"));
        assert!(!reader.contains("1111"));
        own.set("dcgmexporter/b", None);
        assert!(reader.contains("3333") && !reader.contains("2222"));
        assert!(!reader.contains(""));
    }
}
