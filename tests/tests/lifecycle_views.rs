//! What the lifecycle controller shows before it acts: `describe container` and `get
//! containers` with limits, sources, signals and the next action; a keep-alive file found through
//! the container's root; `apply --dry-run` previews.

use std::time::{Duration, Instant};

use ds01_tests::{
    ContainerRequest, TestScope,
    lifecycle_fixtures::{WAIT, alerts_dir, apply, events_for, policy, started, with_alerts},
};
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
