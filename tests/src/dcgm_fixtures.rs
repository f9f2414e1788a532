//! Fixtures of the DcgmExporter tests: a fake exporter (busybox httpd serving a metrics file
//! that names the fake GPUs), its spec, and waits on its status and container.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Daemon, TestScope};

/// The first fake GPU.
pub const GPU0: &str = "GPU-33333333-0000-4000-8000-000000000000";
/// The second fake GPU.
pub const GPU1: &str = "GPU-33333333-0000-4000-8000-000000000001";
/// How long exporter tests wait for an effect.
pub const WAIT: Duration = Duration::from_secs(30);

/// A fake NVML state naming `gpus`.
#[must_use]
pub fn nvml(gpus: &[&str]) -> String {
    let mut state = String::from("gpus:\n");
    for uuid in gpus {
        state.push_str(&format!(
            "  - uuid: {uuid}\n    name: A100\n    memoryTotalMiB: 40960\n"
        ));
    }
    state
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

/// A DcgmExporter spec for a fake exporter in this test's scope.
pub struct Exporter {
    /// The spec file.
    pub spec_path: String,
    /// The directory httpd serves (holds `metrics`).
    pub www: tempfile::TempDir,
    /// The container name.
    pub container: String,
}

/// Writes the spec of an exporter running `command` (`{port}` replaced), plus `extra` lines.
#[must_use]
pub fn exporter(scope: &TestScope, extra: &str, command: &str) -> Exporter {
    let www = tempfile::tempdir().expect("www");
    std::fs::write(
        www.path().join("metrics"),
        format!("DCGM_FI_DEV_GPU_UTIL{{UUID=\"{GPU0}\"}} 0\n"),
    )
    .expect("metrics");
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(www.path())
        .status();
    let port = free_port();
    let container = scope.name("dcgm");
    let command = command.replace("{port}", &port.to_string());
    let spec = format!(
        "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {{name: dcgm}}\nspec:\n  containerName: {container}\n  image: ds01/testbox:latest\n  pullPolicy: Never\n  command: {command}\n  volumes: [\"{}:/www:ro\"]\n  port: {port}\n  gpus: none\n  capAdd: []\n  memoryLimit: 64MiB\n  cpuLimit: 0.5\n  labels: {{ds01.test: {}}}\n  stopTimeout: 2s\n  health: {{interval: 1s, timeout: 1s, failureThreshold: 2, startPeriod: 2s}}\n  restart: {{backoffInitial: 1s, backoffMax: 4s, resetAfter: 2s, maxRestarts: 3, window: 1m}}\n{extra}",
        www.path().display(),
        scope.id
    );
    let spec_path = www.path().join("dcgm.yaml");
    std::fs::write(&spec_path, spec).expect("spec");
    Exporter {
        spec_path: spec_path.display().to_string(),
        www,
        container,
    }
}

/// The fake exporter listens where dcgm-exporter does inside its container (9400); `port` is
/// the host port published onto it.
pub const HTTPD: &str = "[\"httpd\", \"-f\", \"-p\", \"9400\", \"-h\", \"/www\"]";

/// Waits for `Ready` and returns the exporter's status.
pub fn ready(daemon: &Daemon) -> Value {
    let (code, stdout, stderr) = daemon.ctl(&[
        "wait",
        "--for=condition=Ready",
        "dcgmexporter/dcgm",
        "--timeout",
        "30s",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}\n{}", daemon.output());
    status(daemon)
}

/// The exporter's status (`ds01ctl status -o json`).
#[must_use]
pub fn status(daemon: &Daemon) -> Value {
    let (_, stdout, _) = daemon.ctl(&["status", "-o", "json"]);
    let status: Value = serde_json::from_str(&stdout).expect("status json");
    status["resources"]
        .as_array()
        .and_then(|resources| resources.iter().find(|r| r["name"] == "dcgm").cloned())
        .unwrap_or(Value::Null)
}

/// Waits until the exporter's condition `kind` has `reason` (an event is written before the
/// reconcile that emitted it publishes its conditions, so one read right after it can be stale).
pub fn wait_for_condition(daemon: &Daemon, kind: &str, reason: &str) -> Value {
    let started = Instant::now();
    loop {
        let condition = status(daemon)["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == kind).cloned())
            .unwrap_or(Value::Null);
        if condition["reason"] == reason {
            return condition;
        }
        assert!(
            started.elapsed() < WAIT,
            "{kind} never had reason {reason}; last {condition}\n{}",
            daemon.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The container's id and whether it runs.
pub async fn container_id(scope: &TestScope, name: &str) -> Option<(String, bool)> {
    let inspected = scope.docker.inspect_container(name, None).await.ok()?;
    Some((
        inspected.id?,
        inspected
            .state
            .and_then(|state| state.running)
            .unwrap_or(false),
    ))
}

/// Waits until `name` runs as a container other than `not`; its id and the wait.
pub async fn wait_running_other_than(
    scope: &TestScope,
    name: &str,
    not: Option<&str>,
) -> (String, Duration) {
    let started = Instant::now();
    loop {
        if let Some((id, true)) = container_id(scope, name).await
            && not.is_none_or(|old| old != id)
        {
            return (id, started.elapsed());
        }
        assert!(started.elapsed() < WAIT, "{name} never ran again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
