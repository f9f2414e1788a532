//! Reading through the real `ds01ctl`: events listed, filtered and followed; `get` tables in
//! 80 columns with other users hidden; `describe container` to its owner only.

use ds01_tests::{
    Daemon, DaemonOptions,
    cli_fixtures::{ORPHANS, WAIT, spec_file, started},
};
use serde_json::Value;

#[tokio::test]
async fn events_are_listed_filtered_and_followed() {
    let daemon = started();
    let directory = tempfile::tempdir().expect("tempdir");
    let file = spec_file(directory.path(), "orphans.yaml", ORPHANS);
    assert_eq!(daemon.ctl(&["apply", "-f", &file]).0, 0);
    let (code, stdout, stderr) = daemon.ctl(&["events", "--type", "spec.", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["event_type"], "spec.applied");
    assert_eq!(lines[0]["user"], "root");
    let (_, table, _) = daemon.ctl(&["events", "--since", "1h"]);
    assert!(
        table.contains("controller.started") && table.contains("resource=gpuorphanpolicy/orphans"),
        "{table}"
    );

    // Another user sees only events about themselves: neither root's nor controller-wide ones.
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(daemon.root())
        .status();
    let (code, theirs, stderr) = daemon.ctl_as(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        &["events"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !theirs.contains("controller.started") && !theirs.contains("spec.applied"),
        "{theirs}"
    );

    // --follow prints new events as they happen.
    let mut follower = std::process::Command::new(ds01_tests::binaries::binary("ds01ctl"))
        .args([
            "events",
            "--follow",
            "--since",
            "0s",
            "--type",
            "detection.container_discovered",
            "-o",
            "json",
        ])
        .env("DS01_SOCKET", daemon.socket())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("follow");
    let stdout = follower.stdout.take().expect("stdout");
    let (lines, followed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let scope = ds01_tests::TestScope::new("events-follow").await;
    let id = scope
        .container(ds01_tests::ContainerRequest::sleeper("followed").created_only())
        .await;
    // Other tests create containers meanwhile: every followed line is a discovery, and ours
    // is among them.
    let deadline = std::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = followed.recv_timeout(left) else {
            break false;
        };
        let event: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not an event: {line:?}"));
        assert_eq!(event["event_type"], "detection.container_discovered");
        if event["details"]["container_id"] == id[..12] {
            break true;
        }
        seen.push(line);
    };
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(found, "our container was not followed; saw {seen:?}");
}

#[tokio::test]
async fn get_lists_containers_gpus_and_processes_in_80_columns_and_hides_other_users() {
    let scope = ds01_tests::TestScope::new("get-views").await;
    let mine = scope
        .container(
            ds01_tests::ContainerRequest::sleeper("rootjob")
                .label("ds01.user", "root")
                .label("ds01.gpu.uuid", "GPU-22222222-0000-4000-8000-000000000001"),
        )
        .await;
    scope
        .container(ds01_tests::ContainerRequest::sleeper("alicejob").label("ds01.user", "alice"))
        .await;
    let pid = scope
        .docker
        .inspect_container(&mine, None)
        .await
        .expect("inspect")
        .state
        .and_then(|state| state.pid)
        .expect("pid");
    let nvml = format!(
        "gpus:\n  - uuid: GPU-22222222-0000-4000-8000-000000000000\n    name: A100\n    memoryTotalMiB: 40960\n    processes: [{{pid: {pid}, usedMemoryMiB: 300}}]\n  - uuid: GPU-22222222-0000-4000-8000-000000000001\n    name: A100\n    memoryTotalMiB: 40960\n"
    );
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    daemon.wait_for_inventory(WAIT, "both containers and the process", |inventory| {
        inventory["containers"]
            .as_object()
            .is_some_and(|containers| containers.len() >= 2)
            && inventory["gpu_processes"]
                .as_array()
                .is_some_and(|processes| !processes.is_empty())
    });
    for what in ["containers", "gpus", "processes", "specs"] {
        let (code, stdout, stderr) = daemon.ctl(&["get", what]);
        assert_eq!(code, 0, "{what}: {stderr}");
        for line in stdout.lines() {
            assert!(
                line.chars().count() <= 80,
                "`get {what}` line over 80 columns: {line:?}"
            );
        }
    }
    let (_, containers, _) = daemon.ctl(&["get", "containers"]);
    assert!(
        containers.contains("-rootjob") && containers.contains("-alicejob"),
        "{containers}"
    );
    let (_, gpus, _) = daemon.ctl(&["get", "gpus"]);
    let second = gpus
        .lines()
        .find(|line| line.starts_with("1 "))
        .expect("gpu 1 row");
    assert!(
        !second.contains("rootjob"),
        "a GPU label is a claim, not a hold: {gpus}"
    );
    let (_, processes, _) = daemon.ctl(&["get", "processes", "-o", "json"]);
    let processes: Value = serde_json::from_str(&processes).expect("json");
    let listed = &processes["processes"][0];
    assert_eq!(
        (
            listed["pid"].as_i64(),
            listed["class"].as_str(),
            listed["user"].as_str()
        ),
        (Some(pid), Some("container"), Some("root"))
    );

    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(daemon.root())
        .status();
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let (code, theirs, stderr) = daemon.ctl_as(&nobody, &["get", "containers"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !theirs.contains("rootjob") && !theirs.contains("alicejob"),
        "{theirs}"
    );
    assert!(stderr.contains("more belong to other users"), "{stderr}");
}

#[tokio::test]
async fn describe_container_shows_owner_origin_gpus_and_events_to_its_owner_only() {
    let scope = ds01_tests::TestScope::new("describe").await;
    let id = scope
        .container(
            ds01_tests::ContainerRequest::sleeper("described")
                .label("ds01.user", "root")
                .label("com.docker.compose.project", "lab"),
        )
        .await;
    let daemon = started();
    daemon.wait_for_inventory(WAIT, "the container", |inventory| {
        inventory["containers"].get(&id[..12]).is_some()
    });
    let (code, stdout, stderr) = daemon.ctl(&["describe", "container", &id[..8]]);
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "Owner:         root (from label:ds01.user, claimed)",
        "Origin:        compose",
        "Status:        running",
        "GPUs:          none",
        "detection.container_discovered",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    let name = scope.name("described");
    let (code, _, _) = daemon.ctl(&["describe", "container", &name]);
    assert_eq!(code, 0, "by name");
    let (code, _, stderr) = daemon.ctl(&["describe", "container", "no-such-container"]);
    assert_eq!(code, 1, "{stderr}");
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(daemon.root())
        .status();
    let (code, _, stderr) = daemon.ctl_as(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        &["describe", "container", &name],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("belongs to another user"), "{stderr}");
    let (code, man, _) = daemon.ctl(&["man"]);
    assert_eq!(code, 0);
    assert!(
        man.contains(".TH ds01ctl"),
        "{}",
        &man[..man.len().min(200)]
    );
}
