//! Read views of the inventory for `ds01ctl get`: containers, GPUs, GPU processes. A non-admin
//! sees full detail only for their own containers and processes; others are counted.

use std::sync::{Arc, PoisonError};

use axum::{
    Json,
    extract::{ConnectInfo, State},
};
use serde_json::{Value, json};

use super::{ApiState, Peer};
use crate::inventory::{ContainerRecord, gpu_watch::Placement};

/// Whose details a peer may see: `None` for everything.
fn viewer(state: &ApiState, peer: &Peer) -> Option<String> {
    (!state.admin.is_admin(peer)).then(|| {
        peer.uid
            .map_or_else(|| "?".to_owned(), ds01_host::users::user_name)
    })
}

fn container_view(record: &ContainerRecord) -> Value {
    let info = &record.info;
    json!({
        "id": info.short_id(),
        "name": info.name,
        "user": record.user,
        "ownerSource": record.owner_source,
        "origin": record.origin,
        "status": info.state.as_str(),
        "image": info.image,
        "gpus": record.gpu_uuids,
        "hasGpu": info.gpu.has_gpu,
        "createdAt": info.created_at.map(|at| format!("{at:.3}")),
        "startedAt": info.started_at.map(|at| format!("{at:.3}")),
        "finishedAt": info.finished_at.map(|at| format!("{at:.3}")),
        "detectedAt": format!("{:.3}", record.detected_at),
    })
}

