//! What the lifecycle controller shows before it acts: `describe container` and `get
//! containers` with limits, sources, signals and the next action; a keep-alive file found through
//! the container's root; `apply --dry-run` previews, which agree with enforcement.

use std::time::{Duration, Instant};

use ds01_tests::{
    ContainerRequest, DaemonOptions, TestScope,
    cli_fixtures::started_for_everyone,
    dcgm_fixtures::{GPU0, nvml},
    lifecycle_fixtures::{WAIT, alerts_dir, apply, events_for, policy, started, with_alerts},
};
use futures::StreamExt;
use serde_json::Value;

#[tokio::test]
async fn describe_shows_limits_with_sources_signals_and_the_next_action() {
    let scope = TestScope::new("life-describe").await;
    let user = format!("describe{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    apply(
        &daemon,
        &policy(alerts.path(), &user, "idleTimeout: 1h, maxRuntime: 2h", ""),
    );
    let id = scope
        .container(with_alerts(
            ContainerRequest::sleeper("watched").label("ds01.user", &user),
            &alerts,
        ))
        .await;
    let started = Instant::now();
    let described = loop {
        let (code, stdout, stderr) = daemon.ctl(&["describe", "container", &id[..12]]);
        // Right after the create the controller may not have seen the container yet.
        assert!(
            code == 0 || stderr.contains("no container named"),
            "{stderr}"
        );
        if stdout.contains("idle since        20") {
            break stdout;
        }
        assert!(started.elapsed() < WAIT, "never idle:\n{stdout}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for expected in [
        format!("idleTimeout       1h         from users.{user}"),
        format!("maxRuntime        2h         from users.{user}"),
        "removeAfterStop   none       from defaults".to_owned(),
        "cpu ".to_owned(),
        "next action at    20".to_owned(),
    ] {
        assert!(
            described.contains(&expected),
            "missing `{expected}`:\n{described}"
        );
    }
    let (_, listed, _) = daemon.ctl(&["get", "containers", "-o", "json"]);
    let listed: Value = serde_json::from_str(&listed).expect("json");
    let watched = listed["containers"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == id[..12]))
        .cloned()
        .expect("listed");
    assert!(
        watched["idleSince"].is_string() && watched["nextDeadline"].is_string(),
        "{watched}"
    );
    let (_, table, _) = daemon.ctl(&["get", "containers"]);
    let row = table
        .lines()
        .find(|line| line.contains("watched"))
        .expect("row");
    assert!(row.chars().count() <= 80, "{row}");
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|header| header.contains("IDLE") && header.contains("DEADLINE")),
        "{table}"
    );
}

