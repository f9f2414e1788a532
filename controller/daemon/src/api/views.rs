//! Read views of the inventory for `ds01ctl get` and `describe`: containers, GPUs, GPU
//! processes, as the typed structs of `ds01_spec::api`. A non-admin sees full detail only for
//! their own containers and processes; others are counted. The lifecycle controller's facts
//! (still JSON inside the controller) are converted here, at the boundary.

use std::sync::{Arc, PoisonError};

use axum::{
    Json,
    extract::{ConnectInfo, RawQuery, State},
    http::StatusCode,
};
use ds01_spec::api::{
    ApiTime, ContainerDetail, ContainerEvent, ContainerGpuProcess, ContainerLifecycleView,
    ContainerList, ContainerSummary, GpuList, GpuView, MigDeviceView, MountView, ProcessCounts,
    ProcessList, ProcessView,
};
use serde_json::Value;

use super::{ApiState, Peer, failure::Failure, filters::WorkloadFilter};
use crate::inventory::{ContainerRecord, Inventory, attribution::Placement};

/// The lifecycle controller's facts about a container, typed; `None` when there are none or
/// they do not have the shape of [`ContainerLifecycleView`].
pub fn lifecycle_view(facts: &Value) -> Option<ContainerLifecycleView> {
    if facts.is_null() {
        return None;
    }
    match serde_json::from_value(facts.clone()) {
        Ok(view) => Some(view),
        Err(error) => {
            tracing::warn!(%error, "lifecycle facts do not fit the API view; left out");
            None
        }
    }
}

fn summary(record: &ContainerRecord) -> ContainerSummary {
    let info = &record.info;
    ContainerSummary {
        id: info.short_id().to_owned(),
        name: info.name.clone(),
        user: record.user.clone(),
        owner_source: record.owner_source.to_owned(),
        owner_verified: record.owner_verified,
        origin: record.origin.clone(),
        status: info.state.as_str().to_owned(),
        image: info.image.clone(),
        gpus: record.gpu_uuids.clone(),
        gpu_grants: super::gpu_views::grants(record),
        gpu_claims: super::gpu_views::claims(record),
        gpu_unresolved: record.gpus.unresolved.clone(),
        has_gpu: info.gpu.has_gpu,
        created_at: info.created_at.map(ApiTime),
        started_at: info.started_at.map(ApiTime),
        finished_at: info.finished_at.map(ApiTime),
        detected_at: ApiTime(record.detected_at),
        idle_since: None,
        next_deadline: None,
    }
}

/// `GET /v1/containers?user=&gpu=&label=`.
pub async fn containers(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    RawQuery(query): RawQuery,
) -> Result<Json<ContainerList>, Failure> {
    let filter = WorkloadFilter::parse(query.as_deref())?;
    let viewer = peer.viewer();
    let lifecycle = state
        .lifecycle
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let inventory = state
        .inventory
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let devices = filter.devices(&inventory);
    let mut list = ContainerList::default();
    for record in inventory.containers.values() {
        if viewer.is_some_and(|me| record.user != me) {
            let unlabelled = WorkloadFilter {
                labels: Vec::new(),
                ..filter.clone()
            };
            if unlabelled.container_matches(record, devices.as_deref()) {
                list.others_hidden += 1;
            }
            continue;
        }
        if !filter.container_matches(record, devices.as_deref()) {
            continue;
        }
        let mut view = summary(record);
        if let Some(facts) = lifecycle.get(&record.info.id).and_then(lifecycle_view) {
            view.idle_since = facts.idle_since;
            view.next_deadline = facts.next_deadline;
        }
        list.containers.push(view);
    }
    Ok(Json(list))
}

fn process_counts(inventory: &Inventory, uuid: &str) -> ProcessCounts {
    let mut counts = ProcessCounts::default();
    for process in inventory
        .gpu_processes
        .iter()
        .filter(|process| process.parent_gpu_uuid == uuid || process.gpu_uuid == uuid)
    {
        match process.placement {
            Placement::Container { .. } => counts.container += 1,
            Placement::Foreign { .. } => counts.foreign += 1,
            Placement::Host => counts.host += 1,
            Placement::Ghost => counts.ghost += 1,
        }
    }
    counts
}

