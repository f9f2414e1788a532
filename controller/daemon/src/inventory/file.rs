//! `workload-inventory.json`: the incumbent's layout (`last_scan`, `containers{id12: …}`,
//! `host_processes{pid: …}`) plus our fields, written atomically.

use std::path::Path;

use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::Value;

use super::{Inventory, attribution::Placement};

/// A time as the file writes it: RFC 3339 UTC with milliseconds, or `null`.
struct Millis(Option<jiff::Timestamp>);

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(at) => serializer.collect_str(&format_args!("{at:.3}")),
            None => serializer.serialize_none(),
        }
    }
}

/// One container, keyed by its 12-character id (the incumbent's fields first).
#[derive(Serialize)]
struct ContainerEntry<'a> {
    id: &'a str,
    name: &'a str,
    origin: &'a str,
    user: &'a str,
    has_gpu: bool,
    gpu_devices: &'a [String],
    status: &'a str,
    image: &'a str,
    detected_at: Millis,
    full_id: &'a str,
    owner_source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_conflict: Option<&'a super::classify::OwnerConflict>,
    gpu_access: &'a ds01_host::GpuAccess,
    gpu_grants: &'a [super::gpu_resolve::HeldGpu],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    gpu_claims: &'a [super::gpu_resolve::ClaimedGpu],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    gpu_unresolved: &'a [String],
    labels: &'a std::collections::BTreeMap<String, String>,
    created_at: Millis,
    started_at: Millis,
    finished_at: Millis,
    exit_code: Option<i64>,
    pid: Option<u32>,
}

/// One host GPU process, keyed by pid.
#[derive(Serialize)]
struct HostProcessEntry<'a> {
    pid: u32,
    user: &'a str,
    cmdline: &'a str,
    gpu_memory_mb: Option<u64>,
    gpu_uuid: &'a str,
    detected_at: Millis,
    uid: u32,
    name: &'a str,
    start_time: u64,
}

/// One attributed GPU process of the latest snapshot.
#[derive(Serialize)]
struct GpuProcessEntry<'a> {
    pid: u32,
    start_time: u64,
    gpu_uuid: &'a str,
    parent_gpu_uuid: &'a str,
    placement: &'a Placement,
    container: Option<&'a str>,
    user: Option<&'a str>,
    name: &'a str,
    cmdline: &'a str,
    zombie: bool,
    gpu_memory_mb: Option<u64>,
}

struct Containers<'a>(&'a Inventory);

impl Serialize for Containers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.containers.len()))?;
        for record in self.0.containers.values() {
            let info = &record.info;
            map.serialize_entry(
                info.short_id(),
                &ContainerEntry {
                    id: info.short_id(),
                    name: &info.name,
                    origin: &record.origin,
                    user: &record.user,
                    has_gpu: info.gpu.has_gpu,
                    gpu_devices: &record.gpu_uuids,
                    status: info.state.as_str(),
                    image: &info.image,
                    detected_at: Millis(Some(record.detected_at)),
                    full_id: &info.id,
                    owner_source: record.owner_source,
                    owner_conflict: record.owner_conflict.as_ref(),
                    gpu_access: &info.gpu,
                    gpu_grants: &record.gpus.granted,
                    gpu_claims: &record.gpus.claims,
                    gpu_unresolved: &record.gpus.unresolved,
                    labels: &info.labels,
                    created_at: Millis(info.created_at),
                    started_at: Millis(info.started_at),
                    finished_at: Millis(info.finished_at),
                    exit_code: info.exit_code,
                    pid: info.pid,
                },
            )?;
        }
        map.end()
    }
}

struct HostProcesses<'a>(&'a Inventory);

impl Serialize for HostProcesses<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.host_processes.len()))?;
        for process in self.0.host_processes.values() {
            map.serialize_entry(
                &process.pid.to_string(),
                &HostProcessEntry {
                    pid: process.pid,
                    user: &process.user,
                    cmdline: &process.cmdline,
                    gpu_memory_mb: process.gpu_memory_mb,
                    gpu_uuid: &process.gpu_uuid,
                    detected_at: Millis(Some(process.detected_at)),
                    uid: process.uid,
                    name: &process.name,
                    start_time: process.start_time,
                },
            )?;
        }
        map.end()
    }
}

fn gpu_process(process: &super::attribution::AttributedProcess) -> GpuProcessEntry<'_> {
    let container = match &process.placement {
        Placement::Container { id, .. } => Some(id.get(..12).unwrap_or(id)),
        _ => None,
    };
    GpuProcessEntry {
        pid: process.identity.pid,
        start_time: process.identity.start_time,
        gpu_uuid: &process.gpu_uuid,
        parent_gpu_uuid: &process.parent_gpu_uuid,
        placement: &process.placement,
        container,
        user: process.user.as_deref(),
        name: &process.name,
        cmdline: &process.cmdline,
        zombie: process.zombie,
        gpu_memory_mb: process.used_memory_bytes.map(|bytes| bytes >> 20),
    }
}

