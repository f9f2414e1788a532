//! An admin's bad day (helper "attack"): the NVIDIA driver stops answering (a wedged GPU makes
//! NVML calls hang). The fake NVML reads its state file on every call, so replacing that file
//! with a FIFO nobody writes makes the next poll hang exactly like a hung driver. DESIGN §6:
//! never act on a stale observation; D13: a hung driver "is reported as a condition". Each
//! test failed on the build it was written against (kept as regression tests).

use std::{
    process::Command,
    time::{Duration, Instant},
};

use ds01_tests::{
    ContainerRequest, Daemon, DaemonOptions, TestScope, private_engine::PrivateEngine,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const GPU: &str = "GPU-55555555-0000-4000-8000-000000000000";

fn nvml() -> String {
    format!(
        "gpus:\n  - uuid: {GPU}\n    name: A100\n    memoryTotalMiB: 40960\n    utilizationGpu: 0\n    processes: []\n"
    )
}

/// Makes the next NVML call hang: the state file becomes a FIFO without a writer.
fn hang_nvml(daemon: &Daemon) {
    let path = daemon.root().join("nvml.yaml");
    std::fs::remove_file(&path).expect("remove the NVML state");
    let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
    assert!(made.success());
}

fn no_engine(directory: &std::path::Path) -> String {
    format!("unix://{}", directory.join("no-docker.sock").display())
}

fn status(daemon: &Daemon) -> Value {
    let (code, stdout, stderr) = daemon.ctl(&["status", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("status JSON")
}

/// NVML has not answered for 10 s (50 poll intervals): `ds01ctl status` must say so — an
/// error on the GPU backend or a condition about it — rather than show the last poll's GPUs
/// as current with no error.
#[test]
fn a_hung_nvml_shows_in_status() {
    let directory = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(DaemonOptions {
        docker_host: Some(no_engine(directory.path())),
        nvml_state: Some(nvml()),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    hang_nvml(&daemon);
    std::thread::sleep(Duration::from_secs(10));
    let status = status(&daemon);
    let gpu = &status["controller"]["gpu"];
    let conditions = status["controller"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let reported = !gpu["lastError"].is_null()
        || conditions.iter().any(|condition| {
            let kind = condition["type"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            (kind.contains("gpu") || kind.contains("nvml")) && condition["status"] != "True"
        });
    assert!(
        reported,
        "NVML has hung for 10 s and status shows nothing: {status:#}"
    );
}

/// A hung NVML call must not hold the controller's shutdown: SIGTERM ends it within 15 s
/// (the unit's TimeoutStopSec is 40 s, after which systemd SIGKILLs it mid-write).
#[test]
fn a_hung_nvml_does_not_hold_shutdown() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut daemon = Daemon::start(DaemonOptions {
        docker_host: Some(no_engine(directory.path())),
        nvml_state: Some(nvml()),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    hang_nvml(&daemon);
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let exited = daemon.terminate(Duration::from_secs(15));
    assert!(
        exited.is_some(),
        "SIGTERM did not end the controller within 15 s while NVML hung (killed after {:?}); output:\n{}",
        started.elapsed(),
        daemon.output()
    );
}

/// A container holds GPU 0 (granted by `--gpus device=0` on the lab engine); its CPU and
/// network are idle and the last NVML poll said 0 %. Then NVML hangs — from then on nobody
/// knows how busy the GPU is. The GPU signal must turn unknown once the snapshot is older than
/// two poll intervals, so the idle limit (8 s) is never reached on the stale 0 %.
#[tokio::test]
async fn a_stale_gpu_snapshot_never_makes_a_container_idle() {
    let engine = PrivateEngine::start_lab("attack-nvml").await;
    let scope = TestScope::on(engine.docker(), "attack-nvml").await;
    let user = format!("stale{}", std::process::id());
    let daemon = Daemon::start(DaemonOptions {
        docker_host: Some(engine.host()),
        nvml_state: Some(nvml()),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    let policy = daemon.root().join("lifecycle.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: lab}}\nspec:\n  mode: enforce\n  sampleInterval: 1s\n  scope: gpu\n  defaults: {{idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {user}: {{idleTimeout: 8s, startupGrace: 0s, stopGracePeriod: 1s, onIdle: stop}}\n  notify: {{tty: false, containerFile: /workspace/.ds01-alerts}}\n"
        ),
    )
    .expect("policy");
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", &policy.display().to_string()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let id = scope
        .container(
            ContainerRequest::sleeper("gpu0")
                .label("ds01.user", &user)
                .gpus(0, &["0"]),
        )
        .await;
    // The controller has seen the container on GPU 0 at 0 %.
    daemon.wait_for_event(WAIT, "the container on GPU 0", |event| {
        event["details"]["container_id"] == id[..12]
            && event["details"]["gpu_devices"]
                .as_array()
                .is_some_and(|devices| devices.iter().any(|device| device == GPU))
    });
    hang_nvml(&daemon);
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(16) {
        let stop = daemon.events().into_iter().find(|event| {
            event["event_type"] == "lifecycle.idle_stop"
                && event["details"]["container_id"] == id[..12]
        });
        assert!(
            stop.is_none(),
            "stopped as idle on a GPU snapshot NVML stopped refreshing: {}",
            stop.unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
