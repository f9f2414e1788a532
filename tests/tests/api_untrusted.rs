//! The control API against untrusted local users (issue #13): a non-admin's `apply --dry-run`
//! bombs (a `membersFile` that is a device or a FIFO, a YAML alias bomb) cost bounded time and
//! memory while root is served; the admin check comes from the group database at accept time;
//! other users' container names are counted, not shown; whatever users put in labels reaches
//! the terminal escaped; files the daemon creates are not world-readable.

use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use ds01_tests::{
    Daemon, DaemonOptions,
    accounts::TestAccount,
    cli_fixtures::{NOBODY, started_for_everyone as started},
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Sends a raw HTTP request as `wrapper` (e.g. nobody); returns (status, JSON body, time).
fn raw_as(wrapper: &[&str], daemon: &Daemon, request: &[u8]) -> (Option<u16>, Value, Duration) {
    let helper = env!("CARGO_BIN_EXE_ds01-raw-request");
    let started = Instant::now();
    let mut command = Command::new(wrapper[0]);
    command
        .args(&wrapper[1..])
        .arg(helper)
        .arg(daemon.socket())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = command.spawn().expect("run the raw-request helper");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request)
        .expect("send");
    let output = child.wait_with_output().expect("answer");
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok());
    let body = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, body, elapsed)
}

fn dry_run_request(spec: &str) -> Vec<u8> {
    let body = json!({"files": [{"name": "bomb.yaml", "text": spec}], "dryRun": true}).to_string();
    format!(
        "POST /v1/apply HTTP/1.1\r\nHost: ds01\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn members_file_policy(path: &str) -> String {
    format!(
        "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata:\n  name: bomb\nspec:\n  groups:\n    student:\n      membersFile: {path}\n"
    )
}

/// The 700-byte "billion laughs".
fn alias_bomb() -> String {
    let mut text = String::from(
        "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata: {name: bomb}\nspec:\n  systemProcesses: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for level in 1..9 {
        let items = [format!("*a{}", level - 1).as_str(); 10].join(", ");
        text.push_str(&format!("x{level}: &a{level} [{items}]\n"));
    }
    text
}

fn root_status_within(daemon: &Daemon, limit: Duration) {
    let started = Instant::now();
    let (code, _, stderr) = daemon.ctl(&["status", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        started.elapsed() < limit,
        "root's status took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_non_admins_dry_run_bombs_get_4xx_within_2s_while_root_is_served() {
    let mut daemon = started(DaemonOptions::default());
    let directory = tempfile::tempdir().expect("tempdir");
    let fifo = directory.path().join("members.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let bomb = alias_bomb();
    assert!(bomb.len() < 800, "{}", bomb.len());
    let cases = [
        (
            "/dev/zero",
            members_file_policy("/dev/zero"),
            "character device",
        ),
        (
            "a FIFO",
            members_file_policy(&fifo.display().to_string()),
            "FIFO",
        ),
        ("an alias bomb", bomb, "100000 nodes"),
    ];
    // Root keeps asking while the bombs go off.
    let socket = daemon.socket();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let ctl = ds01_tests::binaries::binary("ds01ctl");
        std::thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let status = Command::new(&ctl)
                    .args(["status", "-o", "json"])
                    .env("DS01_SOCKET", &socket)
                    .stdout(Stdio::null())
                    .status()
                    .expect("status");
                assert!(status.success());
                slowest = slowest.max(started.elapsed());
                std::thread::sleep(Duration::from_millis(50));
            }
            slowest
        })
    };
    for (what, spec, reason) in &cases {
        let (status, body, elapsed) = raw_as(&NOBODY, &daemon, &dry_run_request(spec));
        assert!(
            status.is_some_and(|code| (400..500).contains(&code)),
            "{what}: {status:?} {body}"
        );
        assert!(elapsed < Duration::from_secs(2), "{what} took {elapsed:?}");
        eprintln!("{what}: {status:?} in {elapsed:?}");
        assert!(body.to_string().contains(reason), "{what}: {body}");
        root_status_within(&daemon, Duration::from_secs(1));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let slowest = watcher.join().expect("watcher");
    assert!(slowest < Duration::from_secs(1), "root waited {slowest:?}");
    let rss = daemon.rss_kib();
    eprintln!("root's slowest status: {slowest:?}; daemon RSS {rss} KiB");
    assert!(rss > 0 && rss < 100 * 1024, "daemon RSS {rss} KiB");
    // Through ds01ctl too: a user error (exit 1), said plainly.
    let spec = directory.path().join("zero.yaml");
    std::fs::write(&spec, members_file_policy("/dev/zero")).expect("write");
    let _ = std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o755));
    let _ = std::fs::set_permissions(&spec, std::fs::Permissions::from_mode(0o644));
    let (code, _, stderr) = daemon.ctl_as(
        &NOBODY,
        &["apply", "--dry-run", "-f", &spec.display().to_string()],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("character device"), "{stderr}");
    assert!(daemon.is_running());
    assert_eq!(daemon.terminate(WAIT), Some(0));
}

/// A GpuOrphanPolicy of about `kib` KiB (a long `systemProcesses` list).
fn large_policy(name: &str, kib: usize) -> String {
    let mut text = format!(
        "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata: {{name: {name}}}\nspec:\n  systemProcesses:\n"
    );
    let mut index = 0;
    while text.len() < kib * 1024 {
        text.push_str(&format!("    - proc{index:08}\n"));
        index += 1;
    }
    text
}

