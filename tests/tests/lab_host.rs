//! A lab-shaped engine (default runtime `nvidia`, the NVIDIA hook on dockerd's PATH,
//! `cgroup-parent: ds01.slice`) with the fake NVML's four GPUs, GPU 0 in MIG mode with two
//! instances: GPUs are attributed as the toolkit grants them, owner labels give way to the
//! cgroup slice, processes and CPU are found under `/ds01.slice/<id>`, and the exporter joins the
//! lab's monitoring network — recognised by its id, not by its labels.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use ds01_tests::{
    CUDA_LIKE_IMAGE, ContainerRequest, Daemon, DaemonOptions, TestScope, ensure_cuda_like_image,
    private_engine::PrivateEngine,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const GPU: [&str; 4] = [
    "GPU-77777777-0000-4000-8000-000000000000",
    "GPU-77777777-0000-4000-8000-000000000001",
    "GPU-77777777-0000-4000-8000-000000000002",
    "GPU-77777777-0000-4000-8000-000000000003",
];
const MIG: [&str; 2] = [
    "MIG-77777777-0000-4000-8000-0000000000a1",
    "MIG-77777777-0000-4000-8000-0000000000a2",
];

/// Four GPUs, GPU 0 in MIG mode with two instances; `processes` go on GPU 2.
fn nvml(processes: &str) -> String {
    let mut state = format!(
        "gpus:\n  - uuid: {}\n    name: A100\n    memoryTotalMiB: 40960\n    migMode: true\n    migDevices:\n      - {{uuid: {}, gpuInstanceId: 1, computeInstanceId: 0, memoryTotalMiB: 9856}}\n      - {{uuid: {}, gpuInstanceId: 2, computeInstanceId: 0, memoryTotalMiB: 9856}}\n",
        GPU[0], MIG[0], MIG[1]
    );
    for (index, uuid) in GPU.iter().enumerate().skip(1) {
        let listed = if index == 2 { processes } else { "" };
        state.push_str(&format!(
            "  - uuid: {uuid}\n    name: A100\n    memoryTotalMiB: 40960\n    processes: [{listed}]\n"
        ));
    }
    state
}

fn containers(daemon: &Daemon) -> Vec<Value> {
    let (_, stdout, _) = daemon.ctl(&["get", "containers", "-o", "json"]);
    serde_json::from_str::<Value>(&stdout)
        .ok()
        .and_then(|body| body["containers"].as_array().cloned())
        .unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_str().map(str::to_owned))
        .collect()
}

