//! The workload inventory against a real engine and the fake NVML library: origin, owner and
//! GPU access of containers, GPU processes attributed to containers and host users, and NVML
//! failures that degrade without stopping the controller.

use std::time::Duration;

use bollard::models::DeviceRequest;
use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};
use serde_json::Value;

const GPU0: &str = "GPU-11111111-0000-4000-8000-000000000000";
const GPU1: &str = "GPU-11111111-0000-4000-8000-000000000001";
const WAIT: Duration = Duration::from_secs(15);

fn two_gpus(processes0: &str, processes1: &str) -> String {
    format!(
        "driverVersion: \"550.54.15\"\ngpus:\n  - uuid: {GPU0}\n    name: NVIDIA A100-SXM4-40GB\n    memoryTotalMiB: 40960\n    processes: [{processes0}]\n  - uuid: {GPU1}\n    name: NVIDIA A100-SXM4-40GB\n    memoryTotalMiB: 40960\n    processes: [{processes1}]\n"
    )
}

fn container<'a>(inventory: &'a Value, id: &str) -> Option<&'a Value> {
    inventory["containers"].get(&id[..12])
}

fn gpu_request(device_ids: Option<Vec<String>>, count: i64) -> DeviceRequest {
    DeviceRequest {
        driver: Some(String::new()),
        count: Some(count),
        device_ids,
        capabilities: Some(vec![vec!["gpu".to_owned()]]),
        options: None,
    }
}

#[tokio::test]
async fn containers_appear_with_their_origin_owner_and_gpu_access() {
    let scope = TestScope::new("inventory-origins").await;
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(two_gpus("", "")),
        ..DaemonOptions::default()
    });
    let devcontainer = scope
        .container(
            ContainerRequest::sleeper("dev")
                .label("devcontainer.local_folder", "/home/alice/project")
                .label("ds01.managed", "true"),
        )
        .await;
    let compose = scope
        .container(
            ContainerRequest::sleeper("compose")
                .label("com.docker.compose.project", "lab")
                .label("ds01.managed", "true")
                .label("ds01.user", "bob"),
        )
        .await;
    let managed = scope
        .container(
            ContainerRequest::sleeper("ds01")
                .label("ds01.managed", "true")
                .label("ds01.user", "carol")
                .label("ds01.gpu.uuid", GPU1),
        )
        .await;
    let plain = scope.container(ContainerRequest::sleeper("plain")).await;
    let mut one_gpu = ContainerRequest::sleeper("gpu0").created_only();
    one_gpu.device_requests = vec![gpu_request(Some(vec!["0".to_owned()]), 0)];
    let one_gpu = scope.container(one_gpu).await;
    let mut all_gpus = ContainerRequest::sleeper("gpuall")
        .created_only()
        .label("ds01.interface", "api");
    all_gpus.device_requests = vec![gpu_request(None, -1)];
    let all_gpus = scope.container(all_gpus).await;

    let ids = [
        &devcontainer,
        &compose,
        &managed,
        &plain,
        &one_gpu,
        &all_gpus,
    ];
    let inventory = daemon.wait_for_inventory(WAIT, "all six containers", |inventory| {
        ids.iter().all(|id| container(inventory, id).is_some())
    });
    // (id, origin, user, has_gpu, gpu devices); a label is a claim, never a GPU held.
    let expected: [(&String, &str, &str, bool, Vec<&str>); 6] = [
        (&devcontainer, "devcontainer", "alice", false, vec![]),
        (&compose, "compose", "bob", false, vec![]),
        (&managed, "ds01-managed", "carol", false, vec![]),
        (&plain, "docker", "unknown", false, vec![]),
        (&one_gpu, "docker", "unknown", true, vec![GPU0]),
        (&all_gpus, "api", "unknown", true, vec![GPU0, GPU1]),
    ];
    for (id, origin, user, has_gpu, devices) in expected {
        let record = container(&inventory, id).expect("present");
        assert_eq!(record["origin"], origin, "{record}");
        assert_eq!(record["user"], user, "{record}");
        assert_eq!(record["has_gpu"], has_gpu, "{record}");
        assert_eq!(
            record["gpu_devices"],
            serde_json::json!(devices),
            "{record}"
        );
    }
    assert_eq!(
        container(&inventory, &one_gpu).expect("present")["status"],
        "created"
    );
    let claims = &container(&inventory, &managed).expect("present")["gpu_claims"];
    assert_eq!(
        (&claims[0]["uuid"], &claims[0]["label"], &claims[0]["via"]),
        (
            &serde_json::json!(GPU1),
            &serde_json::json!("ds01.gpu.uuid"),
            &serde_json::json!("label")
        ),
        "{claims}"
    );
    let grants = &container(&inventory, &one_gpu).expect("present")["gpu_grants"];
    assert_eq!(grants[0]["via"], "device_request", "{grants}");
    for id in ids {
        let discovered = daemon
            .events()
            .iter()
            .filter(|event| {
                event["event_type"] == "detection.container_discovered"
                    && event["details"]["container_id"] == id[..12]
            })
            .count();
        assert_eq!(
            discovered, 1,
            "container {id} discovered {discovered} times"
        );
    }
}

