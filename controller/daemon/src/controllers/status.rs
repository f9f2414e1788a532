//! What the controllers report per resource: observed generation and Kubernetes-style
//! conditions (a condition's `lastTransitionTime` changes only when its status does).

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError, RwLock},
};

use ds01_spec::{
    Kind,
    api::{ApiTime, Condition, ConditionStatus},
};
use serde::Serialize;
use serde_json::Value;

/// What a controller reports for one condition; the board keeps its transition time.
pub trait ConditionUpdate {
    /// `(type, status, reason, message)`.
    fn parts(&self) -> (&str, ConditionStatus, &str, &str);
}

impl ConditionUpdate for (&str, &str, &str, String) {
    fn parts(&self) -> (&str, ConditionStatus, &str, &str) {
        (self.0, ConditionStatus::parse(self.1), self.2, &self.3)
    }
}

impl ConditionUpdate for Condition {
    fn parts(&self) -> (&str, ConditionStatus, &str, &str) {
        (&self.kind, self.status, &self.reason, &self.message)
    }
}

/// A resource's reported status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// The generation the controller last reconciled.
    pub observed_generation: u64,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Kind-specific facts (container id, phase, restarts, …).
    pub details: Value,
}

/// Statuses of all resources, shared with the API.
#[derive(Clone, Debug, Default)]
pub struct StatusBoard {
    inner: Arc<RwLock<BTreeMap<(Kind, String), ResourceStatus>>>,
    controller: Arc<RwLock<Vec<Condition>>>,
}

impl StatusBoard {
    /// Sets one of the controller's own conditions (not a resource's).
    pub fn set_controller_condition(
        &self,
        kind: &str,
        status: &str,
        reason: &str,
        message: String,
    ) {
        let now = ApiTime::now();
        let status = ConditionStatus::parse(status);
        let mut conditions = self
            .controller
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let since = conditions
            .iter()
            .find(|old| old.kind == kind && old.status == status)
            .map_or(now, |old| old.last_transition_time);
        conditions.retain(|old| old.kind != kind);
        conditions.push(Condition::new(kind, status, reason, message, since));
    }

    /// The controller's own conditions.
    #[must_use]
    pub fn controller_conditions(&self) -> Vec<Condition> {
        self.controller
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a reconcile's outcome: conditions as `(type, status, reason, message)` tuples
    /// or typed [`Condition`]s (whose transition time the board sets).
    pub fn set<C: ConditionUpdate>(
        &self,
        kind: Kind,
        name: &str,
        generation: u64,
        conditions: &[C],
        details: Value,
    ) {
        let now = ApiTime::now();
        let mut board = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let entry = board.entry((kind, name.to_owned())).or_default();
        let previous = std::mem::take(&mut entry.conditions);
        entry.conditions = conditions
            .iter()
            .map(|update| {
                let (kind, status, reason, message) = update.parts();
                let since = previous
                    .iter()
                    .find(|old| old.kind == kind && old.status == status)
                    .map_or(now, |old| old.last_transition_time);
                Condition::new(kind, status, reason, message, since)
            })
            .collect();
        entry.observed_generation = generation;
        entry.details = details;
    }

    /// The status of one resource.
    #[must_use]
    pub fn get(&self, kind: Kind, name: &str) -> Option<ResourceStatus> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(kind, name.to_owned()))
            .cloned()
    }

    /// Every resource's status, by kind and name.
    #[must_use]
    pub fn all(&self) -> Vec<((Kind, String), ResourceStatus)> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, status)| (key.clone(), status.clone()))
            .collect()
    }

    /// Forgets a deleted resource.
    pub fn remove(&self, kind: Kind, name: &str) {
        self.inner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(kind, name.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transition_time_changes_only_with_the_status() {
        let board = StatusBoard::default();
        let ready = |status: &'static str| [("Ready", status, "Why", String::new())];
        board.set(Kind::GpuOrphanPolicy, "p", 1, &ready("True"), Value::Null);
        let first = board.get(Kind::GpuOrphanPolicy, "p").expect("status");
        std::thread::sleep(std::time::Duration::from_millis(5));
        board.set(Kind::GpuOrphanPolicy, "p", 2, &ready("True"), Value::Null);
        let same = board.get(Kind::GpuOrphanPolicy, "p").expect("status");
        assert_eq!(
            first.conditions[0].last_transition_time,
            same.conditions[0].last_transition_time
        );
        assert_eq!(same.conditions[0].status, ConditionStatus::True);
        board.set(Kind::GpuOrphanPolicy, "p", 2, &ready("False"), Value::Null);
        let changed = board.get(Kind::GpuOrphanPolicy, "p").expect("status");
        assert!(
            changed.conditions[0].last_transition_time > first.conditions[0].last_transition_time
        );
    }
}