/// Waits until `get containers -o json` satisfies `done`, returning the containers by name.
fn wait_for_containers(
    daemon: &Daemon,
    what: &str,
    done: impl Fn(&HashMap<String, Value>) -> bool,
) -> HashMap<String, Value> {
    let started = Instant::now();
    loop {
        let by_name: HashMap<String, Value> = containers(daemon)
            .into_iter()
            .filter_map(|container| {
                Some((container["name"].as_str()?.to_owned(), container.clone()))
            })
            .collect();
        if done(&by_name) {
            return by_name;
        }
        assert!(
            started.elapsed() < WAIT,
            "never {what}: {by_name:#?}\n{}",
            daemon.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn gpus_owners_processes_and_cpu_are_seen_as_the_lab_engine_grants_them() {
    let engine = PrivateEngine::start_lab("lab-attr").await;
    let scope = TestScope::on(engine.docker(), "lab-attr").await;
    ensure_cuda_like_image(&scope.docker).await;
    let cuda = || ContainerRequest::sleeper("x").image(CUDA_LIKE_IMAGE);
    let named = |request: ContainerRequest, name: &str| ContainerRequest {
        name: name.to_owned(),
        ..request
    };
    let mut runc = named(cuda(), "cuda-runc");
    runc.runtime = Some("runc".to_owned());
    let mut conflicted = ContainerRequest::sleeper("conflict").label("ds01.user", "alice");
    conflicted.cgroup_parent = Some("ds01-student-bob.slice".to_owned());
    // The eight ways of the "Done when", a label claim, and a contradicted owner label.
    let cases: Vec<(ContainerRequest, Vec<&str>)> = vec![
        (ContainerRequest::sleeper("plain"), vec![]),
        (named(cuda().gpus(0, &[GPU[1]]), "cuda-uuid1"), vec![GPU[1]]),
        (named(cuda(), "cuda"), GPU.to_vec()),
        (runc, vec![]),
        (
            named(cuda().env("NVIDIA_VISIBLE_DEVICES=none"), "cuda-none"),
            vec![],
        ),
        (named(cuda().gpus(2, &[]), "gpus-2"), vec![GPU[0], GPU[1]]),
        (named(cuda().gpus(0, &["0:1"]), "mig-0-1"), vec![MIG[1]]),
        (named(cuda().gpus(0, &["2"]), "device-2"), vec![GPU[2]]),
        (
            ContainerRequest::sleeper("claim").label("ds01.gpu.uuid", GPU[3]),
            vec![],
        ),
        (conflicted, vec![]),
    ];
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    for (request, gpus) in cases {
        let name = scope.name(&request.name);
        let id = scope.container(request).await;
        ids.insert(name.clone(), id);
        let mut gpus: Vec<String> = gpus.into_iter().map(str::to_owned).collect();
        gpus.sort();
        expected.insert(name, gpus);
    }
    let daemon = Daemon::start(DaemonOptions {
        docker_host: Some(engine.host()),
        nvml_state: Some(nvml("")),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    let listed = wait_for_containers(&daemon, "every container with its GPUs", |by_name| {
        expected.iter().all(|(name, gpus)| {
            by_name
                .get(name)
                .is_some_and(|container| strings(&container["gpus"]) == *gpus)
        })
    });
    // How each was granted: PID 1's environment for running containers.
    let uuid1 = &listed[&scope.name("cuda-uuid1")];
    assert_eq!(uuid1["gpuGrants"][0]["via"], "environ", "{uuid1}");
    let mig = &listed[&scope.name("mig-0-1")];
    assert_eq!(mig["gpuGrants"][0]["device"], "0:1", "{mig}");
    assert_eq!(listed[&scope.name("cuda-runc")]["hasGpu"], false);
    // A label is a claim: shown apart, never granted.
    let claim = &listed[&scope.name("claim")];
    assert_eq!(claim["gpuClaims"][0]["uuid"], GPU[3], "{claim}");
    assert_eq!(claim["gpuClaims"][0]["via"], "label", "{claim}");
    assert_eq!(claim["hasGpu"], false, "{claim}");
    let (code, described, _) = daemon.ctl(&["describe", "container", &scope.name("cuda-uuid1")]);
    assert_eq!(code, 0);
    assert!(
        described.contains(&format!("{} via environ", GPU[1])),
        "{described}"
    );

    // The per-user slice names bob: the label's alice gives way, reported once, even after a
    // restart of the container.
    let conflict_name = scope.name("conflict");
    let conflict_id = ids[&conflict_name].clone();
    assert_eq!(listed[&conflict_name]["user"], "bob");
    assert_eq!(listed[&conflict_name]["ownerSource"], "cgroup-parent");
    let reported = daemon.wait_for_event(WAIT, "detection.owner_conflict", |event| {
        event["event_type"] == "detection.owner_conflict"
            && event["details"]["container_id"] == conflict_id[..12]
    });
    assert_eq!(
        (
            &reported["details"]["claimed"],
            &reported["details"]["evidence"],
            &reported["details"]["winner"],
            &reported["user"]
        ),
        (
            &Value::from("alice"),
            &Value::from("bob"),
            &Value::from("evidence"),
            &Value::from("bob")
        ),
        "{reported}"
    );
    scope
        .docker
        .restart_container(&conflict_id, None)
        .await
        .expect("restart");
    daemon.wait_for_event(WAIT, "the restart seen", |event| {
        event["event_type"] == "detection.container_status_changed"
            && event["details"]["container_id"] == conflict_id[..12]
            && event["details"]["to"] == "running"
    });
    let conflicts = daemon
        .events()
        .iter()
        .filter(|event| {
            event["event_type"] == "detection.owner_conflict"
                && event["details"]["container_id"] == conflict_id[..12]
        })
        .count();
    assert_eq!(conflicts, 1, "detection.owner_conflict once per container");

    // A GPU process in /ds01.slice/<id> belongs to its container; CPU is read from there too.
    let holder = &ids[&scope.name("device-2")];
    let pid = scope
        .docker
        .inspect_container(holder, None)
        .await
        .expect("inspect")
        .state
        .and_then(|state| state.pid)
        .expect("pid");
    daemon.set_nvml_state(&nvml(&format!("{{pid: {pid}, usedMemoryMiB: 100}}")));
    let policy = tempfile::tempdir().expect("policy");
    let path = policy.path().join("lifecycle.yaml");
    std::fs::write(
        &path,
        "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {name: watch}\nspec:\n  mode: dryRun\n  sampleInterval: 1s\n  scope: all\n  defaults: {idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}\n",
    )
    .expect("policy");
    assert_eq!(
        daemon.ctl(&["apply", "-f", &path.display().to_string()]).0,
        0
    );
    let started = Instant::now();
    loop {
        let (_, processes, _) = daemon.ctl(&["get", "processes", "-o", "json"]);
        let processes: Value = serde_json::from_str(&processes).unwrap_or(Value::Null);
        let (_, described, _) = daemon.ctl(&[
            "describe",
            "container",
            &scope.name("device-2"),
            "-o",
            "json",
        ]);
        let described: Value = serde_json::from_str(&described).unwrap_or(Value::Null);
        let in_container = processes["processes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|process| {
                process["pid"] == pid
                    && process["class"] == "container"
                    && process["container"] == scope.name("device-2").as_str()
            });
        let cpu_known = described["lifecycle"]["signals"]["cpu"]["value"].is_string();
        if in_container && cpu_known {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "process {pid} not attributed to its /ds01.slice container ({in_container}) or CPU unknown ({cpu_known}): {processes}\n{described}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn inspect(
    scope: &TestScope,
    name: &str,
) -> Option<bollard::models::ContainerInspectResponse> {
    scope.docker.inspect_container(name, None).await.ok()
}

#[tokio::test]
async fn the_exporter_joins_the_monitoring_network_and_only_its_own_id_is_spared() {
    let engine = PrivateEngine::start_lab("lab-dcgm").await;
    let scope = TestScope::on(engine.docker(), "lab-dcgm").await;
    let www = tempfile::tempdir().expect("www");
    let metrics: String = GPU
        .iter()
        .map(|uuid| format!("DCGM_FI_DEV_GPU_UTIL{{UUID=\"{uuid}\"}} 0\n"))
        .collect();
    std::fs::write(www.path().join("metrics"), metrics).expect("metrics");
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(www.path())
        .status();
    let user = format!("lab{}", std::process::id());
    // The default spec plus port and network; the image is the test image serving a metrics file
    // on the exporter's port (9400) inside the container.
    let specs = www.path().join("specs.yaml");
    std::fs::write(
        &specs,
        format!(
            "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {{name: dcgm-exporter}}\nspec:\n  image: ds01/testbox:latest\n  pullPolicy: Never\n  command: [\"httpd\", \"-f\", \"-p\", \"9400\", \"-h\", \"/www\"]\n  volumes: [\"{}:/www:ro\"]\n  port: 19400\n  networks: [{{name: ds01-monitoring, aliases: [dcgm-exporter]}}]\n  labels: {{ds01.test: {}}}\n  stopTimeout: 2s\n  health: {{interval: 1s, timeout: 1s, startPeriod: 5s}}\n---\napiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: lab}}\nspec:\n  sampleInterval: 1s\n  scope: gpu\n  protectedLabels: []\n  defaults: {{startupGrace: 0s, stopGracePeriod: 1s, idleTimeout: 4s, onIdle: stop, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {user}: {{idleTimeout: 4s}}\n  notify: {{tty: false}}\n",
            www.path().display(),
            scope.id
        ),
    )
    .expect("specs");
    let daemon = Daemon::start(DaemonOptions {
        docker_host: Some(engine.host()),
        nvml_state: Some(nvml("")),
        wrapper: engine.enter_network(),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(
        daemon.ctl(&["apply", "-f", &specs.display().to_string()]).0,
        0
    );

    // No network yet: a clear condition, no container, no crash loop.
    let started = Instant::now();
    loop {
        let (_, status, _) = daemon.ctl(&["status", "-o", "json"]);
        if status.contains("NetworkMissing") {
            assert!(
                status.contains("docker network create ds01-monitoring"),
                "{status}"
            );
            break;
        }
        assert!(started.elapsed() < WAIT, "no NetworkMissing: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(inspect(&scope, "ds01-dcgm-exporter").await.is_none());
    scope
        .docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: "ds01-monitoring".to_owned(),
            ..bollard::models::NetworkCreateRequest::default()
        })
        .await
        .expect("network");
    let (code, stdout, stderr) = daemon.ctl(&[
        "wait",
        "--for=condition=Ready",
        "dcgmexporter/dcgm-exporter",
        "--timeout",
        "60s",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}\n{}", daemon.output());
    let exporter = inspect(&scope, "ds01-dcgm-exporter")
        .await
        .expect("exporter");
    let exporter_id = exporter.id.clone().expect("id");
    let aliases = exporter
        .network_settings
        .as_ref()
        .and_then(|settings| settings.networks.as_ref())
        .and_then(|networks| networks.get("ds01-monitoring"))
        .and_then(|network| network.aliases.clone())
        .unwrap_or_default();
    assert!(
        aliases.iter().any(|alias| alias == "dcgm-exporter"),
        "{aliases:?}"
    );
    let env = exporter
        .config
        .as_ref()
        .and_then(|config| config.env.clone())
        .unwrap_or_default();
    assert!(
        env.iter()
            .any(|entry| entry
                == "DCGM_EXPORTER_COLLECTORS=/etc/dcgm-exporter/dcp-metrics-included.csv"),
        "{env:?}"
    );
    let host = exporter.host_config.clone().unwrap_or_default();
    let binding = host
        .port_bindings
        .as_ref()
        .and_then(|bindings| bindings.get("9400/tcp").cloned().flatten())
        .and_then(|bindings| bindings.first().cloned())
        .expect("9400/tcp published");
    assert_eq!(
        (binding.host_ip.as_deref(), binding.host_port.as_deref()),
        (Some("127.0.0.1"), Some("19400"))
    );
    let log = host.log_config.clone().unwrap_or_default();
    let options = log.config.unwrap_or_default();
    assert_eq!(
        (
            log.typ.as_deref(),
            options.get("max-size").map(String::as_str),
            options.get("max-file").map(String::as_str)
        ),
        (Some("json-file"), Some("10485760"), Some("5"))
    );

    // A user's idle GPU container wearing the controller's labels is not the controller's: it
    // is stopped like any other, while the exporter (every GPU, idle too) is left alone.
    let impostor = scope
        .container(
            ContainerRequest::sleeper("impostor")
                .gpus(0, &["3"])
                .label("ds01.user", &user)
                .label("ds01.managed_by", "ds01-controller")
                .label("ds01.spec-hash", "0123456789abcdef")
                .label("ds01.protected", "true"),
        )
        .await;
    daemon.wait_for_event(WAIT, "the impostor's idle stop", |event| {
        event["event_type"] == "lifecycle.idle_stop"
            && event["details"]["container_id"] == impostor[..12]
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let exporter = inspect(&scope, "ds01-dcgm-exporter")
        .await
        .expect("exporter");
    assert_eq!(exporter.id.as_deref(), Some(exporter_id.as_str()));
    assert_eq!(
        exporter.state.and_then(|state| state.running),
        Some(true),
        "the controller's own exporter was stopped"
    );
    assert!(
        !daemon.events().iter().any(|event| {
            event["event_type"] == "lifecycle.idle_stop"
                && event["details"]["container_id"] == exporter_id[..12]
        }),
        "an idle stop was decided for the exporter"
    );
    let (_, described, _) =
        daemon.ctl(&["describe", "container", "ds01-dcgm-exporter", "-o", "json"]);
    assert!(
        described.contains("the controller's own container"),
        "{described}"
    );
    drop(www);
}
