//! `ds01-controller` as systemd and admins run it: flags, bad configuration, signals, `--once`.

use std::{process::Command, time::Duration};

use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope, binaries::binary};

#[test]
fn bad_flags_and_bad_specs_exit_64_before_doing_anything() {
    let output = Command::new(binary("ds01-controller"))
        .arg("--no-such-flag")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(64));
    let output = Command::new(binary("ds01-controller"))
        .args(["--gpu-poll-interval", "soon"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("invalid duration"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let specs = tempfile::tempdir().expect("tempdir");
    std::fs::write(specs.path().join("bad.yaml"), "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {name: x}\nspec: {port: high}\n").expect("write");
    let state = tempfile::tempdir().expect("tempdir");
    let output = Command::new(binary("ds01-controller"))
        .arg("--specs")
        .arg(specs.path())
        .arg("--state-dir")
        .arg(state.path())
        .arg("--event-log")
        .arg(state.path().join("events.jsonl"))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.yaml:4:14: spec.port"), "{stderr}");
    assert!(
        !state.path().join("events.jsonl").exists(),
        "nothing may start before the configuration is valid"
    );
}

#[tokio::test]
async fn once_writes_the_inventory_and_exits_0() {
    let scope = TestScope::new("controller-once").await;
    let id = scope
        .container(ContainerRequest::sleeper("seen").label("ds01.user", "erin"))
        .await;
    let state = tempfile::tempdir().expect("tempdir");
    // A policy whose runtime limit the container has passed: one pass decides the stop, and
    // dry-run only records it.
    let specs = state.path().join("specs-in");
    std::fs::create_dir(&specs).expect("mkdir");
    std::fs::write(
        specs.join("lab.yaml"),
        "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {name: lab}\nspec:\n  scope: all\n  defaults: {idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}\n  users:\n    erin: {maxRuntime: 1s}\n  notify: {tty: false}\n",
    )
    .expect("write spec");
    std::thread::sleep(Duration::from_millis(1500));
    let output = Command::new(binary("ds01-controller"))
        .args([
            "--once",
            "--dry-run",
            "--gpu-backend",
            "none",
            "--state-dir",
        ])
        .arg(state.path())
        .arg("--event-log")
        .arg(state.path().join("events.jsonl"))
        .arg("--specs")
        .arg(&specs)
        .output()
        .expect("run");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--once prints the status as JSON");
    let lab = printed["resources"]
        .as_array()
        .and_then(|resources| resources.iter().find(|resource| resource["name"] == "lab"))
        .expect("the policy's status");
    assert_eq!(lab["status"]["observedGeneration"], 1);
    let events = ds01_tests::daemon::read_events(&state.path().join("events.jsonl"));
    assert!(
        events
            .iter()
            .any(|event| event["event_type"] == "lifecycle.runtime_stop"
                && event["details"]["container_id"] == id[..12]),
        "the single pass reconciles the policy: {events:?}"
    );
    let inspected = scope
        .docker
        .inspect_container(&id, None)
        .await
        .expect("inspect");
    assert_eq!(
        inspected.state.and_then(|state| state.running),
        Some(true),
        "dry-run stopped nothing"
    );
    let inventory: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state.path().join("workload-inventory.json")).expect("inventory"),
    )
    .expect("json");
    assert_eq!(inventory["containers"][&id[..12]]["user"], "erin");
    let events = ds01_tests::daemon::read_events(&state.path().join("events.jsonl"));
    assert!(
        events
            .iter()
            .all(|event| event["details"]["dry_run"] == true),
        "dry-run events are marked"
    );
}