/// `GET /v1/containers`.
pub async fn containers(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Json<Value> {
    let me = viewer(&state, &peer);
    let inventory = state
        .inventory
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let (visible, hidden): (Vec<&ContainerRecord>, Vec<&ContainerRecord>) = inventory
        .containers
        .values()
        .map(AsRef::as_ref)
        .partition(|record| me.as_deref().is_none_or(|me| record.user == me));
    let lifecycle = state
        .lifecycle
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let listed: Vec<Value> = visible
        .into_iter()
        .map(|record| {
            let mut view = container_view(record);
            if let Some(facts) = lifecycle.get(&record.info.id) {
                view["idleSince"] = facts["idleSince"].clone();
                view["nextDeadline"] = facts["nextDeadline"].clone();
            }
            view
        })
        .collect();
    Json(json!({ "containers": listed, "othersHidden": hidden.len() }))
}

/// `GET /v1/gpus`.
pub async fn gpus(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Json<Value> {
    let me = viewer(&state, &peer);
    let inventory = state
        .inventory
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let holders = |uuid: &str| -> Vec<String> {
        inventory
            .containers
            .values()
            .filter(|record| {
                record.gpu_uuids.iter().any(|held| held == uuid) && record.info.state.is_live()
            })
            .map(|record| {
                if me.as_deref().is_none_or(|me| record.user == me) {
                    record.info.name.clone()
                } else {
                    "(another user)".to_owned()
                }
            })
            .collect()
    };
    let classes = |uuid: &str| {
        let on_device = inventory
            .gpu_processes
            .iter()
            .filter(|process| process.parent_gpu_uuid == uuid || process.gpu_uuid == uuid);
        let mut counts = json!({ "container": 0, "host": 0, "ghost": 0 });
        for process in on_device {
            let class = match process.placement {
                Placement::Container { .. } => "container",
                Placement::Foreign { .. } => "foreign",
                Placement::Host => "host",
                Placement::Ghost => "ghost",
            };
            counts[class] = json!(counts[class].as_u64().unwrap_or(0) + 1);
        }
        counts
    };
    let gpus: Vec<Value> = inventory
        .gpus
        .gpus
        .iter()
        .map(|gpu| {
            json!({
                "index": gpu.index,
                "uuid": gpu.uuid,
                "name": gpu.name,
                "memoryTotalBytes": gpu.memory_total_bytes,
                "memoryUsedBytes": gpu.memory_used_bytes,
                "utilizationGpu": gpu.utilization_gpu,
                "temperatureC": gpu.temperature_c,
                "migEnabled": gpu.mig_enabled,
                "lost": gpu.lost,
                "errors": gpu.errors,
                "holders": holders(&gpu.uuid),
                "processes": classes(&gpu.uuid),
                "migDevices": gpu.mig_devices.iter().map(|mig| json!({
                    "uuid": mig.uuid,
                    "memoryTotalBytes": mig.memory_total_bytes,
                    "holders": holders(&mig.uuid),
                    "processes": classes(&mig.uuid),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "gpus": gpus, "backend": inventory.gpu }))
}

/// `GET /v1/processes`.
pub async fn processes(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Json<Value> {
    let me = viewer(&state, &peer);
    let inventory = state
        .inventory
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let mut hidden = 0;
    let mut listed = Vec::new();
    for process in &inventory.gpu_processes {
        let container = match &process.placement {
            Placement::Container { id, .. } => inventory.containers.get(id),
            _ => None,
        };
        let owner = container
            .map(|record| record.user.clone())
            .or_else(|| process.user.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        if me.as_deref().is_some_and(|me| owner != me) {
            hidden += 1;
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
        listed.push(json!({
            "pid": process.identity.pid,
            "startTime": process.identity.start_time,
            "user": owner,
            "gpu": process.gpu_uuid,
            "class": class,
            "container": container.map(|record| record.info.name.clone()),
            "name": process.name,
            "cmdline": process.cmdline,
            "memoryMiB": process.used_memory_bytes.map(|bytes| bytes >> 20),
        }));
    }
    Json(json!({ "processes": listed, "othersHidden": hidden }))
}

/// `GET /v1/containers/{name-or-id}`: everything known about one container.
pub async fn container(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    axum::extract::Path(wanted): axum::extract::Path<String>,
) -> Result<Json<Value>, super::routes::Failure> {
    use axum::http::StatusCode;
    let me = viewer(&state, &peer);
    let (view, id, user) = {
        let inventory = state
            .inventory
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let wanted_name = wanted.trim_start_matches('/');
        let matches: Vec<&ContainerRecord> = inventory
            .containers
            .values()
            .map(AsRef::as_ref)
            .filter(|record| {
                record.info.name == wanted_name
                    || record.info.id == wanted
                    || (wanted.len() >= 4 && record.info.id.starts_with(&wanted))
            })
            .collect();
        let record = match matches.as_slice() {
            [one] => *one,
            [] => {
                return Err(super::routes::Failure::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no container named or with id `{wanted}`"),
                ));
            }
            _ => {
                return Err(super::routes::Failure::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!(
                        "`{wanted}` matches {} containers; give more of the id",
                        matches.len()
                    ),
                ));
            }
        };
        if me.as_deref().is_some_and(|me| record.user != me) {
            return Err(super::routes::Failure::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "that container belongs to another user; only admins see others' containers in detail",
            ));
        }
        let mut view = container_view(record);
        let info = &record.info;
        view["labels"] = json!(info.labels);
        view["mounts"] = json!(info.mounts);
        view["gpuAccess"] = json!(info.gpu);
        view["pid"] = json!(info.pid);
        view["exitCode"] = json!(info.exit_code);
        view["lifecycle"] = state
            .lifecycle
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&info.id)
            .cloned()
            .unwrap_or(Value::Null);
        view["gpuProcesses"] = json!(inventory
            .gpu_processes
            .iter()
            .filter(|process| matches!(&process.placement, Placement::Container { id, .. } if *id == info.id))
            .map(|process| json!({ "pid": process.identity.pid, "gpu": process.gpu_uuid, "name": process.name, "memoryMiB": process.used_memory_bytes.map(|bytes| bytes >> 20) }))
            .collect::<Vec<_>>());
        (view, info.short_id().to_owned(), record.user.clone())
    };
    let mut view = view;
    view["events"] = json!(state
        .recorder
        .recent()
        .into_iter()
        .filter(|event| event.details["container_id"] == id.as_str() && event.user.as_deref() == Some(user.as_str()))
        .map(|event| json!({ "timestamp": event.timestamp, "type": event.event_type, "details": event.details }))
        .collect::<Vec<_>>());
    Ok(Json(view))
}
