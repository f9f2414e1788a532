//! Orphan-test fixtures: fake-NVML GPU entries listing given pids, a GpuOrphanPolicy whose reset
//! command only writes a log line, and a controller started with them.

use std::time::Duration;

use crate::{Daemon, DaemonOptions};

/// How long orphan tests wait for an effect.
pub const WAIT: Duration = Duration::from_secs(20);

/// One GPU of the fake NVML state file, with `pids` as its compute processes (on its one MIG
/// device when `mig`).
#[must_use]
pub fn gpu(uuid: &str, mig: bool, pids: &[u32]) -> String {
    gpu_with(uuid, mig, pids, "")
}

/// As [`gpu`], with more YAML for the GPU (e.g. `errors: {migMode: 999}`), indented by four.
#[must_use]
pub fn gpu_with(uuid: &str, mig: bool, pids: &[u32], extra: &str) -> String {
    let processes: Vec<String> = pids
        .iter()
        .map(|pid| format!("{{pid: {pid}, usedMemoryMiB: 100}}"))
        .collect();
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("    {extra}\n")
    };
    if mig {
        format!(
            "  - uuid: {uuid}\n    name: A100\n    migMode: true\n{extra}    migDevices:\n      - {{uuid: MIG-{uuid}, gpuInstanceId: 1, computeInstanceId: 0, memoryTotalMiB: 9856, processes: [{}]}}\n",
            processes.join(", ")
        )
    } else {
        format!(
            "  - uuid: {uuid}\n    name: A100\n{extra}    processes: [{}]\n",
            processes.join(", ")
        )
    }
}

/// Writes `orphans.yaml` in `directory`: a GpuOrphanPolicy named `orphans` with a 1 s grace
/// period and killAfter, whose reset command appends `<uuid> <index>` to `resets.log` there,
/// plus `body` (spec lines indented by two). Returns its path.
#[must_use]
pub fn policy(directory: &std::path::Path, body: &str) -> String {
    let resets = directory.join("resets.log");
    let path = directory.join("orphans.yaml");
    let text = format!(
        "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata: {{name: orphans}}\nspec:\n  gracePeriod: 1s\n  terminate: {{killAfter: 1s}}\n  reset:\n    command: [sh, -c, \"echo {{uuid}} {{index}} >> {}\"]\n    timeout: 10s\n{body}",
        resets.display()
    );
    std::fs::write(&path, text).expect("policy");
    path.display().to_string()
}

/// `ds01ctl apply -f path`, which must succeed.
pub fn apply(daemon: &Daemon, path: &str) {
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", path]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// A controller with this fake NVML state, once it has polled the GPUs and listed Docker.
#[must_use]
pub fn started(nvml: String) -> Daemon {
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    daemon.wait_for_inventory(WAIT, "a GPU poll and a relist", |inventory| {
        inventory["gpu_backend"]["lastPoll"].is_string() && inventory["docker"]["connected"] == true
    });
    daemon
}