#[tokio::test]
async fn gpu_processes_are_attributed_to_their_container_or_host_user() {
    let scope = TestScope::new("inventory-processes").await;
    let worker = scope
        .container(ContainerRequest::sleeper("worker").label("ds01.user", "dana"))
        .await;
    let inspected = scope
        .docker
        .inspect_container(&worker, None)
        .await
        .expect("inspect");
    let container_pid = inspected
        .state
        .and_then(|state| state.pid)
        .expect("running container has a pid");
    let mut host_process = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("host process");
    let host_pid = host_process.id();

    let state = two_gpus(
        &format!("{{pid: {container_pid}, usedMemoryMiB: 2048}}"),
        &format!("{{pid: {host_pid}, usedMemoryMiB: 512}}"),
    );
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(state),
        ..DaemonOptions::default()
    });
    let inventory = daemon.wait_for_inventory(WAIT, "the host process", |inventory| {
        inventory["host_processes"]
            .get(host_pid.to_string())
            .is_some()
    });
    let processes = inventory["gpu_processes"]
        .as_array()
        .expect("gpu_processes");
    let in_container = processes
        .iter()
        .find(|p| p["pid"] == container_pid)
        .expect("container process listed");
    assert_eq!(in_container["container"], worker[..12], "{in_container}");
    assert_eq!(in_container["gpu_uuid"], GPU0);
    assert!(
        inventory["host_processes"]
            .get(container_pid.to_string())
            .is_none(),
        "a container process is not a host process"
    );
    let host = &inventory["host_processes"][host_pid.to_string()];
    assert_eq!(host["user"], "root");
    assert_eq!(host["gpu_uuid"], GPU1);
    assert_eq!(host["gpu_memory_mb"], 512);
    let discovered = daemon.wait_for_event(WAIT, "host_gpu_process_discovered", |event| {
        event["event_type"] == "detection.host_gpu_process_discovered"
    });
    assert_eq!(discovered["details"]["pid"], host_pid);
    assert_eq!(discovered["user"], "root");

    // The process ends and NVML stops listing it: reported as exited.
    let _ = host_process.kill();
    let _ = host_process.wait();
    daemon.set_nvml_state(&two_gpus(
        &format!("{{pid: {container_pid}, usedMemoryMiB: 2048}}"),
        "",
    ));
    let exited = daemon.wait_for_event(WAIT, "host_gpu_process_exited", |event| {
        event["event_type"] == "detection.host_gpu_process_exited"
    });
    assert_eq!(exited["details"]["pid"], host_pid);
}

