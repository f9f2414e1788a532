//! The metric families and how events and reconciles update them.

use std::{sync::Mutex, time::Duration};

use ds01_runtime::{Finished, ReconcileObserver};
use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use super::labels::{
    ActionLabels, BuildLabels, ContainerLabel, ContainerLabels, ControllerLabel, EventLabel,
    KindLabel, ResourceLabels, ResultLabel, ResultLabels,
};

/// Every family, registered once.
#[derive(Debug)]
pub struct Metrics {
    pub(super) registry: Mutex<Registry>,
    pub(super) reconciles: Family<ResultLabels, Counter>,
    pub(super) reconcile_errors: Family<ControllerLabel, Counter>,
    pub(super) reconcile_duration: Family<ControllerLabel, Histogram>,
    pub(super) event_to_action: Family<ControllerLabel, Histogram>,
    pub(super) queue_depth: Family<ControllerLabel, Gauge>,
    pub(super) loop_heartbeat_age:
        Family<ControllerLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub(super) docker_connected: Gauge,
    pub(super) docker_events: Counter,
    pub(super) docker_event_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub(super) containers: Family<ContainerLabels, Gauge>,
    pub(super) gpus: Gauge,
    pub(super) gpu_processes: Family<KindLabel, Gauge>,
    pub(super) orphans_detected: Counter,
    pub(super) orphans_killed: Counter,
    pub(super) orphans_unkillable: Counter,
    pub(super) resets: Family<ResultLabel, Counter>,
    pub(super) lifecycle_actions: Family<ActionLabels, Counter>,
    pub(super) dcgm_up: Family<ContainerLabel, Gauge>,
    pub(super) dcgm_restarts: Family<ContainerLabel, Counter>,
    pub(super) dcgm_crashloops: Family<ContainerLabel, Counter>,
    pub(super) spec_generation: Family<ResourceLabels, Gauge>,
    pub(super) spec_observed_generation: Family<ResourceLabels, Gauge>,
    pub(super) events: Family<EventLabel, Counter>,
}

/// The runtime controllers, by the names they run under.
pub const CONTROLLERS: [&str; 4] = [
    "inventory",
    "dcgm-exporter",
    "gpu-orphans",
    "container-lifecycle",
];

/// Docker's container states (`ds01_containers{state}`).
const CONTAINER_STATES: [&str; 7] = [
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
];

/// Lifecycle (action, reason) pairs the controller can report.
const LIFECYCLE_ACTIONS: [(&str, &str); 8] = [
    ("idle_warning", "idle"),
    ("idle_stop", "idle"),
    ("runtime_warning", "runtime"),
    ("runtime_stop", "runtime"),
    ("removed", "removeAfterStop"),
    ("removed", "gpuHoldAfterStop"),
    ("removed", "createdTimeout"),
    ("exempt", "exempt"),
];

