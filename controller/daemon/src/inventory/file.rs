//! `workload-inventory.json`: the incumbent's layout (`last_scan`, `containers{id12: …}`,
//! `host_processes{pid: …}`) plus our fields, written atomically.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::Inventory;

fn time(value: Option<jiff::Timestamp>) -> Value {
    value.map_or(Value::Null, |at| json!(format!("{at:.3}")))
}

/// The inventory as the file holds it.
#[must_use]
pub fn to_json(inventory: &Inventory) -> Value {
    let mut containers = Map::new();
    for record in inventory.containers.values() {
        let info = &record.info;
        containers.insert(
            info.short_id().to_owned(),
            json!({
                "id": info.short_id(),
                "name": info.name,
                "origin": record.origin,
                "user": record.user,
                "has_gpu": info.gpu.has_gpu,
                "gpu_devices": record.gpu_uuids,
                "status": info.state.as_str(),
                "image": info.image,
                "detected_at": time(Some(record.detected_at)),
                "full_id": info.id,
                "owner_source": record.owner_source,
                "gpu_access": { "all": info.gpu.all, "requested": info.gpu.devices, "via": info.gpu.via },
                "labels": info.labels,
                "created_at": time(info.created_at),
                "started_at": time(info.started_at),
                "finished_at": time(info.finished_at),
                "exit_code": info.exit_code,
                "pid": info.pid,
            }),
        );
    }
    let mut host_processes = Map::new();
    for process in inventory.host_processes.values() {
        host_processes.insert(
            process.pid.to_string(),
            json!({
                "pid": process.pid,
                "user": process.user,
                "cmdline": process.cmdline,
                "gpu_memory_mb": process.gpu_memory_mb,
                "gpu_uuid": process.gpu_uuid,
                "detected_at": time(Some(process.detected_at)),
                "uid": process.uid,
                "name": process.name,
                "start_time": process.start_time,
            }),
        );
    }
    let gpu_processes: Vec<Value> = inventory
        .gpu_processes
        .iter()
        .map(|process| {
            let container = match &process.placement {
                super::gpu_watch::Placement::Container { id } => {
                    Value::String(id.get(..12).unwrap_or(id).to_owned())
                }
                _ => Value::Null,
            };
            json!({
                "pid": process.identity.pid,
                "start_time": process.identity.start_time,
                "gpu_uuid": process.gpu_uuid,
                "parent_gpu_uuid": process.parent_gpu_uuid,
                "placement": process.placement,
                "container": container,
                "user": process.user,
                "name": process.name,
                "cmdline": process.cmdline,
                "zombie": process.zombie,
                "gpu_memory_mb": process.used_memory_bytes.map(|bytes| bytes >> 20),
            })
        })
        .collect();
    json!({
        "last_scan": time(inventory.last_scan),
        "gpu_processes": gpu_processes,
        "schema_version": "1",
        "containers": containers,
        "host_processes": host_processes,
        "gpus": inventory.gpus.gpus,
        "gpu_driver_version": inventory.gpus.driver_version,
        "docker": inventory.docker,
        "gpu_backend": inventory.gpu,
    })
}

/// Writes the inventory atomically.
///
/// # Errors
/// When the file cannot be written.
pub fn write(path: &Path, inventory: &Inventory) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(&to_json(inventory)).map_err(std::io::Error::other)?;
    text.push(b'\n');
    ds01_host::atomic_file::write_atomic(path, &text)
}

/// The containers a previous run wrote, as a baseline (empty when there is no usable file).
#[must_use]
pub fn load_baseline(
    path: &Path,
) -> std::collections::BTreeMap<String, super::store::BaselineEntry> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return std::collections::BTreeMap::new();
    };
    let Ok(value) = serde_json::from_str::<Value>(&text) else {
        tracing::warn!(path = %path.display(), "ignoring an unreadable inventory file");
        return std::collections::BTreeMap::new();
    };
    let Some(containers) = value.get("containers").and_then(Value::as_object) else {
        return std::collections::BTreeMap::new();
    };
    containers
        .values()
        .filter_map(|entry| {
            let field = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_owned);
            Some((
                field("full_id")?,
                super::store::BaselineEntry {
                    state: field("status")?,
                    detected_at: field("detected_at")?.parse().ok()?,
                    user: field("user").unwrap_or_default(),
                    name: field("name").unwrap_or_default(),
                },
            ))
        })
        .collect()
}
