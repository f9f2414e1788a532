//! A full or read-only state directory (a full one holding the event log too): the controller
//! keeps running, reports the condition, holds back stops it could not record until the directory
//! can be written again, and never leaves a broken line in the event log.
//! (The state directory is a small tmpfs mounted for the test: the tests run as root.)

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A tmpfs mounted on a fresh directory; unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    _directory: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("state");
        std::fs::create_dir(&path).expect("mkdir");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "ds01-test",
                &path.display().to_string(),
            ])
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root: the reliability tests run as root"
        );
        SmallDisk {
            path,
            _directory: directory,
        }
    }

    fn run(&self, arguments: &[&str]) {
        let status = Command::new("mount")
            .args(arguments)
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount {arguments:?}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Pads the event log with a valid line so only 100 bytes are left in its last 4 KiB page:
/// once the disk is full, the controller's next event line is cut off halfway (tmpfs writes
/// what fits in an allocated page, then fails).
fn leave_100_bytes_in_the_last_page(log: &Path) {
    use std::io::Write;
    let size = std::fs::metadata(log).map_or(0, |metadata| metadata.len());
    let envelope = r#"{"event_type":"test.padding","pad":""}"#.len() as u64 + 1;
    let mut length = (4096 - 100 - size % 4096 + 4096) % 4096;
    if length < envelope {
        length += 4096;
    }
    let pad = "x".repeat(usize::try_from(length - envelope).unwrap_or(0));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .expect("open the event log");
    writeln!(file, r#"{{"event_type":"test.padding","pad":"{pad}"}}"#).expect("pad");
}

/// Fills the file system under `path` (the writes stop at ENOSPC).
fn fill(path: &Path) -> PathBuf {
    let filler = path.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", &format!("of={}", filler.display()), "bs=4k"])
        .output();
    filler
}

fn lifecycle_condition(daemon: &Daemon, kind: &str) -> Value {
    let (_, stdout, _) = daemon.ctl(&["status", "-o", "json"]);
    let status: Value = serde_json::from_str(&stdout).unwrap_or_default();
    status["resources"]
        .as_array()
        .and_then(|resources| resources.iter().find(|resource| resource["name"] == "lab"))
        .and_then(|resource| resource["conditions"].as_array())
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|condition| condition["type"] == kind)
        })
        .cloned()
        .unwrap_or(Value::Null)
}

/// Starts a controller on `disk` (with its event log there too when `log_on_disk`), applies a
/// 3 s runtime limit for a fresh user; returns the controller and the user.
async fn limited_container(disk: &SmallDisk, log_on_disk: bool) -> (Daemon, String) {
    let user = format!("disk{}", std::process::id());
    let daemon = Daemon::start(DaemonOptions {
        state_dir: Some(disk.path.clone()),
        event_log: log_on_disk.then(|| disk.path.join("events.jsonl")),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    let policy = daemon.root().join("lab.yaml");
    std::fs::write(
        &policy,
        format!("apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: lab}}\nspec:\n  sampleInterval: 1s\n  scope: all\n  defaults: {{idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {user}: {{maxRuntime: 3s, stopGracePeriod: 1s}}\n  notify: {{tty: false}}\n"),
    )
    .expect("policy");
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", &policy.display().to_string()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    (daemon, user)
}

async fn held_back_then_done(
    scope: &TestScope,
    daemon: &mut Daemon,
    user: &str,
    unblock: impl FnOnce(),
) {
    let id = scope
        .container(ContainerRequest::sleeper("limited").label("ds01.user", user))
        .await;
    // Past the deadline the stop is due, but it could not be recorded: held back, reported.
    let started = Instant::now();
    loop {
        let degraded = lifecycle_condition(daemon, "Degraded");
        if degraded["status"] == "True" {
            assert_eq!(degraded["reason"], "CannotRecord", "{degraded}");
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "never reported: {degraded}\n{}",
            daemon.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        scope.running(&id).await == Some(true),
        "a stop that could not be recorded was carried out"
    );
    assert!(daemon.is_running(), "{}", daemon.output());
    assert_eq!(daemon.ctl(&["status"]).0, 0, "the API keeps serving");

    // Writable again: the held-back stop happens, and the condition clears.
    unblock();
    daemon.wait_for_event(WAIT, "the runtime stop", |event| {
        event["event_type"] == "lifecycle.runtime_stop"
            && event["details"]["container_id"] == id[..12]
    });
    let started = Instant::now();
    while lifecycle_condition(daemon, "Degraded")["status"] != "False" {
        assert!(started.elapsed() < WAIT, "Degraded never cleared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_full_state_directory_holds_back_stops_until_there_is_room() {
    let scope = TestScope::new("disk-full").await;
    let disk = SmallDisk::mount("512k");
    let (mut daemon, user) = limited_container(&disk, true).await;
    leave_100_bytes_in_the_last_page(&disk.path.join("events.jsonl"));
    let filler = fill(&disk.path);
    held_back_then_done(&scope, &mut daemon, &user, || {
        std::fs::remove_file(&filler).expect("free the disk");
    })
    .await;
    let state = std::fs::read_to_string(disk.path.join("controller-state.json")).expect("state");
    assert!(
        serde_json::from_str::<Value>(&state).is_ok(),
        "corrupt state file: {state}"
    );
    // The disk filled up mid-line at some point: no broken line was left in the event log.
    let log = std::fs::read_to_string(disk.path.join("events.jsonl")).expect("event log");
    for line in log.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "a broken event line: {line:?}"
        );
    }
    assert_eq!(daemon.terminate(WAIT), Some(0));
}

#[tokio::test]
async fn a_read_only_state_directory_holds_back_stops_until_it_is_writable() {
    let scope = TestScope::new("disk-ro").await;
    let disk = SmallDisk::mount("4m");
    // The log stays elsewhere: a file open for writing would refuse the remount.
    let (mut daemon, user) = limited_container(&disk, false).await;
    disk.run(&["-o", "remount,ro"]);
    held_back_then_done(&scope, &mut daemon, &user, || {
        disk.run(&["-o", "remount,rw"])
    })
    .await;
    assert_eq!(daemon.terminate(WAIT), Some(0));
}
