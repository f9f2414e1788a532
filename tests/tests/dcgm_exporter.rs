//! The DcgmExporter controller against the real engine, with a fake exporter (busybox httpd
//! serving a metrics file that names the fake GPUs) and the fake NVML library.

use std::time::{Duration, Instant};

use ds01_tests::{
    Daemon, DaemonOptions, TestScope,
    dcgm_fixtures::{
        GPU0, GPU1, HTTPD, WAIT, container_id, exporter, nvml, ready, status, wait_for_condition,
        wait_running_other_than,
    },
};
use serde_json::Value;

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
