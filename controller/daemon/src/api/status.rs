//! `GET /v1/status`: controller health, every applied resource with generations, conditions
//! and details, and workload counts. A non-admin sees other users' containers in the details
//! counted, not named.

use std::sync::{Arc, PoisonError};

use axum::{
    Json,
    extract::{ConnectInfo, State},
};
use ds01_spec::api::{
    ApiTime, Condition, ConditionStatus, ControllerHealth, Counts, DockerHealthView,
    GpuBackendView, ResourceView, StatusView,
};

use super::{ApiState, Peer, redact};
use crate::inventory::store::{DockerHealth, GpuHealth};

fn docker_view(health: &DockerHealth) -> DockerHealthView {
    DockerHealthView {
        connected: health.connected,
        since: health.since,
        last_relist: health.last_relist,
        last_error: health.last_error.clone(),
        events_received: health.events_received,
        event_lag_ms: health.event_lag_ms,
    }
}

/// The GPU source's health as the API shows it.
pub fn gpu_view(health: &GpuHealth) -> GpuBackendView {
    GpuBackendView {
        backend: health.backend.clone(),
        last_error: health.last_error.clone(),
        last_poll: health.last_poll,
    }
}

/// `GET /v1/status`.
pub async fn status(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Json<StatusView> {
    let mut resources: Vec<ResourceView> = {
        let store = state.store.lock().await;
        store
            .all()
            .map(|spec| {
                let kind = spec.resource.kind();
                let name = &spec.resource.metadata.name;
                let reported = state.board.get(kind, name);
                ResourceView {
                    kind: kind.as_str().to_owned(),
                    name: name.clone(),
                    generation: spec.generation,
                    observed_generation: reported.as_ref().map(|status| status.observed_generation),
                    conditions: reported.as_ref().map_or_else(
                        || {
                            vec![Condition::new(
                                "Ready",
                                ConditionStatus::Unknown,
                                "AwaitingController",
                                "applied; no controller has reconciled it yet",
                                ApiTime(spec.applied_at),
                            )]
                        },
                        |status| status.conditions.clone(),
                    ),
                    details: reported.map(|status| status.details),
                }
            })
            .collect()
    };
    if let Some(viewer) = peer.viewer() {
        for resource in &mut resources {
            if let Some(details) = &mut resource.details {
                redact::for_viewer(details, viewer);
            }
        }
    }
    let (docker, gpu, counts) = {
        let inventory = state
            .inventory
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let records = || inventory.containers.values();
        let counts = Counts {
            containers: inventory.containers.len(),
            running: records()
                .filter(|record| record.info.state.is_live())
                .count(),
            with_gpu: records().filter(|record| record.info.gpu.has_gpu).count(),
            gpus: inventory.gpus.gpus.len(),
            host_gpu_processes: inventory.host_processes.len(),
        };
        (
            docker_view(&inventory.docker),
            gpu_view(&inventory.gpu),
            counts,
        )
    };
    let now = jiff::Timestamp::now();
    Json(StatusView {
        controller: ControllerHealth {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: ApiTime(state.started),
            uptime_seconds: now.duration_since(state.started).as_secs(),
            docker,
            gpu,
            event_log_error: state.recorder.last_error(),
            conditions: state.board.controller_conditions(),
        },
        resources,
        counts,
    })
}
