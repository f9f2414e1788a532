//! `ds01ctl stop CONTAINER --reason TEXT` on real containers: admins only, the covering
//! policy's grace period, `lifecycle.manual_stop` with the admin and the reason, the owner's
//! notice, protected containers only with `--force`, and the event of a stop a killed
//! controller left unrecorded written by the next one.

use std::time::{Duration, Instant};

use ds01_tests::{
    ContainerRequest, Daemon, DaemonOptions, TestScope,
    lifecycle_fixtures::{
        NOBODY, WAIT, alert_lines, alerts_dir, apply, policy, seconds_between, started, with_alerts,
    },
};
use serde_json::Value;

#[tokio::test]
async fn an_admin_stops_a_container_with_a_reason_and_an_unprivileged_user_cannot() {
    let scope = TestScope::new("notice-stop").await;
    let user = format!("manual{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    apply(
        &daemon,
        &policy(alerts.path(), &user, "stopGracePeriod: 2s", ""),
    );
    // `sleep` as PID 1 ignores SIGTERM: the stop takes the whole grace period.
    let id = scope
        .container(with_alerts(
            ContainerRequest::sleeper("target").label("ds01.user", &user),
            &alerts,
        ))
        .await;
    let protected = scope
        .container(
            ContainerRequest::sleeper("protected")
                .label("ds01.user", &user)
                .label("ds01.protected", "true"),
        )
        .await;
    let name = scope.name("target");
    daemon.wait_for_inventory(WAIT, "the containers", |inventory| {
        inventory["containers"].get(&id[..12]).is_some()
            && inventory["containers"].get(&protected[..12]).is_some()
    });

    let (code, stdout, stderr) =
        daemon.ctl_as(&NOBODY, &["stop", &name, "--reason", "maintenance"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("may not stop containers"), "{stderr}");
    let (code, _, stderr) = daemon.ctl(&["stop", &protected[..12], "--reason", "maintenance"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("protected by label ds01.protected=true") && stderr.contains("--force"),
        "{stderr}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(scope.running(&id).await, Some(true), "refused, yet stopped");
    assert_eq!(scope.running(&protected).await, Some(true));
    assert!(
        daemon
            .events()
            .iter()
            .all(|event| event["event_type"] != "lifecycle.manual_stop"),
        "a refused stop was recorded"
    );

    let (code, stdout, stderr) = daemon.ctl(&["stop", &name, "--reason", "maintenance"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("is being stopped")
            && stdout.contains("after 2s")
            && stdout.contains(&format!("users.{user}")),
        "{stdout}"
    );
    let stopped = daemon.wait_for_event(WAIT, "lifecycle.manual_stop", |event| {
        event["event_type"] == "lifecycle.manual_stop"
            && event["details"]["container_id"] == id[..12]
    });
    let details = &stopped["details"];
    assert_eq!(stopped["user"], user.as_str());
    assert_eq!(
        (
            &details["by"],
            &details["reason"],
            &details["grace"],
            &details["outcome"]
        ),
        (
            &Value::from("root"),
            &Value::from("maintenance"),
            &Value::from("2s"),
            &Value::from("stopped")
        )
    );
    let took = seconds_between(&details["issued_at"], &stopped["timestamp"]);
    assert!(
        took >= 1.5,
        "the grace period was not given: stopped in {took:.2}s"
    );
    assert_eq!(scope.running(&id).await, Some(false));
    let lines = alert_lines(&alerts);
    assert!(
        lines.last().is_some_and(|line| line.contains("was stopped")
            && line.contains("an administrator (root) stopped it: maintenance")
            && line.contains("docker start")),
        "{lines:#?}"
    );

    let (code, stdout, stderr) = daemon.ctl(&[
        "stop",
        &protected[..12],
        "--reason",
        "disk full",
        "--force",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let answer: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(answer["grace"], "2s");
    let forced = daemon.wait_for_event(WAIT, "the forced stop", |event| {
        event["event_type"] == "lifecycle.manual_stop"
            && event["details"]["container_id"] == protected[..12]
    });
    assert_eq!(forced["details"]["forced"], true);
    daemon.wait_for_inventory(WAIT, "the stop seen", |inventory| {
        inventory["containers"][&id[..12]]["status"] == "exited"
    });
    let (code, _, stderr) = daemon.ctl(&["stop", &name, "--reason", "again"]);
    assert_eq!(code, 1, "stopping a stopped container: {stderr}");
    assert!(stderr.contains("not running"), "{stderr}");
}

#[tokio::test]
async fn a_manual_stop_a_killed_controller_left_unrecorded_is_recorded_by_the_next_without_any_policy()
 {
    let scope = TestScope::new("notice-kill").await;
    let user = format!("leftover{}", std::process::id());
    let id = scope
        .container(ContainerRequest::sleeper("stopped").label("ds01.user", &user))
        .await;
    scope.docker.kill_container(&id, None).await.expect("kill");
    let directory = tempfile::tempdir().expect("tempdir");
    let state = directory.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    // What a controller killed between issuing `ds01ctl stop` and writing its event leaves.
    let left = serde_json::json!({ "containerLifecycle": { format!("@manual/{id}"): {
        "idleWarned": [], "runtimeWarned": [], "exemptReported": false,
        "unrecordedStop": {
            "event": "lifecycle.manual_stop",
            "user": user,
            "details": { "container_id": &id[..12], "by": "root", "reason": "maintenance", "issued_at": "2026-01-01T00:00:00.010Z" },
        },
    }}});
    std::fs::write(state.join("controller-state.json"), left.to_string()).expect("state");
    let daemon = Daemon::start_in(directory, DaemonOptions::default());
    let recorded = daemon.wait_for_event(WAIT, "the left-over manual stop", |event| {
        event["event_type"] == "lifecycle.manual_stop"
            && event["details"]["container_id"] == id[..12]
    });
    assert_eq!(recorded["details"]["recorded_after_restart"], true);
    assert_eq!(recorded["details"]["reason"], "maintenance");
    assert_eq!(recorded["user"], user.as_str());
    let state_file = daemon.root().join("state/controller-state.json");
    let settled = Instant::now();
    while std::fs::read_to_string(&state_file).is_ok_and(|text| text.contains("@manual/")) {
        assert!(settled.elapsed() < WAIT, "the left-over record was kept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
