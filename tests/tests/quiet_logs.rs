//! Quiet logs: a `--dry-run` controller facing decisions that stay the same — an orphan it
//! would kill, a host process of an unallowed user, a GPU free of processes and holders, an
//! idle container past its limit, an exited one past `removeAfterStop` — records each decision
//! once, not at every reconcile. (A dry run decides no reset: a GPU is reset only after this
//! policy's SIGTERMs in enforce mode, see the orphan planner.)

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use ds01_tests::{
    ContainerRequest, Daemon, DaemonOptions, TestScope,
    host_process::{Proc, TestCgroup},
    orphan_policy::{apply, gpu},
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const QUIET: Duration = Duration::from_secs(60);
const GPU0: &str = "GPU-66666666-0000-4000-8000-000000000000";
const GPU1: &str = "GPU-66666666-0000-4000-8000-000000000001";
const GPU2: &str = "GPU-66666666-0000-4000-8000-000000000002";

/// What an event is about: its type and its subject (container, pid or GPU).
fn decision(event: &Value) -> String {
    let details = &event["details"];
    let subject = ["container_id", "pid", "gpu", "uuid"]
        .iter()
        .find_map(|key| details.get(*key).filter(|value| !value.is_null()))
        .map_or_else(String::new, Value::to_string);
    format!(
        "{} {subject} {}",
        event["event_type"].as_str().unwrap_or_default(),
        details["reason"].as_str().unwrap_or_default()
    )
}

fn counts(events: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(decision(event)).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_dry_run_controller_records_each_unchanged_decision_once_over_a_quiet_minute() {
    let scope = TestScope::new("quiet").await;
    let directory = tempfile::tempdir().expect("tempdir");
    let user = format!("quiet{}", std::process::id());
    // An orphan: a process left in the cgroup of a container that was removed.
    let vanished = scope
        .container(ContainerRequest::sleeper("vanished").created_only())
        .await;
    let cgroup = TestCgroup::named_like(&vanished, "quiet");
    let mut orphan = Proc::spawn(&[], "exec sleep 300");
    cgroup.adopt(orphan.pid());
    // A host process of a user `allowedHostUsers` does not list.
    let mut host = Proc::spawn(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        "exec sleep 300",
    );
    // GPU2 has no process and no holder.
    let nvml = format!(
        "gpus:\n{}{}{}",
        gpu(GPU0, false, &[orphan.pid()]),
        gpu(GPU1, false, &[host.pid()]),
        gpu(GPU2, false, &[])
    );
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml),
        extra: vec!["--dry-run".to_owned()],
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    // Removed once the controller knows it: a container it never saw is unknown, not dead.
    daemon.wait_for_inventory(WAIT, "the vanished container", |inventory| {
        inventory["containers"].get(&vanished[..12]).is_some()
    });
    scope
        .docker
        .remove_container(
            &vanished,
            None::<bollard::query_parameters::RemoveContainerOptions>,
        )
        .await
        .expect("remove the vanished container");
    let idle = scope
        .container(ContainerRequest::sleeper("idle").label("ds01.user", &user))
        .await;
    let exited = scope
        .container(
            ContainerRequest::sleeper("exited")
                .label("ds01.user", &user)
                .shell("exit 0"),
        )
        .await;
    let orphans = ds01_tests::orphan_policy::policy(
        directory.path(),
        "  hostProcesses: kill\n  allowedHostUsers: []\n",
    );
    apply(&daemon, &orphans);
    let lifecycle = directory.path().join("lifecycle.yaml");
    std::fs::write(
        &lifecycle,
        format!(
            "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: quiet}}\nspec:\n  sampleInterval: 1s\n  scope: all\n  defaults: {{idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {user}: {{startupGrace: 0s, stopGracePeriod: 1s, idleTimeout: 2s, removeAfterStop: 2s, warnAt: {{idle: [50]}}}}\n  notify: {{tty: false}}\n"
        ),
    )
    .expect("policy");
    apply(&daemon, &lifecycle.display().to_string());

    // The first decisions.
    for (what, predicate) in [
        (
            "the idle stop",
            Box::new(|event: &Value| {
                event["event_type"] == "lifecycle.idle_stop"
                    && event["details"]["container_id"] == idle[..12]
            }) as Box<dyn Fn(&Value) -> bool>,
        ),
        (
            "the removal",
            Box::new(|event: &Value| {
                event["event_type"] == "lifecycle.removed"
                    && event["details"]["container_id"] == exited[..12]
            }),
        ),
        (
            "the orphan's (dry-run) SIGTERM",
            Box::new(|event: &Value| {
                event["event_type"] == "gpu.orphan_terminated"
                    && event["details"]["pid"] == orphan.pid()
            }),
        ),
        (
            "the host process's (dry-run) SIGTERM",
            Box::new(|event: &Value| {
                event["event_type"] == "gpu.orphan_terminated"
                    && event["details"]["pid"] == host.pid()
            }),
        ),
    ] {
        daemon.wait_for_event(WAIT, what, predicate);
    }
    // Whatever follows at once from those (a reset skipped with processes left) settles.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = daemon.events();
    let started = Instant::now();
    while started.elapsed() < QUIET {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let after = daemon.events();
    let quiet_minute = &after[before.len()..];
    assert!(
        quiet_minute.is_empty(),
        "{} events in a minute where nothing changed: {:#?}\nevents by decision: {:#?}",
        quiet_minute.len(),
        counts(quiet_minute),
        counts(&after)
    );
    let decisions: Vec<Value> = after
        .iter()
        .filter(|event| {
            event["event_type"].as_str().is_some_and(|kind| {
                ["gpu.", "lifecycle.", "dcgm."]
                    .iter()
                    .any(|family| kind.starts_with(family))
            })
        })
        .cloned()
        .collect();
    let repeated: Vec<(String, usize)> = counts(&decisions)
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .collect();
    assert!(
        repeated.is_empty(),
        "decisions recorded more than once: {repeated:#?}"
    );
    assert!(orphan.alive() && host.alive(), "dry run signalled");
    assert_eq!(scope.running(&idle).await, Some(true), "dry run stopped");
}
