//! The control API through the real `ds01ctl`: apply outcomes and generations, all-or-nothing,
//! peer-credential authorization, an unreachable daemon, and abusive clients.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use ds01_tests::{
    Daemon,
    cli_fixtures::{ORPHANS, WAIT, spec_file, started},
};
use serde_json::Value;

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
