//! History and filters (issue #16): `ds01ctl events` reads the event log on disk, rotated and
//! compressed files included, across daemon restarts, with `--since/--until/--type/--user/
//! --container/--limit/--summary`, a non-admin seeing only their own events; `get containers`
//! is filtered on the controller by `--user`, `--gpu` and `-l`.

use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant, SystemTime},
};

use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

fn event_line(minutes_ago: i64, kind: &str, user: &str, details: Value) -> String {
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(minutes_ago);
    json!({"timestamp": format!("{at:.3}"), "event_type": kind, "schema_version": "1",
           "user": user, "source": "ds01-controller", "details": details})
    .to_string()
        + "\n"
}

fn age(path: &std::path::Path, minutes: u64) {
    let at = SystemTime::now() - Duration::from_secs(minutes * 60);
    std::fs::File::options()
        .append(true)
        .open(path)
        .and_then(|file| file.set_modified(at))
        .expect("set mtime");
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect()
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["event_type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn events_come_from_the_log_on_disk_across_restarts_and_rotations() {
    let daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    let directory = tempfile::tempdir().expect("tempdir");
    let spec = directory.path().join("orphans.yaml");
    std::fs::write(
        &spec,
        "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata:\n  name: orphans\nspec: {}\n",
    )
    .expect("write");
    assert_eq!(
        daemon.ctl(&["apply", "-f", &spec.display().to_string()]).0,
        0
    );
    let root = daemon.stop_keeping_state();

    // What logrotate left: yesterday's file (delaycompress) and an older compressed one.
    let rotated = root.path().join("events.jsonl.1");
    std::fs::write(
        &rotated,
        event_line(
            5,
            "lifecycle.idle_stop",
            "carol",
            json!({"container": "old-job", "container_id": "abcdef123456"}),
        ) + &event_line(
            4,
            "lifecycle.idle_warning",
            "nobody",
            json!({"container": "mine", "container_id": "999999999999"}),
        ),
    )
    .expect("write");
    age(&rotated, 4);
    let compressed = root.path().join("events.jsonl.2.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&compressed).expect("create"),
        flate2::Compression::default(),
    );
    encoder
        .write_all(
            event_line(
                20,
                "lifecycle.runtime_stop",
                "carol",
                json!({"container": "older-job"}),
            )
            .as_bytes(),
        )
        .expect("write");
    encoder.finish().expect("finish");
    age(&compressed, 19);

    let daemon = Daemon::start_in(root, DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    let _ = std::fs::set_permissions(daemon.root(), std::fs::Permissions::from_mode(0o755));
    daemon.wait_for_event(WAIT, "the second start", |event| {
        event["event_type"] == "controller.started"
            && daemon
                .events()
                .iter()
                .filter(|e| e["event_type"] == "controller.started")
                .count()
                == 2
    });

    let (code, stdout, stderr) = daemon.ctl(&["events", "--since", "10m", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let recent = types(&json_lines(&stdout));
    assert!(
        recent.contains(&"spec.applied".to_owned()),
        "from before the restart: {recent:?}"
    );
    assert_eq!(
        recent.iter().filter(|t| *t == "controller.started").count(),
        2,
        "{recent:?}"
    );
    assert!(
        recent.contains(&"lifecycle.idle_stop".to_owned()),
        "rotated file: {recent:?}"
    );
    assert!(
        !recent.contains(&"lifecycle.runtime_stop".to_owned()),
        "older than 10m: {recent:?}"
    );
    let (_, stdout, _) = daemon.ctl(&[
        "events",
        "--since",
        "1h",
        "--type",
        "lifecycle.",
        "-o",
        "json",
    ]);
    assert_eq!(
        types(&json_lines(&stdout)),
        [
            "lifecycle.runtime_stop",
            "lifecycle.idle_stop",
            "lifecycle.idle_warning"
        ],
        "the compressed file too, oldest first"
    );
    let (_, stdout, _) = daemon.ctl(&["events", "--until", "10m", "-o", "json"]);
    assert_eq!(types(&json_lines(&stdout)), ["lifecycle.runtime_stop"]);

    for wanted in ["old-job", "abcdef12"] {
        let (_, stdout, _) = daemon.ctl(&["events", "--container", wanted, "-o", "json"]);
        assert_eq!(
            types(&json_lines(&stdout)),
            ["lifecycle.idle_stop"],
            "--container {wanted}"
        );
    }
    let (_, stdout, _) = daemon.ctl(&["events", "--user", "carol", "-o", "json"]);
    assert_eq!(
        types(&json_lines(&stdout)),
        ["lifecycle.runtime_stop", "lifecycle.idle_stop"]
    );

    let (code, stdout, stderr) = daemon.ctl(&["events", "--limit", "1", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json_lines(&stdout).len(), 1);
    assert!(
        stderr.contains("older matching events not shown"),
        "{stderr}"
    );

    let (_, stdout, _) = daemon.ctl(&["events", "--summary", "-o", "json"]);
    let summary: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(summary["byType"]["controller.started"], 2, "{summary}");
    assert_eq!(summary["byUser"]["carol"], 2, "{summary}");
    let (code, table, _) = daemon.ctl(&["events", "--summary"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("lifecycle.idle_stop") && table.contains("carol"),
        "{table}"
    );

    // A non-admin sees their own events only.
    let (code, theirs, stderr) = daemon.ctl_as(&NOBODY, &["events", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        types(&json_lines(&theirs)),
        ["lifecycle.idle_warning"],
        "{theirs}"
    );
    let (_, theirs, _) = daemon.ctl_as(&NOBODY, &["events", "--user", "carol", "-o", "json"]);
    assert!(theirs.trim().is_empty(), "{theirs}");
}

const GPU0: &str = "GPU-44444444-0000-4000-8000-000000000000";

#[tokio::test]
async fn get_containers_is_filtered_by_user_gpu_and_label_and_events_by_container() {
    let scope = TestScope::new("history-filters").await;
    scope
        .container(
            // A GPU device request (creatable without an NVIDIA runtime; a label would be a
            // claim, which the GPU filter does not count).
            ContainerRequest::sleeper("alicejob")
                .label("ds01.user", "alice")
                .label("team", "vision")
                .gpus(0, &[GPU0])
                .created_only(),
        )
        .await;
    scope
        .container(
            ContainerRequest::sleeper("bobjob")
                .label("ds01.user", "bob")
                .label("team", "nlp"),
        )
        .await;
    let nvml = format!("gpus:\n  - uuid: {GPU0}\n    name: A100\n    memoryTotalMiB: 40960\n");
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    let alice = scope.name("alicejob");
    let bob = scope.name("bobjob");
    let listed = |arguments: &[&str]| -> Vec<String> {
        let mut full = vec!["get", "containers", "-o", "json"];
        full.extend_from_slice(arguments);
        let (code, stdout, stderr) = daemon.ctl(&full);
        assert_eq!(code, 0, "{arguments:?}: {stderr}");
        let list: Value = serde_json::from_str(&stdout).expect("json");
        list["containers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|container| container["name"].as_str().map(str::to_owned))
            .filter(|name| *name == alice || *name == bob)
            .collect()
    };
    let started = Instant::now();
    while listed(&[]).len() < 2 {
        assert!(started.elapsed() < WAIT, "the containers never showed up");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(listed(&["--user", "alice"]), std::slice::from_ref(&alice));
    assert_eq!(listed(&["--user", "bob"]), std::slice::from_ref(&bob));
    assert_eq!(listed(&["-l", "team=nlp"]), std::slice::from_ref(&bob));
    assert!(listed(&["-l", "team=nlp", "-l", "ds01.user=alice"]).is_empty());
    let started = Instant::now();
    while listed(&["--gpu", "0"]) != [alice.clone()] {
        assert!(
            started.elapsed() < WAIT,
            "GPU 0 never attributed to {alice}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(listed(&["--gpu", GPU0]), std::slice::from_ref(&alice));
    let (code, table, _) = daemon.ctl(&["get", "containers", "--user", "bob"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("-bobjob") && !table.contains("-alicejob"),
        "{table}"
    );
    let (code, _, stderr) = daemon.ctl(&["get", "gpus", "--user", "bob"]);
    assert_eq!(
        code, 64,
        "filters are for containers and processes: {stderr}"
    );

    let (_, stdout, _) = daemon.ctl(&["events", "--container", &bob, "-o", "json"]);
    let events = json_lines(&stdout);
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|event| event["details"]["container"] == bob.as_str()),
        "{stdout}"
    );
    let (_, stdout, _) = daemon.ctl(&["events", "--user", "alice", "-o", "json"]);
    let events = json_lines(&stdout);
    assert!(
        !events.is_empty() && events.iter().all(|event| event["user"] == "alice"),
        "{stdout}"
    );
}