fn seconds_histogram() -> Histogram {
    // 1 ms … ~65 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 17,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family under the `ds01` prefix.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ds01");
        let metrics = Metrics {
            registry: Mutex::new(Registry::default()),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(seconds_histogram),
            event_to_action: Family::new_with_constructor(seconds_histogram),
            queue_depth: Family::default(),
            loop_heartbeat_age: Family::default(),
            docker_connected: Gauge::default(),
            docker_events: Counter::default(),
            docker_event_lag: Gauge::default(),
            containers: Family::default(),
            gpus: Gauge::default(),
            gpu_processes: Family::default(),
            orphans_detected: Counter::default(),
            orphans_killed: Counter::default(),
            orphans_unkillable: Counter::default(),
            resets: Family::default(),
            lifecycle_actions: Family::default(),
            dcgm_up: Family::default(),
            dcgm_restarts: Family::default(),
            dcgm_crashloops: Family::default(),
            spec_generation: Family::default(),
            spec_observed_generation: Family::default(),
            events: Family::default(),
        };
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register(
            "build_info",
            "Build facts of the running controller (always 1)",
            build,
        );
        registry.register(
            "reconciles",
            "Reconciles finished, by controller and result",
            metrics.reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that failed or timed out",
            metrics.reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            metrics.reconcile_duration.clone(),
        );
        registry.register(
            "event_to_action_seconds",
            "Time from when a lifecycle stop became due (its deadline) to the stop",
            metrics.event_to_action.clone(),
        );
        registry.register(
            "queue_depth",
            "Keys waiting in a controller's queue",
            metrics.queue_depth.clone(),
        );
        registry.register("loop_heartbeat_age_seconds", "Time since a controller loop last turned (the watchdog stops pinging when one is stale)", metrics.loop_heartbeat_age.clone());
        registry.register(
            "docker_connected",
            "1 while the Docker event stream is connected",
            metrics.docker_connected.clone(),
        );
        registry.register(
            "docker_events_received",
            "Docker container events received",
            metrics.docker_events.clone(),
        );
        registry.register(
            "docker_event_lag_seconds",
            "Age of the last Docker event when it was received",
            metrics.docker_event_lag.clone(),
        );
        registry.register(
            "containers",
            "Containers by origin, state and whether they hold a GPU",
            metrics.containers.clone(),
        );
        registry.register(
            "gpus",
            "GPUs (and MIG devices) NVML reports",
            metrics.gpus.clone(),
        );
        registry.register(
            "gpu_processes",
            "GPU processes by kind (container, host, ghost)",
            metrics.gpu_processes.clone(),
        );
        registry.register(
            "gpu_orphans_detected",
            "GPU orphan processes detected",
            metrics.orphans_detected.clone(),
        );
        registry.register(
            "gpu_orphans_killed",
            "GPU orphan processes terminated or killed",
            metrics.orphans_killed.clone(),
        );
        registry.register(
            "gpu_orphans_unkillable",
            "GPU orphans that survived SIGKILL",
            metrics.orphans_unkillable.clone(),
        );
        registry.register(
            "gpu_resets",
            "GPU resets by result (ok, failed, skipped)",
            metrics.resets.clone(),
        );
        registry.register(
            "lifecycle_actions",
            "Lifecycle actions by action and reason",
            metrics.lifecycle_actions.clone(),
        );
        registry.register(
            "dcgm_exporter_up",
            "1 while the DCGM exporter runs and answers its health probe",
            metrics.dcgm_up.clone(),
        );
        registry.register(
            "dcgm_exporter_restarts",
            "Restarts and re-creations of the DCGM exporter",
            metrics.dcgm_restarts.clone(),
        );
        registry.register(
            "dcgm_exporter_crashloops",
            "Times the DCGM exporter entered a crash loop",
            metrics.dcgm_crashloops.clone(),
        );
        registry.register(
            "spec_generation",
            "Generation of each applied resource",
            metrics.spec_generation.clone(),
        );
        registry.register(
            "spec_observed_generation",
            "Generation each resource's controller last reconciled",
            metrics.spec_observed_generation.clone(),
        );
        registry.register("events", "Events recorded, by type", metrics.events.clone());
        metrics.zero_known_series();
        *metrics
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = registry;
        metrics
    }

    /// Series whose labels are known in advance start at 0, so rates and alerts work
    /// before the first occurrence.
    fn zero_known_series(&self) {
        for controller in CONTROLLERS {
            let label = ControllerLabel {
                controller: controller.to_owned(),
            };
            for result in ["ok", "error", "timeout"] {
                let _ = self.reconciles.get_or_create(&ResultLabels {
                    controller: controller.to_owned(),
                    result: result.to_owned(),
                });
            }
            let _ = self.reconcile_errors.get_or_create(&label);
            let _ = self.reconcile_duration.get_or_create(&label);
            if controller == "container-lifecycle" {
                let _ = self.event_to_action.get_or_create(&label);
            }
        }
        for result in ["ok", "failed", "skipped"] {
            let _ = self.resets.get_or_create(&ResultLabel {
                result: result.to_owned(),
            });
        }
        for (action, reason) in LIFECYCLE_ACTIONS {
            let _ = self.lifecycle_actions.get_or_create(&ActionLabels {
                action: action.to_owned(),
                reason: reason.to_owned(),
            });
        }
        self.zero_containers();
    }

    /// A zero for every built-in origin, Docker state and GPU flag, so `ds01_containers` is
    /// there on a host without containers and each state's series exists before its first
    /// container.
    pub(super) fn zero_containers(&self) {
        for origin in crate::inventory::classify::BUILT_IN_ORIGINS {
            for state in CONTAINER_STATES {
                for gpu in ["true", "false"] {
                    let _ = self.containers.get_or_create(&ContainerLabels {
                        origin: origin.to_owned(),
                        state: state.to_owned(),
                        gpu: gpu.to_owned(),
                    });
                }
            }
        }
    }

    /// Restart and crash-loop counters of an exporter start at 0 once its spec is known, so
    /// `increase()` sees its first restart and first crash loop.
    pub(super) fn zero_exporter(&self, container: &str) {
        let label = ContainerLabel {
            container: container.to_owned(),
        };
        let _ = self.dcgm_restarts.get_or_create(&label);
        let _ = self.dcgm_crashloops.get_or_create(&label);
    }

    /// The OpenMetrics text of every family.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            tracing::warn!(%error, "metrics encoding failed");
        }
        text
    }
}

impl ReconcileObserver for Metrics {
    fn finished(&self, controller: &'static str, duration: Duration, how: Finished) {
        let label = ControllerLabel {
            controller: controller.to_owned(),
        };
        let result = match how {
            Finished::Ok => "ok",
            Finished::Error => "error",
            Finished::TimedOut => "timeout",
        };
        self.reconciles
            .get_or_create(&ResultLabels {
                controller: controller.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        if how != Finished::Ok {
            self.reconcile_errors.get_or_create(&label).inc();
        }
        self.reconcile_duration
            .get_or_create(&label)
            .observe(duration.as_secs_f64());
    }
}

#[cfg(test)]
#[path = "families_tests.rs"]
mod tests;