#[test]
fn a_non_admins_large_or_concurrent_dry_runs_are_refused_or_served_in_turn() {
    let daemon = started(DaemonOptions::default());
    // Over the non-admin cap: refused from its declared length, before the body is read.
    let (status, body, elapsed) = raw_as(
        &NOBODY,
        &daemon,
        &dry_run_request(&large_policy("big", 300)),
    );
    assert_eq!(status, Some(413), "{body}");
    assert!(body.to_string().contains("262144"), "{body}");
    eprintln!("300 KiB dry run by nobody: 413 in {elapsed:?}");
    // Eight at once just under the cap: each is answered (in turn, or told to retry), the
    // daemon's memory stays small and root is served throughout.
    let request = dry_run_request(&large_policy("many", 240));
    let answers: Vec<(Option<u16>, Value, Duration)> = std::thread::scope(|scope| {
        let running: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| raw_as(&NOBODY, &daemon, &request)))
            .collect();
        root_status_within(&daemon, Duration::from_secs(1));
        running
            .into_iter()
            .map(|thread| thread.join().expect("request"))
            .collect()
    });
    for (status, body, elapsed) in &answers {
        assert!(
            matches!(status, Some(200 | 503)),
            "{status:?} after {elapsed:?}: {body}"
        );
        if *status == Some(503) {
            assert_eq!(body["error"]["code"], "busy", "{body}");
        }
    }
    let served = answers
        .iter()
        .filter(|(status, ..)| *status == Some(200))
        .count();
    let rss = daemon.rss_kib();
    eprintln!("8 concurrent 240 KiB dry runs by nobody: {served} served, daemon RSS {rss} KiB");
    assert!(served >= 1, "none served");
    assert!(rss > 0 && rss < 100 * 1024, "daemon RSS {rss} KiB");
    root_status_within(&daemon, Duration::from_secs(1));
}

#[test]
fn a_non_admins_dry_run_reads_no_members_file_and_says_so() {
    let daemon = started(DaemonOptions::default());
    let directory = tempfile::tempdir().expect("tempdir");
    let members = directory.path().join("student.members");
    std::fs::write(&members, "alice\n").expect("write");
    let spec = members_file_policy(&members.display().to_string());
    let (status, body, _) = raw_as(&NOBODY, &daemon, &dry_run_request(&spec));
    assert_eq!(status, Some(200), "{body}");
    let notes = body["previewNotes"].to_string();
    assert!(
        notes.contains("was not read") && notes.contains("non-admin"),
        "{body}"
    );
    // Root's dry run reads it.
    let (status, body, _) = raw_as(&["env"], &daemon, &dry_run_request(&spec));
    assert_eq!(status, Some(200), "{body}");
    assert!(body.get("previewNotes").is_none(), "{body}");
}

#[test]
fn a_supplementary_member_of_the_admin_group_may_apply_and_others_may_not() {
    let Some(account) = TestAccount::create_in_group("u") else {
        panic!("this test needs useradd and groupadd (run as root)");
    };
    let admin_group = account.group.clone().expect("the admin group");
    let daemon = started(DaemonOptions {
        extra: vec!["--admin-group".into(), admin_group.clone()],
        ..DaemonOptions::default()
    });
    let directory = tempfile::tempdir().expect("tempdir");
    let spec = directory.path().join("orphans.yaml");
    std::fs::write(
        &spec,
        "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata:\n  name: orphans\nspec: {}\n",
    )
    .expect("write");
    let _ = std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o755));
    let _ = std::fs::set_permissions(&spec, std::fs::Permissions::from_mode(0o644));
    let spec = spec.display().to_string();
    let uid = account.id("-u");
    let primary = account.id("-g");
    let admin_gid = Command::new("getent")
        .args(["group", &admin_group])
        .output()
        .ok()
        .and_then(|output| {
            String::from_utf8_lossy(&output.stdout)
                .split(':')
                .nth(2)
                .map(str::to_owned)
        })
        .expect("admin gid");
    // A member by the group database, whatever groups the process holds.
    let member = [
        "setpriv".to_owned(),
        format!("--reuid={uid}"),
        format!("--regid={primary}"),
        "--clear-groups".to_owned(),
    ];
    let member: Vec<&str> = member.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = daemon.ctl_as(&member, &["apply", "-f", &spec]);
    assert_eq!(
        (code, stdout.trim()),
        (0, "gpuorphanpolicy/orphans created"),
        "{stderr}"
    );
    // A process that holds the group's id without being a member: not an admin.
    let impostor = [
        "setpriv".to_owned(),
        "--reuid=65534".to_owned(),
        "--regid=65534".to_owned(),
        format!("--groups={admin_gid}"),
    ];
    let impostor: Vec<&str> = impostor.iter().map(String::as_str).collect();
    let (code, _, stderr) = daemon.ctl_as(&impostor, &["delete", "gpuorphanpolicy", "orphans"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("may not change specs"), "{stderr}");
    let (code, _, stderr) = daemon.ctl_as(&NOBODY, &["delete", "gpuorphanpolicy", "orphans"]);
    assert_eq!(code, 1, "{stderr}");
    let (code, _, stderr) = daemon.ctl_as(&member, &["delete", "gpuorphanpolicy", "orphans"]);
    assert_eq!(code, 0, "{stderr}");
}