/// The whole file, borrowed from the inventory: serializing it copies nothing but the bytes.
#[derive(Serialize)]
struct InventoryFile<'a> {
    last_scan: Millis,
    gpu_processes: Vec<GpuProcessEntry<'a>>,
    schema_version: &'static str,
    containers: Containers<'a>,
    host_processes: HostProcesses<'a>,
    gpus: &'a [ds01_host::gpu::GpuDevice],
    gpu_driver_version: Option<&'a str>,
    docker: &'a super::store::DockerHealth,
    gpu_backend: &'a super::store::GpuHealth,
}

/// The inventory as the file holds it, pretty-printed, with a final newline.
///
/// # Errors
/// Never in practice (every field serializes); reported rather than unwrapped.
pub fn to_bytes(inventory: &Inventory) -> serde_json::Result<Vec<u8>> {
    let file = InventoryFile {
        last_scan: Millis(inventory.last_scan),
        gpu_processes: inventory.gpu_processes.iter().map(gpu_process).collect(),
        schema_version: "1",
        containers: Containers(inventory),
        host_processes: HostProcesses(inventory),
        gpus: &inventory.gpus.gpus,
        gpu_driver_version: inventory.gpus.driver_version.as_deref(),
        docker: &inventory.docker,
        gpu_backend: &inventory.gpu,
    };
    let mut bytes = serde_json::to_vec_pretty(&file)?;
    bytes.push(b'\n');
    Ok(bytes)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ds01_host::{ContainerInfo, ContainerState, GpuAccess};

    use super::*;
    use crate::inventory::{classify::Owner, store::HostProcessRecord};

    #[test]
    fn the_file_keeps_the_incumbents_layout_with_millisecond_times() {
        let at: jiff::Timestamp = "2026-11-22T10:00:00.123456Z".parse().expect("time");
        let mut inventory = Inventory::default();
        let info = ContainerInfo {
            id: "0123456789ab".repeat(5) + "cdef",
            name: "train".to_owned(),
            image: "pytorch".to_owned(),
            labels: BTreeMap::from([("ds01.user".to_owned(), "alice".to_owned())]),
            state: ContainerState::Running,
            pid: Some(42),
            created_at: Some(at),
            started_at: None,
            finished_at: None,
            exit_code: None,
            user: None,
            mounts: Vec::new(),
            gpu: GpuAccess {
                has_gpu: true,
                granted: vec![ds01_host::gpu_access::GpuGrant {
                    device: "0".to_owned(),
                    via: ds01_host::GpuVia::DeviceRequest,
                }],
                hook: true,
                requested: Some("0".to_owned()),
                ..GpuAccess::default()
            },
            cgroup_parent: None,
        };
        let owner = Owner {
            user: "alice".to_owned(),
            source: "label:ds01.user",
            conflict: None,
            verified: false,
        };
        inventory.upsert_container(info, owner, "docker".to_owned(), at);
        inventory.host_processes.insert(
            7,
            HostProcessRecord {
                pid: 7,
                start_time: 99,
                user: "bob".to_owned(),
                uid: 1001,
                name: "python".to_owned(),
                cmdline: "python train.py".to_owned(),
                gpu_uuid: "GPU-1".to_owned(),
                gpu_memory_mb: Some(512),
                detected_at: at,
            },
        );
        inventory.last_scan = Some(at);
        let bytes = to_bytes(&inventory).expect("serializes");
        assert_eq!(bytes.last(), Some(&b'\n'));
        let file: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(file["last_scan"], "2026-11-22T10:00:00.123Z");
        let container = &file["containers"]["0123456789ab"];
        assert_eq!(container["id"], "0123456789ab");
        assert_eq!(container["full_id"].as_str().map(str::len), Some(64));
        assert_eq!(container["user"], "alice");
        assert_eq!(container["owner_source"], "label:ds01.user");
        assert_eq!(container["status"], "running");
        assert_eq!(container["has_gpu"], true);
        assert_eq!(container["gpu_access"]["requested"], "0");
        assert_eq!(
            container["gpu_access"]["granted"][0]["via"],
            "device_request"
        );
        assert_eq!(container["detected_at"], "2026-11-22T10:00:00.123Z");
        assert_eq!(container["started_at"], Value::Null);
        assert_eq!(container["labels"]["ds01.user"], "alice");
        let process = &file["host_processes"]["7"];
        assert_eq!(process["user"], "bob");
        assert_eq!(process["gpu_memory_mb"], 512);
        assert_eq!(file["schema_version"], "1");
        assert!(file["gpu_processes"].as_array().is_some_and(Vec::is_empty));
    }
}
