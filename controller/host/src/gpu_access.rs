//! Which GPUs the NVIDIA container toolkit grants a container, and how — the rules the toolkit
//! itself applies, from Docker's record (stopped containers) or PID 1's environment (running).
//!
//! # The rules
//! - The NVIDIA hook runs for a container under the `nvidia` runtime, or with a GPU device
//!   request (`--gpus`: dockerd adds the hook itself). Without the hook nothing is granted,
//!   whatever the environment says (`--runtime runc` on a CUDA image).
//! - A GPU device request makes dockerd append `NVIDIA_VISIBLE_DEVICES` to the process
//!   environment: its device ids joined, `0,…,N-1` for a count N, `all` for -1. The last
//!   `NVIDIA_VISIBLE_DEVICES` wins, so `--gpus` overrides an image's `ENV`.
//! - The hook reads `NVIDIA_VISIBLE_DEVICES`: `all`; a list of indexes, UUIDs or `N:M` (MIG
//!   device M of GPU N); `none`, `void` or empty grant nothing. Unset grants nothing, except in
//!   a legacy CUDA image (`CUDA_VERSION` set, `NVIDIA_REQUIRE_CUDA` not), which gets `all`.
//! - A `/dev/nvidia<N>` device mapping grants GPU N under any runtime.
//! - `CUDA_VISIBLE_DEVICES` narrows what CUDA programs see; it is kept as written and applied
//!   where GPUs are resolved against NVML.
//! - `ds01.gpu.uuid`, `ds01.gpu.uuids` and `ds01.gpu_slot` labels are claims: kept, shown, never
//!   a grant.
//!
//! For a running container, PID 1's `/proc/<pid>/environ` is the environment the hook saw
//! (dockerd's addition included); see [`GpuAccess::with_environ`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Environment variables the attribution reads (and the only ones read from a process).
pub const GPU_ENV_KEYS: [&str; 4] = [
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_VERSION",
    "NVIDIA_REQUIRE_CUDA",
];

/// Labels that claim GPUs.
pub const GPU_CLAIM_LABELS: [&str; 3] = ["ds01.gpu.uuid", "ds01.gpu.uuids", "ds01.gpu_slot"];

/// How a GPU reached a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuVia {
    /// A GPU device request (`--gpus`), read from Docker's record.
    DeviceRequest,
    /// `NVIDIA_VISIBLE_DEVICES` in Docker's record of the environment, under the `nvidia` runtime.
    Env,
    /// `NVIDIA_VISIBLE_DEVICES` in the environment PID 1 received (what the hook saw).
    Environ,
    /// A `/dev/nvidia<N>` device mapping.
    Devices,
    /// A `ds01.gpu.*` label: a claim, never a grant.
    Label,
}

impl GpuVia {
    /// The word shown to users.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            GpuVia::DeviceRequest => "device_request",
            GpuVia::Env => "env",
            GpuVia::Environ => "environ",
            GpuVia::Devices => "devices",
            GpuVia::Label => "label",
        }
    }
}

/// A device the toolkit grants, as written: `all`, an index, a UUID or `N:M`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuGrant {
    /// The device as written.
    pub device: String,
    /// How it was granted.
    pub via: GpuVia,
}

/// A device a label claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuClaim {
    /// The device as written (UUID, index or `N.M` slot).
    pub device: String,
    /// The label that claims it.
    pub label: String,
}

/// A GPU device request as Docker records it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuRequest {
    /// `Count` (-1: all).
    pub count: i64,
    /// `DeviceIDs`.
    pub device_ids: Vec<String>,
}

impl GpuRequest {
    /// What dockerd appends as `NVIDIA_VISIBLE_DEVICES` for this request, if anything.
    #[must_use]
    pub fn appended_env(&self) -> Option<String> {
        if !self.device_ids.is_empty() {
            Some(
                self.device_ids
                    .iter()
                    .take(MAX_DEVICES)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
            )
        } else if self.count > 0 {
            Some(
                (0..self
                    .count
                    .min(i64::try_from(MAX_DEVICES).unwrap_or(i64::MAX)))
                    .map(|index| index.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        } else if self.count < 0 {
            Some("all".to_owned())
        } else {
            None
        }
    }
}

/// Where the environment that decided the grant was read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvSource {
    /// Docker's record (`Config.Env` plus what dockerd appends for `--gpus`).
    #[default]
    Inspect,
    /// PID 1's `/proc/<pid>/environ`.
    Environ,
}

/// How a container reaches GPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuAccess {
    /// The toolkit grants at least one device.
    pub has_gpu: bool,
    /// Devices granted, as written, each with how.
    pub granted: Vec<GpuGrant>,
    /// `CUDA_VISIBLE_DEVICES` as written, when set: narrows what CUDA programs see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_visible: Option<Vec<String>>,
    /// Devices claimed by labels: shown, never granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<GpuClaim>,
    /// `HostConfig.Runtime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Whether the NVIDIA hook runs for it (the `nvidia` runtime, or a GPU device request).
    pub hook: bool,
    /// What dockerd appends as `NVIDIA_VISIBLE_DEVICES` for its GPU device request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// GPU indexes mapped as `/dev/nvidia<N>` devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<u32>,
    /// Where the deciding environment was read.
    pub env_source: EnvSource,
}

/// What Docker recorded about a container that bears on its GPUs.
#[derive(Clone, Debug)]
pub struct GpuRecord<'a> {
    /// `HostConfig.Runtime`.
    pub runtime: Option<&'a str>,
    /// GPU device requests, in order.
    pub requests: Vec<GpuRequest>,
    /// `Config.Env`.
    pub env: &'a [String],
    /// `HostConfig.Devices[].PathOnHost`.
    pub device_paths: Vec<&'a str>,
    /// Labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// The last value of `key` in `KEY=value` entries (the hook and runc both let the last win).
