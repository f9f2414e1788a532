//! What untrusted local users see and leave behind: other users' containers counted, not
//! shown; whatever users put in labels reaching the terminal escaped; files the daemon creates
//! not world-readable.

use std::{
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use ds01_tests::{
    ContainerRequest, DaemonOptions, TestScope,
    cli_fixtures::{NOBODY, started_for_everyone as started},
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

const GPU0: &str = "GPU-33333333-0000-4000-8000-000000000000";
const GPU1: &str = "GPU-33333333-0000-4000-8000-000000000001";

#[tokio::test]
async fn non_admins_see_other_users_containers_counted_and_user_text_reaches_terminals_escaped() {
    // A running GPU holder needs `--gpus` to start, which needs the lab-shaped engine (a label
    // would be a claim, never a hold).
    let engine = ds01_tests::private_engine::PrivateEngine::start_lab("untrusted-views").await;
    let scope = TestScope::on(engine.docker(), "untrusted-views").await;
    let evil = "ev\u{1b}]0;owned\u{7}il\u{1b}[2J";
    scope
        .container(
            ContainerRequest::sleeper("alicegpu")
                .label("ds01.user", "alice")
                .gpus(0, &[GPU0]),
        )
        .await;
    scope
        .container(
            ContainerRequest::sleeper("alicestopped")
                .label("ds01.user", "alice")
                .gpus(0, &[GPU1])
                .created_only(),
        )
        .await;
    scope
        .container(
            ContainerRequest::sleeper("evil")
                .label("ds01.user", evil)
                .label("note", evil),
        )
        .await;
    let nvml = format!(
        "gpus:\n  - uuid: {GPU0}\n    name: A100\n    memoryTotalMiB: 40960\n  - uuid: {GPU1}\n    name: A100\n    memoryTotalMiB: 40960\n"
    );
    let daemon = started(DaemonOptions {
        docker_host: Some(engine.host()),
        nvml_state: Some(nvml),
        ..DaemonOptions::default()
    });
    let directory = tempfile::tempdir().expect("tempdir");
    let spec = directory.path().join("orphans.yaml");
    std::fs::write(
        &spec,
        "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata:\n  name: orphans\nspec:\n  mode: dryRun\n",
    )
    .expect("write");
    assert_eq!(
        daemon.ctl(&["apply", "-f", &spec.display().to_string()]).0,
        0
    );
    // Root (an admin) sees the stopped GPU holder by name once the policy reports it.
    let started_at = Instant::now();
    loop {
        let (_, stdout, _) = daemon.ctl(&["status", "-o", "json"]);
        if stdout.contains("alicestopped") {
            break;
        }
        assert!(started_at.elapsed() < WAIT, "never reported: {stdout}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, theirs, stderr) = daemon.ctl_as(&NOBODY, &["status", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!theirs.contains("alice"), "{theirs}");
    let status: Value = serde_json::from_str(&theirs).expect("json");
    let details = &status["resources"][0]["details"];
    assert_eq!(
        details["stoppedContainersHoldingGpusOfOtherUsers"], 1,
        "{details}"
    );
    let started_at = Instant::now();
    loop {
        let (_, gpus, _) = daemon.ctl(&["get", "gpus", "-o", "wide"]);
        if gpus.contains("alicegpu") {
            break;
        }
        assert!(started_at.elapsed() < WAIT, "GPU 0 never held: {gpus}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, gpus, stderr) = daemon.ctl_as(&NOBODY, &["get", "gpus"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !gpus.contains("alice") && gpus.contains("+1 of others"),
        "{gpus}"
    );
    let (_, gpus, _) = daemon.ctl_as(&NOBODY, &["get", "gpus", "-o", "json"]);
    assert!(!gpus.contains("alicegpu"), "{gpus}");

    // What users set in labels reaches the terminal escaped, in every format.
    for arguments in [
        vec!["get", "containers"],
        vec!["get", "containers", "-o", "wide"],
        vec!["get", "containers", "-o", "yaml"],
        vec!["get", "containers", "-o", "json"],
        vec!["events"],
    ] {
        let (code, stdout, stderr) = daemon.ctl(&arguments);
        assert_eq!(code, 0, "{arguments:?}: {stderr}");
        assert!(
            !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
            "{arguments:?} printed a raw control character: {stdout:?}"
        );
    }
    let (_, containers, _) = daemon.ctl(&["get", "containers", "-o", "json"]);
    let parsed: Value = serde_json::from_str(&containers).expect("still JSON");
    assert!(
        parsed["containers"]
            .as_array()
            .expect("list")
            .iter()
            .any(|container| container["user"] == evil),
        "the JSON keeps the value exactly: {containers}"
    );
    let (_, described, _) = daemon.ctl(&["describe", "container", &scope.name("evil")]);
    assert!(
        described.contains("\\u{1b}]0;owned\\u{7}") && !described.contains('\u{1b}'),
        "{described:?}"
    );
}

#[tokio::test]
async fn files_the_daemon_creates_are_not_world_readable() {
    let daemon = started(DaemonOptions::default());
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
    daemon.wait_for_inventory(WAIT, "a first write", |_| true);
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let state = daemon.root().join("state");
    assert_eq!(
        mode(&state.join("specs/gpuorphanpolicy-orphans.json")),
        0o600
    );
    assert_eq!(mode(&state.join("workload-inventory.json")), 0o640);
    assert_eq!(mode(&daemon.event_log), 0o640);
    let controller_state = state.join("controller-state.json");
    if controller_state.exists() {
        assert_eq!(mode(&controller_state), 0o600);
    }
    let mut pending = vec![state];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            assert_eq!(mode(&path) & 0o007, 0, "{} is open to all", path.display());
            pending.extend(
                std::fs::read_dir(&path)
                    .expect("list")
                    .filter_map(Result::ok)
                    .map(|entry| entry.path()),
            );
        } else {
            assert_eq!(mode(&path) & 0o007, 0, "{} is open to all", path.display());
        }
    }
}
