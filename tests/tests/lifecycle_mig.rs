//! Idle enforcement on MIG: a container's GPU signal is its GPU instance's
//! `DCGM_FI_PROF_GR_ENGINE_ACTIVE`, scraped from the DCGM exporter the controller runs, matched
//! through the GPU instance id NVML gives each MIG device. Missing data is unknown, never idle.
//! The containers get their MIG devices as the toolkit grants them (`--gpus device=0:M`), on
//! the lab-shaped engine; the controller runs in its network namespace to reach the exporter.

use std::time::Duration;

use ds01_tests::{
    ContainerRequest, Daemon, DaemonOptions, TestScope, private_engine::PrivateEngine,
};

const WAIT: Duration = Duration::from_secs(30);
const PARENT: &str = "GPU-66666666-0000-4000-8000-000000000000";
const MIG_BUSY: &str = "MIG-66666666-0000-4000-8000-0000000000a7";
const MIG_IDLE: &str = "MIG-66666666-0000-4000-8000-0000000000a2";
const MIG_UNREPORTED: &str = "MIG-66666666-0000-4000-8000-0000000000a5";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

fn apply(daemon: &Daemon, path: &std::path::Path) {
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", &path.display().to_string()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[tokio::test]
async fn mig_instances_are_judged_by_their_dcgm_engine_activity() {
    let engine = PrivateEngine::start_lab("life-mig").await;
    let scope = TestScope::on(engine.docker(), "life-mig").await;
    let user = format!("mig{}", std::process::id());
    let nvml = format!(
        "gpus:\n  - uuid: {PARENT}\n    name: A100\n    migMode: true\n    migDevices:\n      - {{uuid: {MIG_BUSY}, gpuInstanceId: 7, memoryTotalMiB: 4864}}\n      - {{uuid: {MIG_IDLE}, gpuInstanceId: 2, memoryTotalMiB: 4864}}\n      - {{uuid: {MIG_UNREPORTED}, gpuInstanceId: 5, memoryTotalMiB: 4864}}\n"
    );
    let daemon = Daemon::start(DaemonOptions {
        docker_host: Some(engine.host()),
        nvml_state: Some(nvml),
        wrapper: engine.enter_network(),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);

    // The "exporter": a web server in the test image serving what dcgm-exporter serves on MIG.
    let www = tempfile::tempdir().expect("www");
    std::fs::write(
        www.path().join("metrics"),
        format!(
            "# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge\n\
             DCGM_FI_PROF_GR_ENGINE_ACTIVE{{gpu=\"0\",UUID=\"{PARENT}\",device=\"nvidia0\",GPU_I_PROFILE=\"1g.5gb\",GPU_I_ID=\"7\"}} 0.870000\n\
             DCGM_FI_PROF_GR_ENGINE_ACTIVE{{gpu=\"0\",UUID=\"{PARENT}\",device=\"nvidia0\",GPU_I_PROFILE=\"1g.5gb\",GPU_I_ID=\"2\"}} 0.000000\n"
        ),
    )
    .expect("metrics");
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(www.path())
        .status();
    let port = free_port();
    let specs = www.path().join("specs.yaml");
    std::fs::write(
        &specs,
        format!(
            "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {{name: dcgm}}\nspec:\n  containerName: {exporter}\n  image: ds01/testbox:latest\n  pullPolicy: Never\n  command: [\"httpd\", \"-f\", \"-p\", \"9400\", \"-h\", \"/www\"]\n  volumes: [\"{www}:/www:ro\"]\n  port: {port}\n  gpus: none\n  capAdd: []\n  labels: {{ds01.test: {test}}}\n  stopTimeout: 1s\n  health: {{interval: 1s, timeout: 1s, startPeriod: 2s}}\n---\napiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: lab}}\nspec:\n  sampleInterval: 1s\n  scope: gpu\n  defaults: {{idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {user}: {{startupGrace: 0s, stopGracePeriod: 1s, idleTimeout: 3s, onIdle: stop}}\n  notify: {{tty: false}}\n",
            exporter = scope.name("dcgm"),
            www = www.path().display(),
            test = scope.id,
        ),
    )
    .expect("specs");
    apply(&daemon, &specs);
    let (code, stdout, stderr) = daemon.ctl(&[
        "wait",
        "--for=condition=Ready",
        "dcgmexporter/dcgm",
        "--timeout",
        "30s",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // MIG device M of GPU 0, in NVML's MIG device order: busy, idle, unreported.
    let on_mig = |name: &str, device: &str| {
        ContainerRequest::sleeper(name)
            .label("ds01.user", &user)
            .gpus(0, &[device])
    };
    let busy = scope.container(on_mig("mig-busy", "0:0")).await;
    let idle = scope.container(on_mig("mig-idle", "0:1")).await;
    let unreported = scope.container(on_mig("mig-unreported", "0:2")).await;

    let stop = daemon.wait_for_event(WAIT, "the idle MIG container's stop", |event| {
        event["event_type"] == "lifecycle.idle_stop"
            && event["details"]["container_id"] == idle[..12]
    });
    assert_eq!(stop["details"]["signals"]["gpu"], 0.0, "{stop}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (id, what) in [(&busy, "busy MIG"), (&unreported, "unreported MIG")] {
        assert_eq!(
            scope.running(id).await,
            Some(true),
            "the {what} container was stopped"
        );
    }
    // describe shows the busy instance's activity as its GPU signal.
    let (_, described, _) = daemon.ctl(&["describe", "container", &busy[..12], "-o", "json"]);
    assert!(described.contains("87"), "{described}");
}