#[tokio::test]
async fn every_nvml_failure_the_fake_can_produce_leaves_the_controller_running_and_visible() {
    let failures = [
        (
            "a lost GPU",
            format!("gpus:\n  - uuid: {GPU0}\n    lost: true\n"),
            "gpu lost",
        ),
        (
            "unsupported calls",
            format!(
                "gpus:\n  - uuid: {GPU0}\n    errors: {{utilization: 3, temperature: 3, memory: 3, migMode: 3, processUtilization: 3}}\n"
            ),
            "utilization",
        ),
        (
            "failing process list",
            format!("gpus:\n  - uuid: {GPU0}\n    errors: {{processes: 999}}\n"),
            "compute processes",
        ),
        (
            "failing device count",
            "countError: 9\ngpus: []\n".to_owned(),
            "device count",
        ),
        (
            "a failing uuid",
            format!("gpus:\n  - uuid: {GPU0}\n    errors: {{uuid: 999}}\n"),
            "uuid",
        ),
    ];
    let mut daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(two_gpus("", "")),
        ..DaemonOptions::default()
    });
    daemon.wait_for_inventory(WAIT, "two GPUs", |inventory| {
        inventory["gpus"]
            .as_array()
            .is_some_and(|gpus| gpus.len() == 2)
    });
    for (what, state, expected) in failures {
        daemon.set_nvml_state(&state);
        let inventory = daemon.wait_for_inventory(WAIT, what, |inventory| {
            inventory["gpu_backend"]["lastError"]
                .as_str()
                .is_some_and(|error| error.contains(expected))
        });
        assert!(
            daemon.is_running(),
            "controller died on {what}: {}",
            daemon.output()
        );
        assert_eq!(inventory["gpu_backend"]["backend"], "nvml");
    }
    // Healthy again: the error clears.
    daemon.set_nvml_state(&two_gpus("", ""));
    daemon.wait_for_inventory(WAIT, "recovery", |inventory| {
        inventory["gpu_backend"]["lastError"].is_null()
            && inventory["gpus"]
                .as_array()
                .is_some_and(|gpus| gpus.len() == 2)
    });
    assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
}

#[tokio::test]
async fn a_driver_that_will_not_initialise_is_reported_not_fatal() {
    let mut daemon = Daemon::start(DaemonOptions {
        nvml_state: Some("initError: 9\n".to_owned()),
        ..DaemonOptions::default()
    });
    // The error is reported and the rest goes on: Docker is observed all the same (the file
    // may be written with the error before the first relist is in, so wait for both).
    daemon.wait_for_inventory(WAIT, "the init error and Docker observed", |inventory| {
        inventory["gpu_backend"]["lastError"]
            .as_str()
            .is_some_and(|error| error.contains("NVML"))
            && inventory["docker"]["connected"] == true
    });
    assert!(daemon.is_running());
    assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
}

#[tokio::test]
async fn containers_removed_during_the_first_relist_are_gone_not_a_lost_connection() {
    let scope = TestScope::new("inv-vanishing").await;
    let mut doomed = Vec::new();
    for index in 0..40 {
        doomed.push(
            scope
                .container(ContainerRequest::sleeper(&format!("doomed{index}")).created_only())
                .await,
        );
    }
    // Remove them while the controller starts: some are listed and then fail their inspect.
    let docker = scope.docker.clone();
    let removals = doomed.clone();
    let remover = tokio::spawn(async move {
        for id in removals {
            let _ = docker
                .remove_container(
                    &id,
                    Some(
                        bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                            .force(true)
                            .build(),
                    ),
                )
                .await;
        }
    });
    let daemon = Daemon::start(DaemonOptions::default());
    remover.await.expect("remover");
    daemon.wait_for_inventory(
        WAIT,
        "connected, without the removed containers",
        |inventory| {
            inventory["docker"]["connected"] == true
                && doomed.iter().all(|id| container(inventory, id).is_none())
        },
    );
    let disconnected: Vec<Value> = daemon
        .events()
        .into_iter()
        .filter(|event| event["event_type"] == "docker.disconnected")
        .collect();
    assert!(
        disconnected.is_empty(),
        "a vanished container was taken for a lost engine: {disconnected:?}"
    );
}
