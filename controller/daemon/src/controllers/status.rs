//! What the controllers report per resource: observed generation and Kubernetes-style
//! conditions (a condition's `lastTransitionTime` changes only when its status does).

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError, RwLock},
};

use ds01_spec::Kind;
use serde::Serialize;
use serde_json::Value;

/// One condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionRecord {
    /// `Ready`, `Degraded`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False`, `Unknown`.
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// Sentence.
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: String,
}

/// A resource's reported status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// The generation the controller last reconciled.
    pub observed_generation: u64,
    /// Conditions.
    pub conditions: Vec<ConditionRecord>,
    /// Kind-specific facts (container id, phase, restarts, …).
    pub details: Value,
}

/// Statuses of all resources, shared with the API.
#[derive(Clone, Debug, Default)]
pub struct StatusBoard {
    inner: Arc<RwLock<BTreeMap<(Kind, String), ResourceStatus>>>,
    controller: Arc<RwLock<Vec<ConditionRecord>>>,
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
        let now = format!("{:.3}", jiff::Timestamp::now());
        let mut conditions = self
            .controller
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let since = conditions
            .iter()
            .find(|old| old.kind == kind && old.status == status)
            .map_or(now, |old| old.last_transition_time.clone());
        conditions.retain(|old| old.kind != kind);
        conditions.push(ConditionRecord {
            kind: kind.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            last_transition_time: since,
        });
    }

    /// The controller's own conditions.
    #[must_use]
    pub fn controller_conditions(&self) -> Vec<ConditionRecord> {
        self.controller
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a reconcile's outcome.
    pub fn set(
        &self,
        kind: Kind,
        name: &str,
        generation: u64,
        conditions: &[(&str, &str, &str, String)],
        details: Value,
    ) {
        let now = format!("{:.3}", jiff::Timestamp::now());
        let mut board = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let entry = board.entry((kind, name.to_owned())).or_default();
        let previous = std::mem::take(&mut entry.conditions);
        entry.conditions = conditions
            .iter()
            .map(|(kind, status, reason, message)| {
                let since = previous
                    .iter()
                    .find(|old| old.kind == *kind && old.status == *status)
                    .map_or_else(|| now.clone(), |old| old.last_transition_time.clone());
                ConditionRecord {
                    kind: (*kind).to_owned(),
                    status: (*status).to_owned(),
                    reason: (*reason).to_owned(),
                    message: message.clone(),
                    last_transition_time: since,
                }
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
