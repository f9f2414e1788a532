//! The GpuOrphanPolicy controller with real processes, real signals, real cgroups, real Docker
//! and the fake NVML library listing those processes on GPUs.

use std::time::{Duration, Instant};

use ds01_tests::{
    ContainerRequest, Daemon, DaemonOptions, TestScope,
    host_process::{Proc, TestCgroup},
    orphan_policy::{WAIT, apply, gpu, policy, started},
};

const GPU0: &str = "GPU-44444444-0000-4000-8000-000000000000";
const GPU1: &str = "GPU-44444444-0000-4000-8000-000000000001";
const GPU2: &str = "GPU-44444444-0000-4000-8000-000000000002";

#[test]
fn host_processes_are_reported_allowed_or_killed_as_the_policy_says() {
    let directory = tempfile::tempdir().expect("tempdir");
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let mut host = Proc::spawn(&nobody, "exec sleep 300");
    let daemon = started(format!("gpus:\n{}", gpu(GPU0, false, &[host.pid()])));
    apply(
        &daemon,
        &policy(directory.path(), "  hostProcesses: report\n"),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(host.alive(), "report mode must not signal");
    let (_, status, _) = daemon.ctl(&["status", "-o", "json"]);
    assert!(status.contains("\"host\": 1"), "{status}");

    apply(
        &daemon,
        &policy(
            directory.path(),
            "  hostProcesses: kill\n  allowedHostUsers: [nobody]\n",
        ),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        host.alive(),
        "an allowed user's process must not be signalled"
    );

    apply(
        &daemon,
        &policy(directory.path(), "  hostProcesses: kill\n"),
    );
    assert!(
        host.wait_dead(WAIT),
        "the unallowed host process was not killed"
    );
    let terminated = daemon.wait_for_event(WAIT, "orphan_terminated", |event| {
        event["event_type"] == "gpu.orphan_terminated"
    });
    assert_eq!(terminated["details"]["pid"], host.pid());
    assert_eq!(terminated["user"], "nobody");
    assert!(
        terminated["details"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("allowedHostUsers"))
    );
    assert!(
        terminated["details"]["cmdline"]
            .as_str()
            .is_some_and(|cmdline| cmdline.contains("sleep 300"))
    );
}

#[tokio::test]
async fn orphans_of_a_vanished_container_are_killed_and_a_running_containers_are_not() {
    let scope = TestScope::new("orphans-kill").await;
    let directory = tempfile::tempdir().expect("tempdir");
    // A container whose processes were left behind in its cgroup when it was removed.
    let vanished = scope
        .container(ContainerRequest::sleeper("vanished").created_only())
        .await;
    let cgroup = TestCgroup::named_like(&vanished, "gone");
    let mut polite = Proc::spawn(&[], "exec sleep 300");
    let mut stubborn = Proc::spawn(&[], "trap '' TERM; while :; do sleep 1; done");
    cgroup.adopt(polite.pid());
    cgroup.adopt(stubborn.pid());
    let worker = scope
        .container(ContainerRequest::sleeper("worker").label("ds01.user", "root"))
        .await;
    let worker_pid = scope
        .docker
        .inspect_container(&worker, None)
        .await
        .expect("inspect")
        .state
        .and_then(|state| state.pid)
        .and_then(|pid| u32::try_from(pid).ok())
        .expect("pid");
    let daemon = started(format!(
        "gpus:\n{}",
        gpu(GPU0, false, &[polite.pid(), stubborn.pid(), worker_pid])
    ));
    scope
        .docker
        .remove_container(
            &vanished,
            None::<bollard::query_parameters::RemoveContainerOptions>,
        )
        .await
        .expect("remove the vanished container");
    daemon.wait_for_event(WAIT, "its removal", |event| {
        event["event_type"] == "detection.container_removed"
            && event["details"]["container_id"] == vanished[..12]
    });
    apply(&daemon, &policy(directory.path(), ""));
    assert!(polite.wait_dead(WAIT), "the orphan was not terminated");
    assert!(
        stubborn.wait_dead(WAIT),
        "the orphan ignoring SIGTERM was not killed"
    );
    let killed = daemon.wait_for_event(WAIT, "orphan_killed", |event| {
        event["event_type"] == "gpu.orphan_killed"
    });
    assert_eq!(killed["details"]["pid"], stubborn.pid());
    let running = scope
        .docker
        .inspect_container(&worker, None)
        .await
        .expect("inspect")
        .state
        .and_then(|state| state.running);
    assert_eq!(
        running,
        Some(true),
        "a running container's process was touched"
    );
    assert!(!daemon.events().iter().any(|event| {
        event["details"]["pid"] == worker_pid
            && event["event_type"]
                .as_str()
                .is_some_and(|kind| kind.starts_with("gpu.orphan"))
    }));

    // The orphans are gone from NVML too, but the container still uses the GPU: no reset.
    daemon.set_nvml_state(&format!("gpus:\n{}", gpu(GPU0, false, &[worker_pid])));
    let skipped = daemon.wait_for_event(WAIT, "reset_skipped", |event| {
        event["event_type"] == "gpu.reset_skipped"
    });
    assert_eq!(skipped["details"]["reason"], "processes_remaining");
    assert!(!directory.path().join("resets.log").exists());
}

#[test]
fn a_freed_gpu_is_reset_but_mig_and_held_gpus_are_skipped_with_the_reason() {
    let directory = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scope = runtime.block_on(TestScope::new("orphans-reset"));
    let stopped =
        runtime.block_on(scope.container(ContainerRequest::sleeper("stopped").created_only()));
    let cgroup = TestCgroup::named_like(&stopped, "reset");
    let mut orphans: Vec<Proc> = (0..3).map(|_| Proc::spawn(&[], "exec sleep 300")).collect();
    for orphan in &orphans {
        cgroup.adopt(orphan.pid());
    }
    let pids: Vec<u32> = orphans.iter().map(Proc::pid).collect();
    runtime.block_on(
        scope.container(ContainerRequest::sleeper("holder").label("ds01.gpu.uuid", GPU2)),
    );
    let nvml = format!(
        "gpus:\n{}{}{}",
        gpu(GPU0, false, &pids[..1]),
        gpu(GPU1, true, &pids[1..2]),
        gpu(GPU2, false, &pids[2..])
    );
    let daemon = started(nvml);
    apply(&daemon, &policy(directory.path(), ""));
    for orphan in &mut orphans {
        assert!(orphan.wait_dead(WAIT), "an orphan survived");
    }
    daemon.set_nvml_state(&format!(
        "gpus:\n{}{}{}",
        gpu(GPU0, false, &[]),
        gpu(GPU1, true, &[]),
        gpu(GPU2, false, &[])
    ));
    daemon.wait_for_event(WAIT, "gpu.reset", |event| {
        event["event_type"] == "gpu.reset"
    });
    let skipped: Vec<(String, String)> = {
        let started = Instant::now();
        loop {
            let skipped: Vec<(String, String)> = daemon
                .events()
                .iter()
                .filter(|event| event["event_type"] == "gpu.reset_skipped")
                .map(|event| {
                    (
                        event["details"]["gpu"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        event["details"]["reason"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect();
            if skipped.len() >= 2 || started.elapsed() > WAIT {
                break skipped;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(
        skipped.contains(&(GPU1.to_owned(), "mig".to_owned())),
        "{skipped:?}"
    );
    assert!(
        skipped.contains(&(GPU2.to_owned(), "shared".to_owned())),
        "{skipped:?}"
    );
    let resets = std::fs::read_to_string(directory.path().join("resets.log"))
        .expect("the reset command ran");
    assert_eq!(
        resets.trim(),
        format!("{GPU0} 0"),
        "only the unshared, non-MIG GPU is reset"
    );
    drop(scope);
}

#[test]
fn a_new_process_under_a_remembered_pid_is_never_signalled() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut newcomer = Proc::spawn(&[], "exec sleep 300");
    // The controller remembers sending SIGTERM to an orphan that had this pid long ago.
    let state_dir = tempfile::tempdir().expect("state");
    let remembered = serde_json::json!({
        "gpuOrphanPolicy": { "orphans": { "tracked": { format!("{}:1", newcomer.pid()): {
            "identity": { "pid": newcomer.pid(), "start_time": 1 },
            "firstSeen": "2026-01-01T00:00:00Z", "observations": 9, "gpu": GPU0, "parentGpu": GPU0,
            "user": "root", "cmdline": "old", "reason": "its container is not running",
            "terminatedAt": "2026-01-01T00:01:00Z", "killedAt": null, "unkillable": false
        } }, "dirtyGpus": [] } }
    });
    std::fs::create_dir_all(state_dir.path().join("state")).expect("mkdir");
    std::fs::write(
        state_dir.path().join("state/controller-state.json"),
        remembered.to_string(),
    )
    .expect("seed");
    let daemon = Daemon::start_in(
        state_dir,
        DaemonOptions {
            nvml_state: Some(format!("gpus:\n{}", gpu(GPU0, false, &[newcomer.pid()]))),
            ..DaemonOptions::default()
        },
    );
    daemon.wait_for_socket(WAIT);
    apply(
        &daemon,
        &policy(directory.path(), "  hostProcesses: report\n"),
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        newcomer.alive(),
        "a process that only shares a pid with a remembered orphan was signalled"
    );
    assert!(
        !daemon
            .events()
            .iter()
            .any(|event| event["event_type"] == "gpu.orphan_killed")
    );
}

#[tokio::test]
async fn dry_run_signals_nothing_and_runs_no_command() {
    let scope = TestScope::new("orphans-dry").await;
    let stopped = scope
        .container(ContainerRequest::sleeper("stopped").created_only())
        .await;
    let directory = tempfile::tempdir().expect("tempdir");
    let cgroup = TestCgroup::named_like(&stopped, "dry");
    let mut orphan = Proc::spawn(&[], "exec sleep 300");
    cgroup.adopt(orphan.pid());
    let daemon = started(format!("gpus:\n{}", gpu(GPU0, false, &[orphan.pid()])));
    apply(&daemon, &policy(directory.path(), "  mode: dryRun\n"));
    let decided = daemon.wait_for_event(WAIT, "a dry-run termination", |event| {
        event["event_type"] == "gpu.orphan_terminated"
    });
    assert_eq!(decided["details"]["dry_run"], true);
    std::thread::sleep(Duration::from_secs(3));
    assert!(orphan.alive(), "dry run signalled a process");
    assert!(
        !directory.path().join("resets.log").exists(),
        "dry run ran the reset command"
    );
}

#[tokio::test]
async fn a_failing_reset_is_reported_with_its_exit_status_and_output_and_stopped_holders_are_listed()
 {
    let scope = TestScope::new("orphans-fail").await;
    let held = ContainerRequest::sleeper("stopped-holder")
        .created_only()
        .gpus(0, &[GPU1]);
    scope.container(held).await;
    let directory = tempfile::tempdir().expect("tempdir");
    let stopped = scope
        .container(ContainerRequest::sleeper("stopped").created_only())
        .await;
    let cgroup = TestCgroup::named_like(&stopped, "fail");
    let mut orphan = Proc::spawn(&[], "exec sleep 300");
    cgroup.adopt(orphan.pid());
    let daemon = started(format!(
        "gpus:\n{}{}",
        gpu(GPU0, false, &[orphan.pid()]),
        gpu(GPU1, false, &[])
    ));
    let path = policy(directory.path(), "");
    let text = std::fs::read_to_string(&path).expect("policy").replace(
        "[sh, -c, \"echo",
        "[sh, -c, \"echo reset refused >&2; exit 3; echo",
    );
    std::fs::write(&path, text).expect("policy");
    apply(&daemon, &path);
    assert!(orphan.wait_dead(WAIT));
    daemon.set_nvml_state(&format!(
        "gpus:\n{}{}",
        gpu(GPU0, false, &[]),
        gpu(GPU1, false, &[])
    ));
    let failed = daemon.wait_for_event(WAIT, "gpu.reset_failed", |event| {
        event["event_type"] == "gpu.reset_failed"
    });
    let error = failed["details"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("exit status 3") && error.contains("reset refused"),
        "{failed}"
    );
    // The event is written during the reconcile; the status when it ends.
    let started = std::time::Instant::now();
    let orphans = loop {
        let (_, status, _) = daemon.ctl(&["status", "-o", "json"]);
        let status: serde_json::Value = serde_json::from_str(&status).expect("json");
        let orphans = status["resources"]
            .as_array()
            .and_then(|resources| {
                resources
                    .iter()
                    .find(|r| r["kind"] == "GpuOrphanPolicy")
                    .cloned()
            })
            .expect("policy status");
        if orphans["details"]["lastReset"]["result"] == "failed" {
            break orphans;
        }
        assert!(
            started.elapsed() < WAIT,
            "the status never showed the failed reset: {orphans}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let holders = orphans["details"]["stoppedContainersHoldingGpus"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        holders.iter().any(|holder| holder["gpus"][0] == GPU1),
        "{orphans}"
    );
}
