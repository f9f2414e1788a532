//! bollard's inspect response to [`ContainerInfo`], including how the container reaches GPUs.

use std::collections::BTreeMap;

use bollard::models::ContainerInspectResponse;

use crate::{
    ContainerInfo, ContainerState, GpuAccess, Mount,
    gpu_access::{GpuRecord, GpuRequest},
};

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
    // Read for the GPU variables only; never kept (it may hold other people's secrets).
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
    let requests = host_config
        .device_requests
        .unwrap_or_default()
        .into_iter()
        .filter(|request| {
            request.driver.as_deref() == Some("nvidia")
                || request
                    .capabilities
                    .iter()
                    .flatten()
                    .flatten()
                    .any(|capability| capability == "gpu")
        })
        .map(|request| GpuRequest {
            count: request.count.unwrap_or(0),
            device_ids: request.device_ids.unwrap_or_default(),
        })
        .collect();
    let devices = host_config.devices.unwrap_or_default();
    let gpu = GpuAccess::from_record(&GpuRecord {
        runtime: host_config.runtime.as_deref(),
        requests,
        env: &env,
        device_paths: devices
            .iter()
            .filter_map(|device| device.path_on_host.as_deref())
            .collect(),
        labels: &labels,
    });
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
