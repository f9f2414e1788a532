//! Notices users can act on, on real containers: a `warnBefore` warning at its lead time and
//! the "was stopped" notice after the stop, one exempt notice per idle episode instead of a
//! stop, `ds01ctl stop` (admins only; grace period, event, notice), and `ds01ctl notices` for
//! an owner who was away — shown once, at their next login.

use std::{
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// A policy giving `user` these limits; notices go to `/alerts/ds01-alerts` only.
fn policy(directory: &std::path::Path, user: &str, limits: &str, extra: &str) -> String {
    let path = directory.join("lifecycle.yaml");
    let grace = if limits.contains("stopGracePeriod") {
        ""
    } else {
        "stopGracePeriod: 1s, "
    };
    let text = format!(
        "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: lab}}\nspec:\n  sampleInterval: 1s\n  scope: all\n  defaults: {{idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {user}: {{startupGrace: 0s, {grace}{limits}}}\n  notify: {{tty: false, containerFile: /alerts/ds01-alerts}}\n{extra}"
    );
    std::fs::write(&path, text).expect("policy");
    path.display().to_string()
}

/// A controller whose socket every local user can reach.
fn started() -> Daemon {
    let daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    let _ = std::fs::set_permissions(daemon.root(), std::fs::Permissions::from_mode(0o755));
    daemon
}

fn apply(daemon: &Daemon, path: &str) {
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", path]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

fn alerts_dir() -> tempfile::TempDir {
    let directory = tempfile::tempdir().expect("alerts");
    let _ = std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o777));
    directory
}

fn with_alerts(request: ContainerRequest, alerts: &tempfile::TempDir) -> ContainerRequest {
    let mut request = request;
    request
        .binds
        .push(format!("{}:/alerts", alerts.path().display()));
    request
}

