//! What events and reconciles do to the families.

use ds01_spec::EventType;
use serde_json::json;

use super::*;

fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|line| line.starts_with(prefix))
}

#[test]
fn families_without_live_sources_are_served_at_zero_with_build_info() {
    let metrics = Metrics::new();
    let text = metrics.encode();
    assert!(
        line(&text, "ds01_build_info{version=\"").is_some_and(|line| line.ends_with(" 1")),
        "{text}"
    );
    for family in [
        "ds01_reconciles",
        "ds01_reconcile_duration_seconds",
        "ds01_event_to_action_seconds",
        "ds01_docker_connected",
        "ds01_docker_events_received",
        "ds01_gpu_orphans_killed",
        "ds01_gpu_resets",
        "ds01_lifecycle_actions",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
}

#[test]
fn action_events_count_into_their_families_and_dry_runs_do_not() {
    let metrics = Metrics::new();
    metrics.on_event(EventType::OrphanKilled, &json!({ "pid": 1 }));
    metrics.on_event(
        EventType::OrphanKilled,
        &json!({ "pid": 2, "dry_run": true }),
    );
    metrics.on_event(EventType::ResetFailed, &json!({}));
    metrics.on_event(
        EventType::DcgmRestarted,
        &json!({ "container": "dcgm-exporter" }),
    );
    // Issued 250 ms after its deadline; the event itself comes after the grace period.
    let deadline = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(10);
    let issued = deadline + jiff::SignedDuration::from_millis(250);
    metrics.on_event(EventType::RuntimeStop,
        &json!({ "container": "x", "deadline": format!("{deadline:.3}"), "issued_at": format!("{issued:.3}") }),
    );
    let text = metrics.encode();
    for expected in [
        "ds01_gpu_orphans_killed_total 1",
        "ds01_gpu_resets_total{result=\"failed\"} 1",
        "ds01_gpu_resets_total{result=\"ok\"} 0",
        "ds01_dcgm_exporter_restarts_total{container=\"dcgm-exporter\"} 1",
        "ds01_lifecycle_actions_total{action=\"runtime_stop\",reason=\"runtime\"} 1",
        "ds01_lifecycle_actions_total{action=\"idle_stop\",reason=\"idle\"} 0",
        "ds01_events_total{event_type=\"gpu.orphan_killed\"} 2",
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "{expected} not in\n{text}"
        );
    }
    // The stop was issued 250 ms after its deadline: counted in the 0.256 s bucket, not below.
    assert!(
        text.contains(
            "ds01_event_to_action_seconds_bucket{le=\"0.128\",controller=\"container-lifecycle\"} 0"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "ds01_event_to_action_seconds_bucket{le=\"0.512\",controller=\"container-lifecycle\"} 1"
        ),
        "{text}"
    );
}

#[test]
fn reconciles_are_counted_by_result_with_their_duration() {
    let metrics = Metrics::new();
    metrics.finished("gpu-orphans", Duration::from_millis(3), Finished::Ok);
    metrics.finished("gpu-orphans", Duration::from_secs(2), Finished::TimedOut);
    let text = metrics.encode();
    assert!(text.contains("ds01_reconciles_total{controller=\"gpu-orphans\",result=\"ok\"} 1"));
    assert!(
        text.contains("ds01_reconciles_total{controller=\"gpu-orphans\",result=\"timeout\"} 1")
    );
    assert!(text.contains("ds01_reconcile_errors_total{controller=\"gpu-orphans\"} 1"));
    assert!(
        text.contains("ds01_reconcile_duration_seconds_count{controller=\"gpu-orphans\"} 2"),
        "{text}"
    );
}

#[test]
fn containers_by_state_and_exporter_counters_start_at_zero() {
    let metrics = Metrics::new();
    metrics.zero_exporter("ds01-dcgm-exporter");
    let text = metrics.encode();
    for expected in [
        "ds01_containers{origin=\"docker\",state=\"running\",gpu=\"true\"} 0",
        "ds01_containers{origin=\"devcontainer\",state=\"exited\",gpu=\"false\"} 0",
        "ds01_dcgm_exporter_restarts_total{container=\"ds01-dcgm-exporter\"} 0",
        "ds01_dcgm_exporter_crashloops_total{container=\"ds01-dcgm-exporter\"} 0",
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "{expected} not in\n{text}"
        );
    }
    // The first crash loop is an increase from 0, not a series appearing at 1.
    metrics.on_event(
        EventType::DcgmCrashloop,
        &json!({ "container": "ds01-dcgm-exporter" }),
    );
    assert!(
        metrics.encode().lines().any(|line| line
            == "ds01_dcgm_exporter_crashloops_total{container=\"ds01-dcgm-exporter\"} 1")
    );
}

/// Runs `promtool check metrics` on `text`: `None` when promtool is not installed.
fn promtool_check_metrics(text: &str) -> Option<(bool, String)> {
    use std::{
        io::Write,
        process::{Command, Stdio},
    };
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => panic!("promtool: {error}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("promtool");
    Some((
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    ))
}

#[test]
fn promtool_accepts_the_text_format_with_every_family() {
    let metrics = Metrics::new();
    metrics.zero_exporter("ds01-dcgm-exporter");
    metrics.on_event(EventType::OrphanKilled, &json!({ "pid": 1 }));
    metrics.finished("inventory", Duration::from_millis(2), Finished::Ok);
    let text = super::super::exposition::prometheus_text(&metrics.encode());
    match promtool_check_metrics(&text) {
        None => eprintln!(
            "SKIPPED: promtool is not installed (Debian package prometheus); the text format was not linted"
        ),
        Some((clean, said)) => assert!(clean, "promtool check metrics:\n{said}\n{text}"),
    }
}
