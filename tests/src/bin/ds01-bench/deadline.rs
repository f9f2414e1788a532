//! Deadline accuracy (DESIGN §8 item 3): containers get a `maxRuntime`; each
//! `lifecycle.runtime_stop` event carries its `deadline` and `issued_at`; the difference is how
//! late the stop was issued.

use std::time::Duration;

use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};

use super::percentile;

/// Runtime limit given to every container.
const LIMIT_SECONDS: u64 = 5;

/// `deadline`: N containers started 250 ms apart, each stopped at its own deadline.
pub async fn deadline_accuracy(containers: usize) {
    let scope = TestScope::new("bench-deadline").await;
    let user = format!("bench{}", std::process::id());
    let daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(Duration::from_secs(30));
    let policy = daemon.root().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: bench}}\nspec:\n  sampleInterval: 60s\n  scope: all\n  defaults: {{idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {user}: {{maxRuntime: {LIMIT_SECONDS}s, stopGracePeriod: 1s, warnAt: {{runtime: [50]}}}}\n  notify: {{tty: false}}\n"
        ),
    )
    .expect("policy");
    let (code, _, stderr) = daemon.ctl(&["apply", "-f", &policy.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    for index in 0..containers {
        scope
            .container(ContainerRequest::sleeper(&format!("d{index}")).label("ds01.user", &user))
            .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    daemon.wait_for_event(
        Duration::from_secs(LIMIT_SECONDS + 60),
        "every runtime stop",
        |_| {
            daemon
                .events()
                .iter()
                .filter(|event| event["event_type"] == "lifecycle.runtime_stop")
                .count()
                >= containers
        },
    );
    let mut late: Vec<f64> = Vec::new();
    for event in daemon
        .events()
        .iter()
        .filter(|event| event["event_type"] == "lifecycle.runtime_stop")
    {
        let time = |field: &str| {
            event["details"][field]
                .as_str()
                .and_then(|text| text.parse::<jiff::Timestamp>().ok())
        };
        let (Some(deadline), Some(issued)) = (time("deadline"), time("issued_at")) else {
            continue;
        };
        let millis = issued.duration_since(deadline).as_secs_f64() * 1000.0;
        if millis > 1000.0 {
            eprintln!(
                "late by {millis:.0} ms: {} (deadline {deadline})",
                event["details"]["container"]
            );
        }
        late.push(millis);
    }
    late.sort_by(f64::total_cmp);
    println!(
        "runtime limit reached -> stop issued: n={} p50={:.1}ms p99={:.1}ms max={:.1}ms (sampleInterval 60s, so every stop was scheduled for its deadline)",
        late.len(),
        percentile(&late, 0.5),
        percentile(&late, 0.99),
        late.last().copied().unwrap_or(f64::NAN)
    );
}