#[tokio::test]
async fn a_keep_alive_file_inside_a_container_without_mounts_is_found_through_its_root() {
    let scope = TestScope::new("life-exec").await;
    let user = format!("exec{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    apply(
        &daemon,
        &policy(alerts.path(), &user, "idleTimeout: 3s, onIdle: stop", ""),
    );
    let kept = scope
        .container(
            ContainerRequest::sleeper("kept")
                .label("ds01.user", &user)
                .shell("mkdir -p /workspace && touch /workspace/.keep-alive && exec sleep 300"),
        )
        .await;
    let control = scope
        .container(ContainerRequest::sleeper("control").label("ds01.user", &user))
        .await;
    daemon.wait_for_event(WAIT, "the control container's stop", |event| {
        event["event_type"] == "lifecycle.idle_stop"
            && event["details"]["container_id"] == control[..12]
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let running = scope
        .docker
        .inspect_container(&kept, None)
        .await
        .expect("exists")
        .state
        .and_then(|state| state.running);
    assert_eq!(
        running,
        Some(true),
        "the kept-alive container was stopped: {:#?}",
        daemon
            .events()
            .iter()
            .filter(|event| event["details"]["container_id"] == kept[..12])
            .collect::<Vec<_>>()
    );
    assert!(
        events_for(&daemon, &kept, "lifecycle.idle_stop").is_empty(),
        "stopped despite a fresh keep-alive file"
    );
}

#[tokio::test]
async fn apply_dry_run_of_a_new_policy_lists_what_it_would_stop_and_when() {
    let scope = TestScope::new("life-preview").await;
    let user = format!("preview{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    let id = scope
        .container(ContainerRequest::sleeper("previewed").label("ds01.user", &user))
        .await;
    // Running, not only created: a created container has no runtime to preview.
    daemon.wait_for_inventory(WAIT, "the running container", |inventory| {
        inventory["containers"][&id[..12]]["status"] == "running"
    });
    let path = policy(
        alerts.path(),
        &user,
        "maxRuntime: 2h, idleTimeout: 30m, onIdle: stopAndRemove",
        "",
    );
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", &path, "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("containerlifecyclepolicy/lab created (dry run)"),
        "{stdout}"
    );
    let name = scope.name("previewed");
    let runtime = stdout
        .lines()
        .find(|line| line.contains(&name) && line.contains("maxRuntime 2h"))
        .unwrap_or_else(|| panic!("no runtime stop previewed:\n{stdout}"));
    assert!(
        runtime.contains(&format!("from users.{user}")) && runtime.contains(" stop "),
        "{runtime}"
    );
    assert!(
        stdout.lines().any(|line| line.contains(&name)
            && line.contains("stop and remove")
            && line.contains("idleTimeout 30m")),
        "{stdout}"
    );
    let (_, status, _) = daemon.ctl(&["status", "-o", "json"]);
    assert!(
        status.contains("\"resources\": []"),
        "a dry run stored the policy: {status}"
    );
}

/// Issue #17's case: `startupGrace: 6s`, `idleTimeout: 4s` and a 0.5 high-demand factor in force
/// make an idle stop due 8 s after start. The dry run previews it there, and enforcement issues
/// it there (Docker's own `kill` event), each within a second.
#[tokio::test]
async fn the_dry_run_preview_and_the_enforced_idle_stop_agree_under_high_demand() {
    let scope = TestScope::new("life-agree").await;
    let user = format!("agree{}", std::process::id());
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("lifecycle.yaml");
    // Threshold 0 %: with one GPU known to NVML, the factor is in force whatever is held.
    std::fs::write(
        &path,
        format!(
            "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: lab}}\nspec:\n  sampleInterval: 1s\n  scope: all\n  defaults: {{idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {user}: {{startupGrace: 6s, idleTimeout: 4s, stopGracePeriod: 1s, onIdle: stop}}\n  highDemand: {{threshold: 0, idleTimeoutFactor: 0.5}}\n  notify: {{tty: false, containerFile: /alerts/ds01-alerts}}\n"
        ),
    )
    .expect("policy");
    let path = path.display().to_string();
    let daemon = started_for_everyone(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        ..DaemonOptions::default()
    });
    let id = scope
        .container(ContainerRequest::sleeper("agree").label("ds01.user", &user))
        .await;
    let started_at: jiff::Timestamp = scope
        .docker
        .inspect_container(&id, None)
        .await
        .expect("inspect")
        .state
        .and_then(|state| state.started_at)
        .and_then(|text| text.parse().ok())
        .expect("started");
    let due = started_at + jiff::SignedDuration::from_secs(8);
    daemon.wait_for_inventory(WAIT, "the running container", |inventory| {
        inventory["containers"][&id[..12]]["status"] == "running"
    });

    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", &path, "--dry-run", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).expect("dry-run JSON");
    let name = scope.name("agree");
    let previewed = answer["preview"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|item| item["container"] == name.as_str() && item["action"] == "stop")
        .unwrap_or_else(|| panic!("no idle stop previewed: {answer}"));
    let previewed_at: jiff::Timestamp = previewed["at"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("no time: {previewed}"));
    let preview_off = previewed_at.duration_since(due).as_secs_f64();

    // Docker's own record of the stop: the first `kill` it reports for the container.
    let filters = std::collections::HashMap::from([
        ("container".to_owned(), vec![id.clone()]),
        ("event".to_owned(), vec!["kill".to_owned()]),
    ]);
    let mut kills = scope.docker.events(Some(
        bollard::query_parameters::EventsOptionsBuilder::new()
            .filters(&filters)
            .build(),
    ));
    apply(&daemon, &path);
    let killed = tokio::time::timeout(WAIT, kills.next())
        .await
        .expect("no kill within 30 s")
        .and_then(Result::ok)
        .and_then(|event| event.time_nano)
        .expect("Docker's kill event");
    let killed_at = jiff::Timestamp::from_nanosecond(i128::from(killed)).expect("time");
    let enforce_off = killed_at.duration_since(due).as_secs_f64();
    eprintln!(
        "idle stop due at start + 8 s: previewed {preview_off:+.2} s, issued {enforce_off:+.2} s (Docker's kill event)"
    );
    assert!(
        preview_off.abs() <= 1.0,
        "previewed {preview_off:+.2} s off: {previewed}"
    );
    assert!(enforce_off.abs() <= 1.0, "issued {enforce_off:+.2} s off");
    daemon.wait_for_event(WAIT, "the idle stop", |event| {
        event["event_type"] == "lifecycle.idle_stop" && event["details"]["container_id"] == id[..12]
    });
}