/// Names of the running containers holding `uuid`; for a non-admin, other users' containers
/// are `(another user)` and counted.
fn holders(inventory: &Inventory, uuid: &str, viewer: Option<&str>) -> (Vec<String>, usize) {
    let mut others = 0;
    let names = inventory
        .containers
        .values()
        .filter(|record| {
            record.gpu_uuids.iter().any(|held| held == uuid) && record.info.state.is_live()
        })
        .map(|record| {
            if viewer.is_none_or(|me| record.user == me) {
                record.info.name.clone()
            } else {
                others += 1;
                "(another user)".to_owned()
            }
        })
        .collect();
    (names, others)
}

/// `GET /v1/gpus`.
pub async fn gpus(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Json<GpuList> {
    let viewer = peer.viewer();
    let inventory = state
        .inventory
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let gpus = inventory
        .gpus
        .gpus
        .iter()
        .map(|gpu| {
            let (holders_named, others_holding) = holders(&inventory, &gpu.uuid, viewer);
            GpuView {
                index: gpu.index,
                uuid: gpu.uuid.clone(),
                name: gpu.name.clone(),
                memory_total_bytes: gpu.memory_total_bytes,
                memory_used_bytes: gpu.memory_used_bytes,
                utilization_gpu: gpu.utilization_gpu,
                temperature_c: gpu.temperature_c,
                mig_enabled: gpu.mig_enabled,
                lost: gpu.lost,
                errors: gpu.errors.clone(),
                holders: holders_named,
                others_holding,
                processes: process_counts(&inventory, &gpu.uuid),
                mig_devices: gpu
                    .mig_devices
                    .iter()
                    .map(|mig| {
                        let (holders_named, others_holding) =
                            holders(&inventory, &mig.uuid, viewer);
                        MigDeviceView {
                            uuid: mig.uuid.clone(),
                            memory_total_bytes: mig.memory_total_bytes,
                            holders: holders_named,
                            others_holding,
                            processes: process_counts(&inventory, &mig.uuid),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    Json(GpuList {
        gpus,
        backend: super::status::gpu_view(&inventory.gpu),
    })
}

/// `GET /v1/processes?user=&gpu=&label=`.
pub async fn processes(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    RawQuery(query): RawQuery,
) -> Result<Json<ProcessList>, Failure> {
    let filter = WorkloadFilter::parse(query.as_deref())?;
    let viewer = peer.viewer();
    let inventory = state
        .inventory
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let devices = filter.devices(&inventory);
    let mut list = ProcessList::default();
    for process in &inventory.gpu_processes {
        let container = match &process.placement {
            Placement::Container { id, .. } => inventory.containers.get(id),
            _ => None,
        };
        let owner = container
            .map(|record| record.user.clone())
            .or_else(|| process.user.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let on_devices = devices.as_deref().is_none_or(|devices| {
            devices.contains(&process.gpu_uuid) || devices.contains(&process.parent_gpu_uuid)
        });
        if viewer.is_some_and(|me| owner != me) {
            if filter.user_matches(&owner) && on_devices {
                list.others_hidden += 1;
            }
            continue;
        }
        if !(filter.user_matches(&owner)
            && on_devices
            && filter.labels_match(container.map(|record| &record.info.labels)))
        {
            continue;
        }
        let class = match (&process.placement, container) {
            (Placement::Container { .. }, Some(record)) if record.info.state.is_live() => {
                "container"
            }
            (Placement::Container { .. }, _) => "stopped-container",
            (Placement::Foreign { .. }, _) => "unknown",
            (Placement::Host, _) if process.zombie => "zombie",
            (Placement::Host, _) => "host",
            (Placement::Ghost, _) => "ghost",
        };
        list.processes.push(ProcessView {
            pid: process.identity.pid,
            start_time: process.identity.start_time,
            user: owner,
            gpu: process.gpu_uuid.clone(),
            class: class.to_owned(),
            container: container.map(|record| record.info.name.clone()),
            name: process.name.clone(),
            cmdline: process.cmdline.clone(),
            memory_mib: process.used_memory_bytes.map(|bytes| bytes >> 20),
        });
    }
    Ok(Json(list))
}

/// `GET /v1/containers/{name-or-id}`: everything known about one container.
pub async fn container(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    axum::extract::Path(wanted): axum::extract::Path<String>,
) -> Result<Json<ContainerDetail>, Failure> {
    let facts = state
        .lifecycle
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut detail = {
        let inventory = state
            .inventory
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let record = super::lookup::container(&inventory, &wanted)?;
        if peer.viewer().is_some_and(|me| record.user != me) {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "that container belongs to another user; only admins see others' containers in detail",
            ));
        }
        let info = &record.info;
        let lifecycle = facts.get(&info.id).and_then(lifecycle_view);
        let mut summary = summary(&record);
        summary.idle_since = lifecycle.as_ref().and_then(|view| view.idle_since);
        summary.next_deadline = lifecycle.as_ref().and_then(|view| view.next_deadline);
        ContainerDetail {
            summary,
            labels: info.labels.clone(),
            mounts: info
                .mounts
                .iter()
                .map(|mount| MountView {
                    source: mount.source.clone(),
                    destination: mount.destination.clone(),
                    kind: mount.kind.clone(),
                })
                .collect(),
            gpu_access: super::gpu_views::access(info),
            owner_conflict: super::gpu_views::conflict(&record),
            pid: info.pid,
            exit_code: info.exit_code,
            lifecycle,
            gpu_processes: inventory
                .gpu_processes
                .iter()
                .filter(|process| {
                    matches!(&process.placement, Placement::Container { id, .. } if *id == info.id)
                })
                .map(|process| ContainerGpuProcess {
                    pid: process.identity.pid,
                    gpu: process.gpu_uuid.clone(),
                    name: process.name.clone(),
                    memory_mib: process.used_memory_bytes.map(|bytes| bytes >> 20),
                })
                .collect(),
            events: Vec::new(),
        }
    };
    let id = detail.summary.id.clone();
    let user = detail.summary.user.clone();
    detail.events = state
        .recorder
        .recent()
        .into_iter()
        .filter(|event| {
            event.details["container_id"] == id.as_str()
                && event.user.as_deref() == Some(user.as_str())
        })
        .map(|event| ContainerEvent {
            timestamp: event.timestamp,
            event_type: event.event_type,
            details: event.details,
        })
        .collect();
    Ok(Json(detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_controllers_facts_convert_to_the_typed_view() {
        // The shape `controllers/lifecycle/executor.rs::view` writes today.
        let facts = serde_json::json!({
            "policy": "lab", "dryRun": false, "group": "student",
            "limits": {
                "idleTimeout": {"value": "1h", "source": "groups.student"},
                "maxRuntime": {"value": null, "source": "built-in default"},
                "stopGracePeriod": {"value": "1m", "source": "built-in default"},
                "onIdle": {"value": "Stop", "source": "built-in default"},
                "removeAfterStop": {"value": "30m", "source": "defaults"},
                "gpuHoldAfterStop": {"value": "15m", "source": "defaults"},
                "createdTimeout": {"value": "30m", "source": "defaults"},
                "startupGrace": {"value": "30m", "source": "defaults"},
                "gpuUtilBelow": {"value": "5%", "source": "defaults"},
                "cpuBelow": {"value": "2%", "source": "defaults"},
                "networkBelow": {"value": "1MiB", "source": "defaults"}
            },
            "exemptions": [{"from": ["idle"], "reason": "thesis", "expires": null}],
            "signals": {"gpu": {"value": "0%", "idle": true}, "cpu": {"value": null, "idle": false},
                        "network": {"value": "12B", "idle": true}, "keepAlive": false},
            "idle": true,
            "idleSince": "2026-01-01T10:00:00.000Z",
            "idleWarningsSent": 1,
            "runtimeWarningsSent": 0,
            "nextDeadline": "2026-01-01T11:00:00.000Z",
            "note": null
        });
        let view = lifecycle_view(&facts).expect("converts");
        assert_eq!(view.limits.idle_timeout.value.as_deref(), Some("1h"));
        assert_eq!(view.limits.idle_timeout.source, "groups.student");
        assert_eq!(view.exemptions[0].from, ["idle"]);
        assert_eq!(view.signals.cpu.value, None);
        assert_eq!(view.idle_warnings_sent, 1);
        assert_eq!(
            view.idle_since.map(|at| at.to_string()).as_deref(),
            Some("2026-01-01T10:00:00.000Z")
        );
        let back = serde_json::to_value(&view).expect("json");
        assert_eq!(back, facts, "the typed view writes the same JSON");
        assert!(lifecycle_view(&Value::Null).is_none());
    }
}