fn last_value<'a>(env: impl IntoIterator<Item = &'a str>, key: &str) -> Option<&'a str> {
    env.into_iter()
        .filter_map(|entry| entry.split_once('='))
        .filter(|(name, _)| *name == key)
        .map(|(_, value)| value)
        .last()
}

/// The most devices read from one list (a label, an environment value, a device request):
/// no server has more, and a user's label must not cost the controller more than this.
pub const MAX_DEVICES: usize = 64;
/// The longest device name read (a MIG UUID is 40 bytes).
const MAX_DEVICE_BYTES: usize = 128;

/// Splits a device list: `a, b,,c` → `[a, b, c]`, at most [`MAX_DEVICES`] distinct entries of
/// at most 128 bytes each (the rest is not read: whoever wrote the list controls its size).
fn split_list(value: &str) -> Vec<String> {
    let mut devices: Vec<String> = Vec::new();
    for part in value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty() && part.len() <= MAX_DEVICE_BYTES)
    {
        if devices.len() == MAX_DEVICES {
            break;
        }
        if !devices.iter().any(|known| known == part) {
            devices.push(part.to_owned());
        }
    }
    devices
}

/// The devices an `NVIDIA_VISIBLE_DEVICES` value grants, per the hook's rules.
fn parse_visible(value: &str) -> Vec<String> {
    match value.trim() {
        "" | "none" | "void" => Vec::new(),
        value if value.split(',').any(|part| part.trim() == "all") => vec!["all".to_owned()],
        value => split_list(value),
    }
}

/// The devices an environment grants: its `NVIDIA_VISIBLE_DEVICES`, or `all` for a legacy
/// CUDA image that does not set it.
fn visible_devices<'a>(env: impl IntoIterator<Item = &'a str> + Clone) -> Vec<String> {
    match last_value(env.clone(), "NVIDIA_VISIBLE_DEVICES") {
        Some(value) => parse_visible(value),
        None => {
            let legacy_cuda = last_value(env.clone(), "CUDA_VERSION").is_some()
                && last_value(env, "NVIDIA_REQUIRE_CUDA").is_none();
            if legacy_cuda {
                vec!["all".to_owned()]
            } else {
                Vec::new()
            }
        }
    }
}

impl GpuAccess {
    /// The access Docker's record implies (the rules for a stopped container).
    #[must_use]
    pub fn from_record(record: &GpuRecord<'_>) -> Self {
        let requested = record
            .requests
            .iter()
            .rev()
            .find_map(GpuRequest::appended_env);
        let hook = !record.requests.is_empty() || record.runtime == Some("nvidia");
        let device_nodes = record
            .device_paths
            .iter()
            .filter_map(|path| path.strip_prefix("/dev/nvidia"))
            .filter(|rest| !rest.is_empty() && rest.bytes().all(|byte| byte.is_ascii_digit()))
            .filter_map(|index| index.parse().ok())
            .take(MAX_DEVICES)
            .collect();
        let claims = GPU_CLAIM_LABELS
            .iter()
            .filter_map(|key| record.labels.get(*key).map(|value| (*key, value)))
            .flat_map(|(key, value)| {
                split_list(value).into_iter().map(move |device| GpuClaim {
                    device,
                    label: key.to_owned(),
                })
            })
            .take(MAX_DEVICES)
            .collect();
        let mut access = GpuAccess {
            runtime: record.runtime.map(str::to_owned),
            hook,
            requested,
            device_nodes,
            claims,
            ..GpuAccess::default()
        };
        let env = record.env.iter().map(String::as_str);
        if let Some(value) = &access.requested {
            // dockerd's appended value comes last, so it wins over the image's.
            let devices = parse_visible(value);
            access.set_granted(devices, GpuVia::DeviceRequest);
        } else if hook {
            access.set_granted(visible_devices(env.clone()), GpuVia::Env);
        } else {
            access.set_granted(Vec::new(), GpuVia::Env);
        }
        access.cuda_visible = last_value(env, "CUDA_VISIBLE_DEVICES").map(split_list);
        access
    }

    /// The access PID 1's environment shows (`KEY=value` entries, in order): the ground truth
    /// for a running container. Device requests, runtime, device nodes and claims stay.
    #[must_use]
    pub fn with_environ(&self, environ: &[String]) -> Self {
        let mut access = GpuAccess {
            env_source: EnvSource::Environ,
            ..self.clone()
        };
        let env = environ.iter().map(String::as_str);
        if access.hook {
            access.set_granted(visible_devices(env.clone()), GpuVia::Environ);
        } else {
            access.set_granted(Vec::new(), GpuVia::Environ);
        }
        access.cuda_visible = last_value(env, "CUDA_VISIBLE_DEVICES").map(split_list);
        access
    }

    /// Sets the granted devices from the environment's list plus the device nodes.
    fn set_granted(&mut self, devices: Vec<String>, via: GpuVia) {
        let mut granted: Vec<GpuGrant> = devices
            .into_iter()
            .map(|device| GpuGrant { device, via })
            .collect();
        for index in &self.device_nodes {
            let device = index.to_string();
            if !granted.iter().any(|grant| grant.device == device) {
                granted.push(GpuGrant {
                    device,
                    via: GpuVia::Devices,
                });
            }
        }
        self.has_gpu = !granted.is_empty();
        self.granted = granted;
    }
}

#[cfg(test)]
#[path = "gpu_access_tests.rs"]
mod tests;
