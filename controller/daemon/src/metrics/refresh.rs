//! Reading the live state into the gauge families on each scrape.

use std::sync::{Arc, PoisonError};

use ds01_spec::{Kind, SpecBody};

use super::{
    families::Metrics,
    labels::{ContainerLabel, ContainerLabels, ControllerLabel, KindLabel, ResourceLabels},
};
use crate::{
    controllers::status::StatusBoard,
    health::Loops,
    inventory::{SharedInventory, attribution::Placement},
    spec_store::SpecStore,
};

/// Where the gauges are read from.
pub struct Sources {
    /// Observations.
    pub inventory: SharedInventory,
    /// Applied specs.
    pub store: Arc<tokio::sync::Mutex<SpecStore>>,
    /// Reported status.
    pub board: StatusBoard,
    /// Each runtime controller's counters.
    pub loops: Loops,
}

impl Metrics {
    /// Sets every gauge from `sources`.
    pub async fn refresh(&self, sources: &Sources) {
        for (name, stats) in sources.loops.all() {
            let label = ControllerLabel {
                controller: name.to_owned(),
            };
            let depth = stats.queue_depth.load(std::sync::atomic::Ordering::Relaxed);
            self.queue_depth
                .get_or_create(&label)
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
            self.loop_heartbeat_age
                .get_or_create(&label)
                .set(stats.heartbeat.age().as_secs_f64());
        }
        let store = sources.store.lock().await;
        let named_origins: std::collections::BTreeSet<&str> = store
            .all()
            .filter_map(|stored| match &stored.resource.spec {
                SpecBody::ContainerLifecyclePolicy(spec) => Some(spec.container_types.keys()),
                _ => None,
            })
            .flatten()
            .map(String::as_str)
            .collect();
        self.refresh_inventory(&sources.inventory, &named_origins);
        self.spec_generation.clear();
        self.spec_observed_generation.clear();
        self.dcgm_up.clear();
        for stored in store.all() {
            let kind = stored.resource.kind();
            let name = &stored.resource.metadata.name;
            let labels = ResourceLabels {
                kind: kind.as_str().to_owned(),
                name: name.clone(),
            };
            let generation = i64::try_from(stored.generation).unwrap_or(i64::MAX);
            self.spec_generation.get_or_create(&labels).set(generation);
            let status = sources.board.get(kind, name);
            let observed = status
                .as_ref()
                .map_or(0, |status| status.observed_generation);
            self.spec_observed_generation
                .get_or_create(&labels)
                .set(i64::try_from(observed).unwrap_or(i64::MAX));
            if let (Kind::DcgmExporter, SpecBody::DcgmExporter(spec)) =
                (kind, &stored.resource.spec)
            {
                self.zero_exporter(&spec.container_name);
                let ready = status.is_some_and(|status| {
                    status.conditions.iter().any(|condition| {
                        condition.kind == "Ready"
                            && condition.status == ds01_spec::api::ConditionStatus::True
                    })
                });
                self.dcgm_up
                    .get_or_create(&ContainerLabel {
                        container: spec.container_name.clone(),
                    })
                    .set(i64::from(ready));
            }
        }
    }

    /// `named_origins`: the `containerTypes` keys of the applied policies. Any other origin a
    /// label chose is counted as `other`, so users cannot grow the series without bound.
    fn refresh_inventory(
        &self,
        inventory: &SharedInventory,
        named_origins: &std::collections::BTreeSet<&str>,
    ) {
        let inventory = inventory.read().unwrap_or_else(PoisonError::into_inner);
        self.docker_connected
            .set(i64::from(inventory.docker.connected));
        let received = inventory.docker.events_received;
        let counted = self.docker_events.get();
        if received > counted {
            self.docker_events.inc_by(received - counted);
        }
        if let Some(lag) = inventory.docker.event_lag_ms {
            #[allow(clippy::cast_precision_loss)]
            self.docker_event_lag.set(lag.max(0) as f64 / 1000.0);
        }
        self.containers.clear();
        self.zero_containers();
        for record in inventory.containers.values() {
            self.containers
                .get_or_create(&ContainerLabels {
                    origin: origin_label(&record.origin, named_origins),
                    state: record.info.state.as_str().to_owned(),
                    gpu: (!record.gpu_uuids.is_empty()).to_string(),
                })
                .inc();
        }
        self.gpus
            .set(i64::try_from(inventory.gpus.gpus.len()).unwrap_or(i64::MAX));
        self.gpu_processes.clear();
        for kind in ["container", "foreign", "host", "ghost"] {
            let _ = self.gpu_processes.get_or_create(&KindLabel {
                kind: kind.to_owned(),
            });
        }
        for process in &inventory.gpu_processes {
            let kind = match process.placement {
                Placement::Container { .. } => "container",
                Placement::Foreign { .. } => "foreign",
                Placement::Host => "host",
                Placement::Ghost => "ghost",
            };
            self.gpu_processes
                .get_or_create(&KindLabel {
                    kind: kind.to_owned(),
                })
                .inc();
        }
    }
}

/// The `origin` label of `ds01_containers`: a built-in origin, a documented interface, or a
/// `containerTypes` key of an applied policy; anything else a label chose is `other`.
fn origin_label(origin: &str, named: &std::collections::BTreeSet<&str>) -> String {
    if crate::inventory::classify::BUILT_IN_ORIGINS.contains(&origin)
        || KNOWN_INTERFACES.contains(&origin)
        || named.contains(origin)
    {
        origin.to_owned()
    } else {
        "other".to_owned()
    }
}

/// The `ds01.interface` values DESIGN.md names.
const KNOWN_INTERFACES: [&str; 3] = ["api", "orchestration", "atomic"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_chosen_origin_is_counted_as_other_unless_a_policy_names_it() {
        let named = std::collections::BTreeSet::from(["gpu-jobs"]);
        for (origin, label) in [
            ("docker", "docker"),
            ("devcontainer", "devcontainer"),
            ("api", "api"),
            ("gpu-jobs", "gpu-jobs"),
            ("x-1f3a9c", "other"),
        ] {
            assert_eq!(origin_label(origin, &named), label, "{origin}");
        }
    }
}
