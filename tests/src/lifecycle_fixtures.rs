//! Fixtures of the lifecycle tests: a policy with limits for one user,
//! a controller every local user can reach, alert files, events of one container.

use std::{os::unix::fs::PermissionsExt, time::Duration};

use serde_json::Value;

use crate::{ContainerRequest, Daemon, DaemonOptions, TestScope};

/// How long lifecycle notice tests wait for an effect.
pub const WAIT: Duration = Duration::from_secs(30);
pub use crate::cli_fixtures::NOBODY;

/// Writes `lifecycle.yaml` in `directory`: a policy `lab` (sample interval 1 s, scope all, no
/// default limits) giving `user` these limits (startupGrace 0 s, stopGracePeriod 1 s unless
/// given) plus `extra` spec lines; notices go to `/alerts/ds01-alerts` only. Returns its path.
#[must_use]
pub fn policy(directory: &std::path::Path, user: &str, limits: &str, extra: &str) -> String {
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
#[must_use]
pub fn started() -> Daemon {
    crate::cli_fixtures::started_for_everyone(DaemonOptions::default())
}

/// `ds01ctl apply -f path`, which must succeed.
pub fn apply(daemon: &Daemon, path: &str) {
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", path]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// A directory every user may write, for alert files.
#[must_use]
pub fn alerts_dir() -> tempfile::TempDir {
    let directory = tempfile::tempdir().expect("alerts");
    let _ = std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o777));
    directory
}

/// `request` with `alerts` mounted on `/alerts`.
#[must_use]
pub fn with_alerts(request: ContainerRequest, alerts: &tempfile::TempDir) -> ContainerRequest {
    let mut request = request;
    request
        .binds
        .push(format!("{}:/alerts", alerts.path().display()));
    request
}

/// The lines of `alerts/ds01-alerts` (none when absent).
#[must_use]
pub fn alert_lines(alerts: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_to_string(alerts.path().join("ds01-alerts"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The events of type `kind` about container `id`.
#[must_use]
pub fn events_for(daemon: &Daemon, id: &str, kind: &str) -> Vec<Value> {
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

/// Seconds from the time in `from` to the time in `to` (RFC 3339 strings).
#[must_use]
pub fn seconds_between(from: &Value, to: &Value) -> f64 {
    time(to).duration_since(time(from)).as_secs_f64()
}

/// When an event was written.
#[must_use]
pub fn at(event: &Value) -> jiff::Timestamp {
    event["timestamp"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .expect("timestamp")
}

/// When a stop was issued (its event is written once Docker has stopped the container).
#[must_use]
pub fn issued(event: &Value) -> jiff::Timestamp {
    event["details"]["issued_at"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .expect("issued_at")
}

/// Whether the container no longer exists.
pub async fn gone(scope: &TestScope, id: &str) -> bool {
    scope.docker.inspect_container(id, None).await.is_err()
}