#[tokio::test]
async fn sigterm_drains_and_exits_0_and_a_restart_reports_nothing_twice() {
    let scope = TestScope::new("controller-restart").await;
    let known = scope.container(ContainerRequest::sleeper("known")).await;
    let mut daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_event(Duration::from_secs(15), "controller.started", |event| {
        event["event_type"] == "controller.started"
    });
    daemon.wait_for_inventory(Duration::from_secs(15), "a relist", |inventory| {
        inventory["docker"]["lastRelist"].is_string()
    });
    daemon.wait_for_event(Duration::from_secs(15), "the known container", |event| {
        event["details"]["container_id"] == known[..12]
    });
    let discovered_before = daemon
        .events()
        .iter()
        // Other tests create containers meanwhile: only this test's container counts.
        .filter(|event| {
            event["event_type"] == "detection.container_discovered"
                && event["details"]["container_id"] == known[..12]
        })
        .count();
    assert_eq!(discovered_before, 1);
    let started = std::time::Instant::now();
    assert_eq!(daemon.terminate(Duration::from_secs(25)), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(
        daemon
            .events()
            .iter()
            .any(|event| event["event_type"] == "controller.stopping")
    );

    // Restarted on the same state: containers it already knew are not rediscovered.
    let directory = daemon.stop_keeping_state();
    let daemon = Daemon::start_in(directory, DaemonOptions::default());
    daemon.wait_for_event(Duration::from_secs(15), "second controller.started", |_| {
        daemon
            .events()
            .iter()
            .filter(|event| event["event_type"] == "controller.started")
            .count()
            == 2
    });
    daemon.wait_for_inventory(Duration::from_secs(15), "a relist", |inventory| {
        inventory["docker"]["lastRelist"].is_string()
    });
    std::thread::sleep(Duration::from_millis(500));
    let discovered_after = daemon
        .events()
        .iter()
        // Other tests create containers meanwhile: only this test's container counts.
        .filter(|event| {
            event["event_type"] == "detection.container_discovered"
                && event["details"]["container_id"] == known[..12]
        })
        .count();
    assert_eq!(
        discovered_before, discovered_after,
        "a restart rediscovered containers it already knew"
    );
}

#[test]
fn specs_given_at_start_up_are_stored_and_reported_once() {
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let specs = repository.join("specs").display().to_string();
    let options = DaemonOptions {
        extra: vec!["--specs".into(), specs],
        ..DaemonOptions::default()
    };
    let daemon = Daemon::start(options.clone());
    daemon.wait_for_event(Duration::from_secs(15), "controller.started", |event| {
        event["event_type"] == "controller.started"
    });
    let applied: Vec<String> = daemon
        .events()
        .iter()
        .filter(|event| event["event_type"] == "spec.applied")
        .map(|event| {
            event["details"]["resource"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        applied,
        [
            "containerlifecyclepolicy/container-lifecycle",
            "dcgmexporter/dcgm-exporter",
            "gpuorphanpolicy/gpu-orphans"
        ]
    );
    let stored = daemon
        .root()
        .join("state/specs/dcgmexporter-dcgm-exporter.json");
    let form: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stored).expect("stored spec"))
            .expect("json");
    assert_eq!(form["generation"], 1);

    // The same specs again at the next start: nothing changed, nothing reported.
    let directory = daemon.stop_keeping_state();
    let daemon = Daemon::start_in(directory, options);
    daemon.wait_for_event(Duration::from_secs(15), "second start", |_| {
        daemon
            .events()
            .iter()
            .filter(|event| event["event_type"] == "controller.started")
            .count()
            == 2
    });
    let applied = daemon
        .events()
        .iter()
        .filter(|event| event["event_type"] == "spec.applied")
        .count();
    assert_eq!(applied, 3);
}

#[test]
fn sighup_re_applies_changed_specs_and_keeps_them_when_invalid() {
    let specs = tempfile::tempdir().expect("tempdir");
    let file = specs.path().join("orphans.yaml");
    std::fs::write(&file, "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata: {name: orphans}\nspec: {gracePeriod: 60s}\n").expect("write");
    let daemon = Daemon::start(DaemonOptions {
        extra: vec!["--specs".into(), specs.path().display().to_string()],
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(Duration::from_secs(15));
    let hup = |daemon: &Daemon| {
        let _ = Command::new("kill")
            .args(["-HUP", &daemon.child.id().to_string()])
            .status();
    };
    std::fs::write(&file, "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata: {name: orphans}\nspec: {gracePeriod: 5m}\n").expect("write");
    hup(&daemon);
    let configured =
        daemon.wait_for_event(Duration::from_secs(15), "configured by SIGHUP", |event| {
            event["event_type"] == "spec.applied" && event["details"]["outcome"] == "configured"
        });
    assert_eq!(configured["details"]["generation"], 2);
    std::fs::write(&file, "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata: {name: orphans}\nspec: {gracePeriod: later}\n").expect("write");
    hup(&daemon);
    daemon.wait_for_event(Duration::from_secs(15), "spec.rejected", |event| {
        event["event_type"] == "spec.rejected"
    });
    let (code, stdout, _) = daemon.ctl(&["status", "-o", "json"]);
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        status["resources"][0]["generation"], 2,
        "an invalid file leaves the applied spec as it was"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_indexable_fields() {
    let scope = TestScope::new("controller-json-logs").await;
    let id = scope
        .container(ContainerRequest::sleeper("logged").label("ds01.user", "lena"))
        .await;
    let state = tempfile::tempdir().expect("tempdir");
    let output = Command::new(binary("ds01-controller"))
        .args([
            "--once",
            "--dry-run",
            "--gpu-backend",
            "none",
            "--log-format",
            "json",
        ])
        .arg("--state-dir")
        .arg(state.path())
        .arg("--event-log")
        .arg(state.path().join("events.jsonl"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let discovered = lines
        .iter()
        .find(|line| {
            line["action"] == "detection.container_discovered"
                && line["container"]
                    .as_str()
                    .is_some_and(|name| name.ends_with("-logged"))
        })
        .unwrap_or_else(|| panic!("no discovery line for {id}:\n{stderr}"));
    assert_eq!(discovered["user"], "lena");
    assert_eq!(discovered["level"], "INFO");
    assert!(discovered["timestamp"].is_string());
}

#[test]
fn a_second_controller_on_the_same_state_dir_or_socket_exits_64_naming_the_first() {
    let first = Daemon::start(DaemonOptions::default());
    first.wait_for_socket(Duration::from_secs(30));
    let pid = first.child.id();
    let other = tempfile::tempdir().expect("tempdir");
    let attempts = [
        // Same state directory, its own socket.
        vec![
            "--state-dir".to_owned(),
            first.root().join("state").display().to_string(),
            "--socket".to_owned(),
            other.path().join("other.sock").display().to_string(),
        ],
        // Same socket, its own state directory.
        vec![
            "--state-dir".to_owned(),
            other.path().join("state").display().to_string(),
            "--socket".to_owned(),
            first.socket().display().to_string(),
        ],
    ];
    for arguments in attempts {
        let output = Command::new(binary("ds01-controller"))
            .args(&arguments)
            .args(["--gpu-backend", "none", "--metrics-addr", "127.0.0.1:0"])
            .arg("--event-log")
            .arg(other.path().join("events.jsonl"))
            .output()
            .expect("run a second controller");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{arguments:?}: {stderr}");
        assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");
        assert!(
            !other.path().join("events.jsonl").exists(),
            "the refused controller wrote events"
        );
    }
    // The first one is undisturbed.
    let (code, _, stderr) = first.ctl(&["status"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn an_unreadable_state_file_is_kept_aside_reported_and_never_replaced() {
    let directory = tempfile::tempdir().expect("tempdir");
    let state = directory.path().join("state");
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::write(
        state.join("controller-state.json"),
        b"{\"gpuOrphanPolicy\": {\"lab\": ",
    )
    .expect("write a broken state file");
    let daemon = Daemon::start_in(directory, DaemonOptions::default());
    daemon.wait_for_socket(Duration::from_secs(30));
    let event = daemon.wait_for_event(
        Duration::from_secs(10),
        "controller.state_unreadable",
        |event| event["event_type"] == "controller.state_unreadable",
    );
    let kept_as = event["details"]["kept_as"]
        .as_str()
        .expect("kept_as")
        .to_owned();
    assert_eq!(
        std::fs::read(&kept_as).expect("the unreadable file is kept"),
        b"{\"gpuOrphanPolicy\": {\"lab\": "
    );
    let (code, stdout, stderr) = daemon.ctl(&["status", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let status: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let condition = status["controller"]["conditions"]
        .as_array()
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|condition| condition["type"] == "StateFileReadable")
        })
        .cloned()
        .expect("a StateFileReadable condition");
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "KeptAside");
    assert!(
        condition["message"]
            .as_str()
            .is_some_and(|message| message.contains(&kept_as)),
        "{condition}"
    );
}