fn alert_lines(alerts: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_to_string(alerts.path().join("ds01-alerts"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn events_for(daemon: &Daemon, id: &str, kind: &str) -> Vec<Value> {
    daemon
        .events()
        .into_iter()
        .filter(|event| event["event_type"] == kind && event["details"]["container_id"] == id[..12])
        .collect()
}

fn time(value: &Value) -> jiff::Timestamp {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

fn seconds_between(from: &Value, to: &Value) -> f64 {
    time(to).duration_since(time(from)).as_secs_f64()
}

#[tokio::test]
async fn a_warn_before_warning_comes_its_lead_time_before_the_idle_stop_then_a_stopped_notice() {
    let scope = TestScope::new("notice-before").await;
    let user = format!("before{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    apply(
        &daemon,
        &policy(
            alerts.path(),
            &user,
            "idleTimeout: 10s, onIdle: stop, warnAt: {idle: []}, warnBefore: {idle: [4s]}",
            "",
        ),
    );
    let id = scope
        .container(with_alerts(
            ContainerRequest::sleeper("idle").label("ds01.user", &user),
            &alerts,
        ))
        .await;
    let stop = daemon.wait_for_event(WAIT, "the idle stop", |event| {
        event["event_type"] == "lifecycle.idle_stop" && event["details"]["container_id"] == id[..12]
    });
    let warnings = events_for(&daemon, &id, "lifecycle.idle_warning");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let warning = &warnings[0];
    assert_eq!(warning["details"]["before"], "4s");
    // 4 s before the stop, give or take one sample interval (1 s).
    let lead = seconds_between(&warning["timestamp"], &stop["details"]["issued_at"]);
    assert!(
        (3.0..=5.0).contains(&lead),
        "warned {lead:.2}s before the stop"
    );
    // The deadline it announced is the stop's (UTC in the event, local time in the text).
    let announced = seconds_between(
        &warning["details"]["deadline"],
        &stop["details"]["issued_at"],
    );
    assert!(
        announced.abs() <= 1.0,
        "the stop came {announced:.2}s off the announced deadline"
    );
    assert!(warning["details"]["deadline_local"].is_string());
    assert_eq!(stop["details"]["outcome"], "stopped");
    let lines = alert_lines(&alerts);
    assert_eq!(
        lines.len(),
        2,
        "the warning and the stop notice: {lines:#?}"
    );
    assert!(
        lines[0].contains("WARNING")
            && lines[0].contains("will be stopped at")
            && lines[0].contains(&format!("idleTimeout from users.{user}"))
            && lines[0].contains("keep-alive"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("was stopped")
            && lines[1].contains("idle")
            && lines[1].contains("docker start"),
        "{}",
        lines[1]
    );
}

#[tokio::test]
async fn an_exempt_users_idle_container_gets_one_notice_per_episode_and_is_not_stopped() {
    let scope = TestScope::new("notice-exempt").await;
    let user = format!("exempt{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    apply(
        &daemon,
        &policy(
            alerts.path(),
            &user,
            "idleTimeout: 3s, onIdle: stop",
            &format!(
                "  exemptions:\n    - {{user: {user}, exemptFrom: [idle], reason: thesis deadline}}\n"
            ),
        ),
    );
    // Idle ~6 s (one episode), busy ~3 s (the episode ends), then idle again (a second one).
    let id = scope
        .container(with_alerts(
            ContainerRequest::sleeper("exempt").label("ds01.user", &user).shell(
                "sleep 6; end=$(($(date +%s)+3)); while [ $(date +%s) -lt $end ]; do :; done; exec sleep 300",
            ),
            &alerts,
        ))
        .await;
    let started = Instant::now();
    while events_for(&daemon, &id, "lifecycle.exempt_notice").len() < 2 {
        assert!(
            started.elapsed() < WAIT,
            "not two exempt notices: {:#?}",
            daemon.events()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Several more passes of the second episode.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let notices = events_for(&daemon, &id, "lifecycle.exempt_notice");
    assert_eq!(notices.len(), 2, "one per episode: {notices:#?}");
    assert!(events_for(&daemon, &id, "lifecycle.idle_stop").is_empty());
    assert_eq!(
        scope.running(&id).await,
        Some(true),
        "an exempt container was stopped"
    );
    let lines = alert_lines(&alerts);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines.iter().all(|line| line.contains("NOTICE")
            && line.contains("you are exempt: thesis deadline")
            && line.contains("Nothing will be done")),
        "{lines:#?}"
    );
}

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

/// Sources the login snippet as nobody in an interactive shell; its output.
fn login_as_nobody(daemon: &Daemon) -> String {
    let snippet = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository")
        .join("deploy/profile.d/ds01-notices.sh");
    let ctl = ds01_tests::binaries::binary("ds01ctl");
    let output = std::process::Command::new(NOBODY[0])
        .args(&NOBODY[1..])
        .args(["sh", "-i", "-c", &format!(". {}", snippet.display())])
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", ctl.parent().expect("dir").display()),
        )
        .env("DS01_SOCKET", daemon.socket())
        .env("NO_COLOR", "1")
        .output()
        .expect("login");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn an_owner_who_was_away_sees_the_warning_and_the_stop_once_at_the_next_login() {
    let scope = TestScope::new("notice-away").await;
    let alerts = alerts_dir();
    let daemon = started();
    // The owner must be a user this host knows: ds01ctl is run as them (uid 65534).
    apply(
        &daemon,
        &policy(
            alerts.path(),
            "nobody",
            "idleTimeout: 6s, onIdle: stop, warnAt: {idle: [50]}",
            "",
        ),
    );
    let id = scope
        .container(with_alerts(
            ContainerRequest::sleeper("away").label("ds01.user", "nobody"),
            &alerts,
        ))
        .await;
    daemon.wait_for_event(WAIT, "the idle stop", |event| {
        event["event_type"] == "lifecycle.idle_stop" && event["details"]["container_id"] == id[..12]
    });

    let shown = login_as_nobody(&daemon);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "a heading, the warning and the stop:\n{shown}"
    );
    assert!(lines[0].contains("2 new notice(s) for nobody"), "{shown}");
    assert!(
        lines[1].contains("[ds01] WARNING") && lines[1].contains(&id[..12]),
        "{shown}"
    );
    assert!(
        lines[2].contains("[ds01] STOPPED") && lines[2].contains("was stopped"),
        "{shown}"
    );

    assert_eq!(login_as_nobody(&daemon), "", "shown twice");
    let (code, stdout, stderr) = daemon.ctl_as(&NOBODY, &["notices"]);
    assert_eq!((code, stdout.trim()), (0, "No new notices."), "{stderr}");
    let (_, stdout, _) = daemon.ctl_as(&NOBODY, &["notices", "--all", "-o", "json"]);
    let all: Value = serde_json::from_str(&stdout).expect("json");
    let kinds: Vec<&str> = all["notices"]
        .as_array()
        .expect("notices")
        .iter()
        .map(|notice| {
            assert_eq!(notice["seen"], true);
            notice["eventType"].as_str().unwrap_or_default()
        })
        .collect();
    assert_eq!(kinds, ["lifecycle.idle_warning", "lifecycle.idle_stop"]);
    // Root sees root's notices, not nobody's.
    let (_, stdout, _) = daemon.ctl(&["notices"]);
    assert_eq!(stdout.trim(), "No new notices.");
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
