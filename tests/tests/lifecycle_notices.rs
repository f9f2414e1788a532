//! Notices users can act on, on real containers: a `warnBefore` warning at its lead time and
//! the "was stopped" notice after the stop, one exempt notice per idle episode instead of a
//! stop, and `ds01ctl notices` for an owner who was away — shown once, at their next login.

use std::time::{Duration, Instant};

use ds01_tests::{
    ContainerRequest, Daemon, TestScope,
    lifecycle_fixtures::{
        NOBODY, WAIT, alert_lines, alerts_dir, apply, events_for, policy, seconds_between, started,
        with_alerts,
    },
};
use serde_json::Value;

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
    // An exemption is honoured only when the kernel vouches for the owner: a real account, and
    // the container runs as its uid.
    let account =
        ds01_tests::accounts::TestAccount::create("exempt").expect("useradd (needs root)");
    let user = account.user.clone();
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
            ContainerRequest::sleeper("exempt")
                .label("ds01.user", &user)
                .run_as(account.uid())
                .shell(
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
            // Run as nobody: notices are kept only for an owner the kernel vouches for.
            ContainerRequest::sleeper("away")
                .label("ds01.user", "nobody")
                .run_as(65534),
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
