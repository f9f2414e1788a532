//! Which container or host user each GPU process belongs to, from `/proc`: identity (pid and
//! start time), the containers on its cgroup path (or another engine's cgroup), owner and
//! command line — for every GPU and MIG-device process of an NVML snapshot.

use ds01_host::{
    cgroup::CgroupPlacement,
    gpu::{GpuProcess, GpuSnapshot},
    process::{ProcessIdentity, read_process},
};
use serde::Serialize;

/// Where a GPU process lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Placement {
    /// In a container's cgroup (whether that container is known, running or gone).
    Container {
        /// Full id of the outermost container on the cgroup path (the one Docker runs).
        id: String,
        /// Ids of containers nested inside it on the path (Docker-in-Docker), outermost first.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        nested: Vec<String>,
    },
    /// In the cgroup of another container engine (Kubernetes, Podman, rootless Docker, …).
    Foreign {
        /// The cgroup path.
        cgroup: String,
    },
    /// Outside any container.
    Host,
    /// Listed by NVML but gone from `/proc`.
    Ghost,
}

/// A GPU process with what `/proc` says about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttributedProcess {
    /// PID and start time (start time 0 for ghosts).
    pub identity: ProcessIdentity,
    /// GPU or MIG device UUID.
    pub gpu_uuid: String,
    /// Parent GPU UUID (same as `gpu_uuid` when not MIG).
    pub parent_gpu_uuid: String,
    /// GPU memory in bytes, when known.
    pub used_memory_bytes: Option<u64>,
    /// Where it lives.
    pub placement: Placement,
    /// Owner uid and name (none for ghosts).
    pub uid: Option<u32>,
    /// Owner name.
    pub user: Option<String>,
    /// Short name.
    pub name: String,
    /// Command line.
    pub cmdline: String,
    /// Zombie (exited, unreaped).
    pub zombie: bool,
}

/// Attributes every GPU and MIG-device process of a snapshot through `/proc`.
#[must_use]
pub fn attribute(snapshot: &GpuSnapshot, proc_root: &std::path::Path) -> Vec<AttributedProcess> {
    let mut attributed = Vec::new();
    for gpu in &snapshot.gpus {
        let listed = gpu
            .processes
            .iter()
            .map(|process| (gpu.uuid.clone(), process))
            .chain(gpu.mig_devices.iter().flat_map(|mig| {
                mig.processes
                    .iter()
                    .map(move |process| (mig.uuid.clone(), process))
            }));
        for (device_uuid, process) in listed {
            if attributed.iter().any(|known: &AttributedProcess| {
                known.identity.pid == process.pid && known.gpu_uuid == device_uuid
            }) {
                continue;
            }
            attributed.push(attribute_one(proc_root, &gpu.uuid, device_uuid, process));
        }
    }
    attributed
}

fn attribute_one(
    proc_root: &std::path::Path,
    parent: &str,
    device_uuid: String,
    process: &GpuProcess,
) -> AttributedProcess {
    let info = read_process(proc_root, process.pid).ok().flatten();
    let cgroup = ds01_host::cgroup::placement_of_pid(proc_root, process.pid).ok();
    let placement = match (&info, cgroup) {
        (None, _) | (_, None) => Placement::Ghost,
        (Some(_), Some(CgroupPlacement::Containers(mut ids))) => {
            let id = ids.remove(0);
            Placement::Container { id, nested: ids }
        }
        (Some(_), Some(CgroupPlacement::Foreign(cgroup))) => Placement::Foreign { cgroup },
        (Some(_), Some(CgroupPlacement::Host)) => Placement::Host,
    };
    AttributedProcess {
        identity: info.as_ref().map_or(
            ProcessIdentity {
                pid: process.pid,
                start_time: 0,
            },
            |info| info.identity,
        ),
        gpu_uuid: device_uuid,
        parent_gpu_uuid: parent.to_owned(),
        used_memory_bytes: process.used_memory_bytes,
        placement,
        uid: info.as_ref().map(|info| info.uid),
        user: info
            .as_ref()
            .map(|info| ds01_host::users::user_name(info.uid)),
        name: info
            .as_ref()
            .map(|info| info.name.clone())
            .unwrap_or_default(),
        cmdline: info
            .as_ref()
            .map(|info| info.cmdline.clone())
            .unwrap_or_default(),
        zombie: info
            .as_ref()
            .is_some_and(ds01_host::process::ProcessInfo::is_zombie),
    }
}
