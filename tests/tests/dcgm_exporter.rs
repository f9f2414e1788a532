//! The DcgmExporter controller against the real engine, with a fake exporter (busybox httpd
//! serving a metrics file that names the fake GPUs) and the fake NVML library.

use std::time::{Duration, Instant};

use ds01_tests::{Daemon, DaemonOptions, TestScope};
use serde_json::Value;

const GPU0: &str = "GPU-33333333-0000-4000-8000-000000000000";
const GPU1: &str = "GPU-33333333-0000-4000-8000-000000000001";
const WAIT: Duration = Duration::from_secs(30);

fn nvml(gpus: &[&str]) -> String {
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

struct Exporter {
    spec_path: String,
    www: tempfile::TempDir,
    container: String,
}

fn exporter(scope: &TestScope, extra: &str, command: &str) -> Exporter {
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
const HTTPD: &str = "[\"httpd\", \"-f\", \"-p\", \"9400\", \"-h\", \"/www\"]";

fn ready(daemon: &Daemon) -> Value {
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

fn status(daemon: &Daemon) -> Value {
    let (_, stdout, _) = daemon.ctl(&["status", "-o", "json"]);
    let status: Value = serde_json::from_str(&stdout).expect("status json");
    status["resources"]
        .as_array()
        .and_then(|resources| resources.iter().find(|r| r["name"] == "dcgm").cloned())
        .unwrap_or(Value::Null)
}

/// Waits until the exporter's condition `kind` has `reason` (an event is written before the
/// reconcile that emitted it publishes its conditions, so one read right after it can be stale).
fn wait_for_condition(daemon: &Daemon, kind: &str, reason: &str) -> Value {
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

async fn container_id(scope: &TestScope, name: &str) -> Option<(String, bool)> {
    let inspected = scope.docker.inspect_container(name, None).await.ok()?;
    Some((
        inspected.id?,
        inspected
            .state
            .and_then(|state| state.running)
            .unwrap_or(false),
    ))
}

async fn wait_running_other_than(
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

#[tokio::test]
async fn the_exporter_is_created_kept_running_recreated_and_left_alone_when_healthy() {
    let scope = TestScope::new("dcgm-life").await;
    let setup = exporter(&scope, "", HTTPD);
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let status = ready(&daemon);
    assert_eq!(status["observedGeneration"], status["generation"]);
    let (first, _) = wait_running_other_than(&scope, &setup.container, None).await;
    let inspected = scope
        .docker
        .inspect_container(&first, None)
        .await
        .expect("inspect");
    let labels = inspected
        .config
        .and_then(|config| config.labels)
        .unwrap_or_default();
    assert_eq!(
        labels.get("ds01.managed_by").map(String::as_str),
        Some("ds01-controller")
    );
    assert!(labels.contains_key("ds01.spec-hash"));
    let restart_policy = inspected
        .host_config
        .and_then(|host| host.restart_policy)
        .and_then(|policy| policy.name)
        .map(|name| name.to_string());
    assert_eq!(restart_policy.as_deref(), Some("no"));

    // docker kill → running again quickly (the first restart is immediate).
    tokio::time::sleep(Duration::from_secs(3)).await; // healthy past resetAfter
    scope
        .docker
        .kill_container(&first, None)
        .await
        .expect("kill");
    let killed_at = Instant::now();
    loop {
        if let Some((id, true)) = container_id(&scope, &setup.container).await
            && id == first
            && killed_at.elapsed() > Duration::from_millis(50)
        {
            break;
        }
        assert!(
            killed_at.elapsed() < WAIT,
            "not restarted after docker kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Docker reports the container running before the controller records why.
    daemon.wait_for_event(WAIT, "dcgm.restarted", |event| {
        event["event_type"] == "dcgm.restarted"
    });

    // docker rm -f → recreated.
    scope
        .docker
        .remove_container(
            &first,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .expect("rm");
    let (second, _) = wait_running_other_than(&scope, &setup.container, Some(&first)).await;
    daemon.wait_for_event(WAIT, "dcgm.created for the replacement", |event| {
        event["event_type"] == "dcgm.created"
            && event["details"]["container_id"]
                .as_str()
                .is_some_and(|id| second.starts_with(id))
    });
    ready(&daemon);
    // The metrics tell the same story: up, and created + restarted + re-created.
    let metrics = daemon.metrics().unwrap_or_default();
    let sample = |family: &str| {
        let prefix = format!("{family}{{container=\"{}\"}} ", setup.container);
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|value| value.parse::<f64>().ok())
    };
    assert_eq!(sample("ds01_dcgm_exporter_up"), Some(1.0), "{metrics}");
    assert_eq!(
        sample("ds01_dcgm_exporter_restarts_total"),
        Some(3.0),
        "{metrics}"
    );

    // A controller restart leaves the healthy exporter untouched.
    let actions_before = daemon
        .events()
        .iter()
        .filter(|event| {
            event["event_type"]
                .as_str()
                .is_some_and(|kind| kind == "dcgm.created" || kind == "dcgm.restarted")
        })
        .count();
    let directory = daemon.stop_keeping_state();
    let daemon = Daemon::start_in(
        directory,
        DaemonOptions {
            nvml_state: Some(nvml(&[GPU0])),
            ..DaemonOptions::default()
        },
    );
    daemon.wait_for_socket(WAIT);
    ready(&daemon);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (third, running) = container_id(&scope, &setup.container)
        .await
        .expect("exists");
    assert!(running);
    assert_eq!(
        third, second,
        "a healthy exporter was replaced after a controller restart"
    );
    let actions_after = daemon
        .events()
        .iter()
        .filter(|event| {
            event["event_type"]
                .as_str()
                .is_some_and(|kind| kind == "dcgm.created" || kind == "dcgm.restarted")
        })
        .count();
    assert_eq!(actions_before, actions_after);
    drop(setup.www);
}

#[tokio::test]
async fn a_gpu_the_metrics_do_not_name_makes_it_unhealthy_and_restarted() {
    let scope = TestScope::new("dcgm-health").await;
    let setup = exporter(&scope, "", HTTPD);
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    ready(&daemon);
    daemon.set_nvml_state(&nvml(&[GPU0, GPU1]));
    let unhealthy = daemon.wait_for_event(WAIT, "dcgm.unhealthy", |event| {
        event["event_type"] == "dcgm.unhealthy"
    });
    assert!(
        unhealthy["details"]["message"]
            .as_str()
            .is_some_and(|message| message.contains(GPU1)),
        "{unhealthy}"
    );
    daemon.wait_for_event(WAIT, "restart after unhealthy", |event| {
        event["event_type"] == "dcgm.restarted"
            && event["details"]["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("unhealthy"))
    });
    // The metrics name the new GPU: healthy again.
    std::fs::write(
        setup.www.path().join("metrics"),
        format!("x{{UUID=\"{GPU0}\"}} 0\nx{{UUID=\"{GPU1}\"}} 0\n"),
    )
    .expect("metrics");
    daemon.wait_for_event(WAIT, "dcgm.recovered", |event| {
        event["event_type"] == "dcgm.recovered"
    });
    ready(&daemon);
}

#[tokio::test]
async fn a_command_that_exits_at_once_is_a_crash_loop_paced_by_the_backoff() {
    let scope = TestScope::new("dcgm-crash").await;
    let setup = exporter(&scope, "", "[\"sh\", \"-c\", \"exit 3\"]");
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let crash = daemon.wait_for_event(WAIT, "dcgm.crashloop", |event| {
        event["event_type"] == "dcgm.crashloop"
    });
    assert!(
        crash["details"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("restarts within 1m")),
        "{crash}"
    );
    let degraded = wait_for_condition(&daemon, "Degraded", "CrashLoop");
    assert_eq!(degraded["status"], "True", "{degraded}");
    // Starts over 20 s: created at 0, restarts at +0 (immediate), +1, +2 (4 starts by ~3 s),
    // then every backoffMax (4 s) in the crash loop: about 4 more by 20 s.
    let first = Instant::now();
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(first.elapsed())).await;
    let starts = daemon
        .events()
        .iter()
        .filter(|event| {
            event["event_type"] == "dcgm.restarted" || event["event_type"] == "dcgm.created"
        })
        .count();
    assert!(
        (7..=10).contains(&starts),
        "{starts} starts in about 20 s do not follow the backoff schedule"
    );
}

#[tokio::test]
async fn changing_env_recreates_the_exporter_with_the_new_environment() {
    let scope = TestScope::new("dcgm-env").await;
    let setup = exporter(&scope, "", HTTPD);
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    ready(&daemon);
    let (before, _) = wait_running_other_than(&scope, &setup.container, None).await;
    let spec = std::fs::read_to_string(&setup.spec_path).expect("spec");
    std::fs::write(
        &setup.spec_path,
        format!("{spec}  env: {{DCGM_EXPORTER_INTERVAL: \"5000\"}}\n"),
    )
    .expect("spec");
    let (code, stdout, _) = daemon.ctl(&["apply", "-f", &setup.spec_path]);
    assert_eq!((code, stdout.trim()), (0, "dcgmexporter/dcgm configured"));
    let (after, _) = wait_running_other_than(&scope, &setup.container, Some(&before)).await;
    let env = scope
        .docker
        .inspect_container(&after, None)
        .await
        .expect("inspect")
        .config
        .and_then(|config| config.env)
        .unwrap_or_default();
    assert!(
        env.iter()
            .any(|entry| entry == "DCGM_EXPORTER_INTERVAL=5000"),
        "{env:?}"
    );
    let status = ready(&daemon);
    assert_eq!(status["observedGeneration"], 2);
}

#[tokio::test]
async fn no_gpus_and_a_missing_image_are_reported_without_container_churn() {
    let scope = TestScope::new("dcgm-conditions").await;
    let setup = exporter(&scope, "", HTTPD);
    let spec = std::fs::read_to_string(&setup.spec_path)
        .expect("spec")
        .replace("  gpus: none\n", "  gpus: all\n");
    std::fs::write(&setup.spec_path, &spec).expect("spec");
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some("gpus: []\n".to_owned()),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let (code, _, _) = daemon.ctl(&[
        "wait",
        "--for=condition=Ready=False",
        "dcgmexporter/dcgm",
        "--timeout",
        "20s",
    ]);
    assert_eq!(code, 0);
    let ready = wait_for_condition(&daemon, "Ready", "NoGpus");
    assert_eq!(ready["status"], "False", "{ready}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        container_id(&scope, &setup.container).await.is_none(),
        "no container without GPUs"
    );

    // GPUs appear, but the image is missing and may not be pulled.
    std::fs::write(
        &setup.spec_path,
        spec.replace("image: ds01/testbox:latest", "image: ds01/does-not-exist:1"),
    )
    .expect("spec");
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    daemon.set_nvml_state(&nvml(&[GPU0]));
    let started = Instant::now();
    loop {
        let ready = status(&daemon)["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready").cloned())
            .unwrap_or(Value::Null);
        if ready["reason"] == "ImageUnavailable" {
            assert!(
                ready["message"]
                    .as_str()
                    .is_some_and(|message| message.contains("ds01/does-not-exist:1")),
                "{ready}"
            );
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "never reported ImageUnavailable: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(container_id(&scope, &setup.container).await.is_none());
}

#[tokio::test]
async fn dry_run_decides_and_records_without_touching_docker_once_per_decision() {
    let scope = TestScope::new("dcgm-dry").await;
    let setup = exporter(&scope, "", HTTPD);
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        extra: vec!["--dry-run".into()],
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let decided = daemon.wait_for_event(WAIT, "a dry-run create", |event| {
        event["event_type"] == "dcgm.created"
    });
    assert_eq!(decided["details"]["dry_run"], true);
    // The container can never start (nothing is created in dry run): the same decision at every
    // reconcile (each second here) is recorded once.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        container_id(&scope, &setup.container).await.is_none(),
        "dry run created a container"
    );
    let decisions = daemon
        .events()
        .iter()
        .filter(|event| {
            event["event_type"]
                .as_str()
                .is_some_and(|kind| kind.starts_with("dcgm."))
        })
        .count();
    assert!(
        decisions <= 3,
        "{decisions} dcgm.* events in 10 s of an unchanged decision"
    );
}

#[tokio::test]
async fn a_refused_create_shows_dockers_own_error_in_the_condition_and_once_in_the_log() {
    let scope = TestScope::new("dcgm-refused").await;
    ds01_tests::ensure_no_command_image(&scope.docker).await;
    let setup = exporter(&scope, "", HTTPD);
    let spec = std::fs::read_to_string(&setup.spec_path)
        .expect("spec")
        .replace(
            "image: ds01/testbox:latest",
            &format!("image: {}", ds01_tests::NO_COMMAND_IMAGE),
        )
        .lines()
        .filter(|line| !line.starts_with("  command:"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&setup.spec_path, format!("{spec}\n")).expect("spec");
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let failed = daemon.wait_for_event(WAIT, "dcgm.failed", |event| {
        event["event_type"] == "dcgm.failed"
    });
    assert!(
        failed["details"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("No command specified")),
        "{failed}"
    );
    // While it backs off, the condition still says what Docker said.
    let started = Instant::now();
    loop {
        let ready = status(&daemon)["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready").cloned())
            .unwrap_or(Value::Null);
        if ready["reason"] == "BackOff" {
            assert!(
                ready["message"]
                    .as_str()
                    .is_some_and(|message| message.contains("No command specified")),
                "{ready}"
            );
            break;
        }
        assert!(started.elapsed() < WAIT, "never backed off: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Attempts go on with the backoff; the same error is not written again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let failures = daemon
        .events()
        .iter()
        .filter(|event| event["event_type"] == "dcgm.failed")
        .count();
    assert_eq!(
        failures, 1,
        "the same Docker error written {failures} times"
    );
    assert!(container_id(&scope, &setup.container).await.is_none());
}

#[tokio::test]
async fn a_container_the_controller_did_not_create_is_a_conflict_until_replace_existing() {
    let scope = TestScope::new("dcgm-conflict").await;
    let setup = exporter(&scope, "", HTTPD);
    // Someone else's container under the exporter's name, wearing the controller's label.
    let squatter = scope
        .docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(&setup.container)
                    .build(),
            ),
            bollard::models::ContainerCreateBody {
                image: Some(ds01_tests::TESTBOX_IMAGE.to_owned()),
                cmd: Some(vec!["sleep".into(), "3600".into()]),
                labels: Some(std::collections::HashMap::from([
                    ("ds01.test".to_owned(), scope.id.clone()),
                    ("ds01.managed_by".to_owned(), "ds01-controller".to_owned()),
                ])),
                ..bollard::models::ContainerCreateBody::default()
            },
        )
        .await
        .expect("create the squatter")
        .id;
    scope
        .docker
        .start_container(&squatter, None)
        .await
        .expect("start the squatter");
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let conflict = wait_for_condition(&daemon, "Ready", "NameConflict");
    let message = conflict["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "docker stop -t 2 {name} && docker rm {name}",
            name = setup.container
        )) && message.contains("replaceExisting"),
        "{conflict}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        container_id(&scope, &setup.container).await,
        Some((squatter.clone(), true)),
        "the squatter was touched without replaceExisting"
    );

    let spec = std::fs::read_to_string(&setup.spec_path).expect("spec");
    std::fs::write(&setup.spec_path, format!("{spec}  replaceExisting: true\n")).expect("spec");
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let replaced = daemon.wait_for_event(WAIT, "dcgm.replaced", |event| {
        event["event_type"] == "dcgm.replaced"
    });
    assert_eq!(
        replaced["details"]["replaced_id"],
        squatter[..12],
        "{replaced}"
    );
    let (ours, _) = wait_running_other_than(&scope, &setup.container, Some(&squatter)).await;
    assert!(
        replaced["details"]["container_id"]
            .as_str()
            .is_some_and(|id| ours.starts_with(id)),
        "{replaced}"
    );
    ready(&daemon);
}

#[tokio::test]
async fn a_mig_layout_change_restarts_the_exporter() {
    let mig = |devices: &[&str]| {
        let mut state = format!(
            "gpus:\n  - uuid: {GPU0}\n    name: A100\n    migMode: true\n    migDevices:\n"
        );
        for (index, uuid) in devices.iter().enumerate() {
            state.push_str(&format!("      - {{uuid: {uuid}, gpuInstanceId: {}, computeInstanceId: 0, memoryTotalMiB: 9856}}\n", index + 1));
        }
        state
    };
    let scope = TestScope::new("dcgm-mig").await;
    let setup = exporter(&scope, "", HTTPD);
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(mig(&["MIG-aaaa"])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    ready(&daemon);
    daemon.set_nvml_state(&mig(&["MIG-aaaa", "MIG-bbbb"]));
    let restarted = daemon.wait_for_event(WAIT, "a restart for the MIG layout", |event| {
        event["event_type"] == "dcgm.restarted"
            && event["details"]["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("MIG layout"))
    });
    assert_eq!(restarted["details"]["container"], setup.container);
    ready(&daemon);
}
