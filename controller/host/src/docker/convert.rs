//! bollard's inspect response to [`ContainerInfo`], including how the container reaches GPUs.

use std::collections::BTreeMap;

use bollard::models::ContainerInspectResponse;

use crate::{ContainerInfo, ContainerState, GpuAccess, Mount};

/// Docker's "never" timestamp.
const ZERO_TIME_PREFIX: &str = "0001-01-01";

fn timestamp(text: Option<&String>) -> Option<jiff::Timestamp> {
    let text = text?;
    if text.is_empty() || text.starts_with(ZERO_TIME_PREFIX) {
        return None;
    }
    text.parse().ok()
}

/// Converts an inspect response; `None` without an id.
#[must_use]
pub fn container_info(response: ContainerInspectResponse) -> Option<ContainerInfo> {
    let id = response.id?;
    let config = response.config.unwrap_or_default();
    let host_config = response.host_config.unwrap_or_default();
    let state = response.state.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    // Read for NVIDIA_VISIBLE_DEVICES only; never kept (it may hold other people's secrets).
    let env = config.env.unwrap_or_default();
    let mounts = response
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(|mount| Mount {
            source: mount.source.unwrap_or_default(),
            destination: mount.destination.unwrap_or_default(),
            kind: mount.typ.map(|kind| kind.to_string()).unwrap_or_default(),
        })
        .collect();
    let mut gpu = GpuAccess::default();
    for request in host_config.device_requests.unwrap_or_default() {
        let wants_gpu = request.driver.as_deref() == Some("nvidia")
            || request
                .capabilities
                .iter()
                .flatten()
                .flatten()
                .any(|capability| capability == "gpu");
        if !wants_gpu {
            continue;
        }
        note(&mut gpu, "device_request");
        if request.count == Some(-1) {
            gpu.all = true;
        }
        gpu.devices.extend(request.device_ids.unwrap_or_default());
        if request.count.unwrap_or(0) > 0 && gpu.devices.is_empty() {
            gpu.all = true; // `--gpus 2`: the runtime picks; treat as any GPU
        }
    }
    if host_config.runtime.as_deref() == Some("nvidia") {
        note(&mut gpu, "runtime");
    }
    let nvidia_devices = host_config
        .devices
        .unwrap_or_default()
        .into_iter()
        .filter_map(|device| device.path_on_host)
        .filter(|path| path.starts_with("/dev/nvidia"));
    for path in nvidia_devices {
        note(&mut gpu, "devices");
        if let Some(index) = path
            .strip_prefix("/dev/nvidia")
            .filter(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        {
            gpu.devices.push(index.to_owned());
        }
    }
    for key in ["ds01.gpu.uuid", "ds01.gpu.uuids", "ds01.gpu_slot"] {
        if let Some(value) = labels.get(key).filter(|value| !value.is_empty()) {
            note(&mut gpu, "label");
            gpu.devices.extend(
                value
                    .split(',')
                    .map(|part| part.trim().to_owned())
                    .filter(|part| !part.is_empty()),
            );
        }
    }
    if let Some(visible) = env
        .iter()
        .find_map(|entry| entry.strip_prefix("NVIDIA_VISIBLE_DEVICES="))
    {
        match visible {
            "" | "none" | "void" => {}
            "all" => {
                note(&mut gpu, "env");
                gpu.all = true;
            }
            list => {
                note(&mut gpu, "env");
                gpu.devices.extend(list.split(',').map(str::to_owned));
            }
        }
    }
    gpu.devices.sort();
    gpu.devices.dedup();
    let status = state
        .status
        .map(|status| status.to_string())
        .unwrap_or_default();
    Some(ContainerInfo {
        name: response
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image: config.image.unwrap_or_default(),
        labels,
        state: ContainerState::parse(&status),
        pid: state
            .pid
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0),
        created_at: timestamp(response.created.as_ref()),
        started_at: timestamp(state.started_at.as_ref()),
        finished_at: timestamp(state.finished_at.as_ref()),
        exit_code: state.exit_code,
        user: config.user.filter(|user| !user.is_empty()),
        mounts,
        gpu,
        cgroup_parent: host_config
            .cgroup_parent
            .filter(|parent| !parent.is_empty()),
        id,
    })
}

fn note(gpu: &mut GpuAccess, via: &str) {
    gpu.has_gpu = true;
    if !gpu.via.iter().any(|existing| existing == via) {
        gpu.via.push(via.to_owned());
    }
}
