//! The control API through the real `ds01ctl`: apply outcomes and generations, all-or-nothing,
//! peer-credential authorization, an unreachable daemon, and abusive clients.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use ds01_tests::{Daemon, DaemonOptions};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

fn started() -> Daemon {
    let daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    daemon
}

fn spec_file(directory: &std::path::Path, name: &str, text: &str) -> String {
    let path = directory.join(name);
    std::fs::write(&path, text).expect("write spec");
    path.display().to_string()
}

const ORPHANS: &str = "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata:\n  name: orphans\nspec:\n  gracePeriod: 60s\n";

fn generation(daemon: &Daemon, name: &str) -> Value {
    let (code, stdout, stderr) = daemon.ctl(&["status", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let status: Value = serde_json::from_str(&stdout).expect("json");
    status["resources"]
        .as_array()
        .and_then(|resources| {
            resources
                .iter()
                .find(|r| r["name"] == name)
                .map(|r| r["generation"].clone())
        })
        .unwrap_or(Value::Null)
}

#[test]
fn apply_reports_created_unchanged_and_configured_with_generations() {
    let daemon = started();
    let directory = tempfile::tempdir().expect("tempdir");
    let file = spec_file(directory.path(), "orphans.yaml", ORPHANS);
    // Nothing applied yet: no lone table header, a remark on stderr instead.
    let (code, stdout, stderr) = daemon.ctl(&["get", "specs"]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    assert!(stderr.contains("No specs applied"), "{stderr}");
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", &file]);
    assert_eq!(
        (code, stdout.trim()),
        (0, "gpuorphanpolicy/orphans created"),
        "{stderr}"
    );
    let (code, stdout, _) = daemon.ctl(&["apply", "-f", &file]);
    assert_eq!(
        (code, stdout.trim()),
        (0, "gpuorphanpolicy/orphans unchanged")
    );
    assert_eq!(generation(&daemon, "orphans"), 1);
    spec_file(
        directory.path(),
        "orphans.yaml",
        &ORPHANS.replace("60s", "2m"),
    );
    let (code, stdout, _) = daemon.ctl(&["apply", "-f", &file, "--dry-run"]);
    assert_eq!(
        (code, stdout.trim()),
        (0, "gpuorphanpolicy/orphans configured (dry run)")
    );
    assert_eq!(
        generation(&daemon, "orphans"),
        1,
        "a dry run stores nothing"
    );
    let (code, stdout, _) = daemon.ctl(&["apply", "-f", &file]);
    assert_eq!(
        (code, stdout.trim()),
        (0, "gpuorphanpolicy/orphans configured")
    );
    assert_eq!(generation(&daemon, "orphans"), 2);
    // The orphan controller reconciles the new generation: observedGeneration catches up.
    let started = std::time::Instant::now();
    loop {
        let (_, stdout, _) = daemon.ctl(&["status", "-o", "json"]);
        let status: Value = serde_json::from_str(&stdout).expect("json");
        if status["resources"][0]["observedGeneration"] == 2 {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "observedGeneration never caught up: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let applied = daemon
        .events()
        .iter()
        .filter(|event| event["event_type"] == "spec.applied")
        .count();
    assert_eq!(applied, 2, "one spec.applied per real change");
    let (code, stdout, _) = daemon.ctl(&["delete", "GpuOrphanPolicy", "orphans"]);
    assert_eq!(
        (code, stdout.trim()),
        (0, "gpuorphanpolicy/orphans deleted")
    );
    let (code, _, stderr) = daemon.ctl(&["delete", "GpuOrphanPolicy", "orphans"]);
    assert_eq!(code, 1, "{stderr}");
}

#[test]
fn a_set_with_one_invalid_document_changes_nothing_and_exits_1() {
    let daemon = started();
    let directory = tempfile::tempdir().expect("tempdir");
    let good = spec_file(directory.path(), "a.yaml", ORPHANS);
    let bad = spec_file(
        directory.path(),
        "b.yaml",
        "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {name: dcgm}\nspec: {gpus: none}\n---\napiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {name: other}\nspec:\n  stopTimeout: forever\n",
    );
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", &good, &bad]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("b.yaml:10:16: spec.stopTimeout") && stderr.contains("document 2"),
        "{stderr}"
    );
    let (_, stdout, _) = daemon.ctl(&["status", "-o", "json"]);
    let status: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        status["resources"],
        serde_json::json!([]),
        "nothing may be applied from an invalid set"
    );
}

#[test]
fn a_non_admin_may_read_but_not_apply() {
    let daemon = started();
    // The socket lives in a private temporary directory: let others reach it, as /run/ds01 does.
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(daemon.root())
        .status();
    let directory = tempfile::tempdir().expect("tempdir");
    let file = spec_file(directory.path(), "orphans.yaml", ORPHANS);
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(directory.path())
        .status();
    let _ = std::process::Command::new("chmod")
        .arg("644")
        .arg(&file)
        .status();
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let (code, _, stderr) = daemon.ctl_as(&nobody, &["apply", "-f", &file]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("may not change specs") && stderr.contains("ds01-admin"),
        "{stderr}"
    );
    let (code, stdout, stderr) = daemon.ctl_as(&nobody, &["status"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Docker"), "{stdout}");
    let (code, stdout, _) = daemon.ctl(&["apply", "-f", &file]);
    assert_eq!(
        (code, stdout.trim()),
        (0, "gpuorphanpolicy/orphans created"),
        "root may apply"
    );
}

#[test]
fn an_unreachable_controller_gives_a_one_line_hint_and_exit_2() {
    let ctl = ds01_tests::binaries::binary("ds01ctl");
    let output = std::process::Command::new(ctl)
        .args(["--socket", "/nonexistent/ds01.sock", "status"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the controller at /nonexistent/ds01.sock")
            && stderr.contains("hint: is ds01-controller running"),
        "{stderr}"
    );
}

fn raw_request(daemon: &Daemon, bytes: &[u8]) -> String {
    let mut stream = UnixStream::connect(daemon.socket()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = stream.write_all(bytes);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn garbage_oversized_raw_and_stalled_clients_leave_the_daemon_serving() {
    let mut daemon = started();
    let garbage = raw_request(&daemon, b"POST /v1/apply HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{not json");
    assert!(
        garbage.starts_with("HTTP/1.1 400") && garbage.contains("\"code\":\"bad_request\""),
        "{garbage}"
    );
    let big = vec![b'x'; 9 << 20];
    let mut request = format!(
        "POST /v1/apply HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        big.len()
    )
    .into_bytes();
    request.extend_from_slice(&big);
    let oversized = raw_request(&daemon, &request);
    assert!(
        oversized.starts_with("HTTP/1.1 413") && oversized.contains("payload_too_large"),
        "{}",
        &oversized[..oversized.len().min(300)]
    );
    let _ = raw_request(&daemon, &[0xff, 0x00, 0x13, 0x37, b'\n', b'\n']);
    // A client that skips local validation is held to the same rules on the server.
    let body = serde_json::json!({ "files": [{ "name": "direct.yaml", "text": "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {name: x}\nspec: {port: 0}\n" }] }).to_string();
    let invalid = raw_request(&daemon, format!("POST /v1/apply HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
    assert!(
        invalid.starts_with("HTTP/1.1 422")
            && invalid.contains("invalid_specs")
            && invalid.contains("spec.port"),
        "{invalid}"
    );
    // A client that never finishes its request, held open while others are served.
    let mut stalled = UnixStream::connect(daemon.socket()).expect("connect");
    stalled
        .write_all(b"POST /v1/apply HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        .expect("write");
    let unknown = raw_request(
        &daemon,
        b"GET /v2/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        unknown.starts_with("HTTP/1.1 404") && unknown.contains("not_found"),
        "{unknown}"
    );
    let (code, _, stderr) = daemon.ctl(&["status"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(daemon.is_running());
    drop(stalled);
}

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

#[test]
fn diff_exits_0_for_applied_content_and_1_for_a_change_showing_the_value() {
    let daemon = started();
    let directory = tempfile::tempdir().expect("tempdir");
    let file = spec_file(directory.path(), "orphans.yaml", ORPHANS);
    let (code, stdout, _) = daemon.ctl(&["diff", "-f", &file]);
    assert_eq!(code, 1, "a resource not yet applied is a change");
    assert!(
        stdout.contains("+++ submitted/gpuorphanpolicy/orphans"),
        "{stdout}"
    );
    assert_eq!(daemon.ctl(&["apply", "-f", &file]).0, 0);
    let (code, stdout, stderr) = daemon.ctl(&["diff", "-f", &file]);
    assert_eq!((code, stdout.trim()), (0, ""), "{stderr}");
    spec_file(
        directory.path(),
        "orphans.yaml",
        &ORPHANS.replace("60s", "2m"),
    );
    let (code, stdout, _) = daemon.ctl(&["diff", "-f", &file]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("-  gracePeriod: 1m") && stdout.contains("+  gracePeriod: 2m"),
        "{stdout}"
    );
    spec_file(
        directory.path(),
        "orphans.yaml",
        &ORPHANS.replace("60s", "never"),
    );
    assert_eq!(
        daemon.ctl(&["diff", "-f", &file]).0,
        2,
        "an invalid spec is an error, not a change"
    );
}

#[test]
fn wait_gives_up_at_its_timeout_with_a_non_zero_exit() {
    let daemon = started();
    let directory = tempfile::tempdir().expect("tempdir");
    let file = spec_file(directory.path(), "orphans.yaml", ORPHANS);
    assert_eq!(daemon.ctl(&["apply", "-f", &file]).0, 0);
    let started = std::time::Instant::now();
    let (code, _, stderr) = daemon.ctl(&[
        "wait",
        "--for=condition=Ready",
        "gpuorphanpolicy/orphans",
        "--timeout",
        "1s",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Without a GPU backend the orphan policy cannot observe, so it is not Ready.
    assert!(
        stderr.contains("timed out after 1s")
            && stderr.contains("last seen: Ready=False (ObservationIncomplete)"),
        "{stderr}"
    );
    let (code, stdout, _) = daemon.ctl(&[
        "wait",
        "--for=condition=Ready=False",
        "gpuorphanpolicy/orphans",
        "--timeout",
        "5s",
    ]);
    assert_eq!(
        (code, stdout.trim()),
        (0, "gpuorphanpolicy/orphans condition met"),
        "returns as soon as the condition holds"
    );
    let (code, stdout, _) = daemon.ctl(&["get", "specs", "-o", "yaml"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("kind: GpuOrphanPolicy"), "{stdout}");
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
        "Owner:         root (from label:ds01.user)",
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
