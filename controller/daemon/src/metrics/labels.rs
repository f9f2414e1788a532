//! The label sets of the metric families.

use prometheus_client::encoding::EncodeLabelSet;

/// Labels: one controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    /// Controller name (`dcgm-exporter`, `gpu-orphans`, `container-lifecycle`, `inventory`).
    pub controller: String,
}

/// Labels: a controller and how a reconcile ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Controller name.
    pub controller: String,
    /// `ok`, `error` or `timeout`.
    pub result: String,
}

/// Labels: containers by origin, state and whether they hold a GPU.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerLabels {
    /// `containerTypes` key.
    pub origin: String,
    /// Docker state.
    pub state: String,
    /// `true` when it holds a GPU.
    pub gpu: String,
}

/// Labels: one label named `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// What is counted.
    pub kind: String,
}

/// Labels: a result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok`, `failed`, `skipped`.
    pub result: String,
}

/// Labels: a lifecycle action.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `idle_stop`, `runtime_stop`, `idle_warning`, …
    pub action: String,
    /// `idle`, `runtime`, `removeAfterStop`, …
    pub reason: String,
}

/// Labels: one exporter container.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerLabel {
    /// Container name.
    pub container: String,
}

/// Labels: one resource.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// Spec kind.
    pub kind: String,
    /// Resource name.
    pub name: String,
}

/// Labels: build facts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// Crate version.
    pub version: String,
}

/// Labels: an event type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    /// `event_type`.
    pub event_type: String,
}
