//! GpuOrphanPolicy safety on real processes, cgroups and signals: the documented dry-run
//! rollout, nested cgroups of running containers, cgroups nobody knows, and GPUs whose NVML
//! view is incomplete.

use std::time::Duration;

use ds01_tests::{
    ContainerRequest, TestScope,
    host_process::{Proc, TestCgroup},
    orphan_policy::{WAIT, apply, gpu, gpu_with, policy, started},
};

const GPU0: &str = "GPU-55555555-0000-4000-8000-000000000000";
const GPU1: &str = "GPU-55555555-0000-4000-8000-000000000001";
const GPU2: &str = "GPU-55555555-0000-4000-8000-000000000002";

fn as_uid(uid: u32) -> [String; 4] {
    [
        "setpriv".to_owned(),
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".to_owned(),
    ]
}

fn orphan_events_for(daemon: &ds01_tests::Daemon, pid: u32) -> Vec<(String, bool)> {
    daemon
        .events()
        .into_iter()
        .filter(|event| {
            event["details"]["pid"] == pid
                && event["event_type"]
                    .as_str()
                    .is_some_and(|kind| kind.starts_with("gpu.orphan"))
        })
        .map(|event| {
            (
                event["event_type"].as_str().unwrap_or_default().to_owned(),
                event["details"]["dry_run"] == true,
            )
        })
        .collect()
}

#[test]
fn the_switch_from_dry_run_starts_from_sigterm_and_spares_a_newly_allowed_user() {
    let directory = tempfile::tempdir().expect("tempdir");
    let shared = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        shared.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let term_log = shared.path().join("term.log");
    let handler = format!(
        "trap 'echo term >> {}; exit 0' TERM; while :; do sleep 0.2; done",
        term_log.display()
    );
    let allowed_wrapper = as_uid(65534);
    let unallowed_wrapper = as_uid(4243);
    let mut allowed = Proc::spawn(
        &allowed_wrapper
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "exec sleep 300",
    );
    let mut unallowed = Proc::spawn(
        &unallowed_wrapper
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &handler,
    );
    let daemon = started(format!(
        "gpus:\n{}",
        gpu(GPU0, false, &[allowed.pid(), unallowed.pid()])
    ));
    // The documented rollout: dry run first, review, allow-list, then enforce.
    apply(
        &daemon,
        &policy(directory.path(), "  mode: dryRun\n  hostProcesses: kill\n"),
    );
    for pid in [allowed.pid(), unallowed.pid()] {
        daemon.wait_for_event(WAIT, "a dry-run decision", |event| {
            event["event_type"] == "gpu.orphan_terminated"
                && event["details"]["pid"] == pid
                && event["details"]["dry_run"] == true
        });
    }
    // Long past killAfter: a dry run that remembered a SIGTERM would now escalate at once.
    std::thread::sleep(Duration::from_secs(3));
    assert!(allowed.alive() && unallowed.alive(), "dry run signalled");
    apply(
        &daemon,
        &policy(
            directory.path(),
            "  hostProcesses: kill\n  allowedHostUsers: [nobody]\n",
        ),
    );
    assert!(
        unallowed.wait_dead(WAIT),
        "the unallowed process was not terminated"
    );
    assert_eq!(
        std::fs::read_to_string(&term_log)
            .unwrap_or_default()
            .trim(),
        "term",
        "it was not sent SIGTERM first (its TERM handler did not run)"
    );
    let enforced: Vec<String> = orphan_events_for(&daemon, unallowed.pid())
        .into_iter()
        .filter(|(_, dry)| !dry)
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(
        enforced.first().map(String::as_str),
        Some("gpu.orphan_detected")
    );
    assert!(
        !enforced.iter().any(|kind| kind == "gpu.orphan_killed"),
        "{enforced:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        allowed.alive(),
        "the newly allow-listed user's process was signalled"
    );
    assert!(
        orphan_events_for(&daemon, allowed.pid())
            .iter()
            .all(|(_, dry)| *dry),
        "enforcement acted on the allowed process"
    );
}

#[tokio::test]
async fn processes_nested_in_a_running_containers_cgroup_survive_host_process_kill() {
    let scope = TestScope::new("orphans-nested").await;
    let directory = tempfile::tempdir().expect("tempdir");
    let worker = scope.container(ContainerRequest::sleeper("worker")).await;
    let worker_pid = scope
        .docker
        .inspect_container(&worker, None)
        .await
        .expect("inspect")
        .state
        .and_then(|state| state.pid)
        .and_then(|pid| u32::try_from(pid).ok())
        .expect("pid");
    let nested_id = "0123456789abcdef".repeat(4);
    let job = TestCgroup::nested_in(worker_pid, "job1");
    let inner = TestCgroup::nested_in(worker_pid, &nested_id);
    let mut in_job = Proc::spawn(&[], "exec sleep 300");
    let mut in_inner = Proc::spawn(&[], "exec sleep 300");
    job.adopt(in_job.pid());
    inner.adopt(in_inner.pid());
    let daemon = started(format!(
        "gpus:\n{}",
        gpu(GPU0, false, &[in_job.pid(), in_inner.pid()])
    ));
    apply(
        &daemon,
        &policy(directory.path(), "  hostProcesses: kill\n"),
    );
    let started = std::time::Instant::now();
    loop {
        let (_, status, _) = daemon.ctl(&["status", "-o", "json"]);
        if status.contains("\"container\": 2") {
            break;
        }
        assert!(started.elapsed() < WAIT, "never classified: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Several grace periods and polls later, nothing was signalled.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        in_job.alive(),
        "a process in /docker/<running>/job1 was signalled"
    );
    assert!(
        in_inner.alive(),
        "a process in /docker/<running>/<64hex> was signalled"
    );
    for pid in [in_job.pid(), in_inner.pid()] {
        assert!(orphan_events_for(&daemon, pid).is_empty());
    }
}

#[test]
fn a_container_id_nobody_knows_is_reported_and_never_signalled() {
    let directory = tempfile::tempdir().expect("tempdir");
    let cgroup = TestCgroup::named_like(&"f00dfeed".repeat(8), "unknown");
    let mut stranger = Proc::spawn(&[], "exec sleep 300");
    cgroup.adopt(stranger.pid());
    let daemon = started(format!("gpus:\n{}", gpu(GPU0, false, &[stranger.pid()])));
    apply(
        &daemon,
        &policy(directory.path(), "  hostProcesses: kill\n"),
    );
    let reported = daemon.wait_for_event(WAIT, "gpu.unknown_process", |event| {
        event["event_type"] == "gpu.unknown_process" && event["details"]["pid"] == stranger.pid()
    });
    assert!(
        reported["details"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("does not know")),
        "{reported}"
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        stranger.alive(),
        "a process of an unknown container was signalled"
    );
    assert!(orphan_events_for(&daemon, stranger.pid()).is_empty());
    let unknown_reports = daemon
        .events()
        .iter()
        .filter(|event| event["event_type"] == "gpu.unknown_process")
        .count();
    assert_eq!(unknown_reports, 1, "reported once, not every pass");
}

#[tokio::test]
async fn no_reset_on_a_gpu_nvml_errs_on_and_a_lone_healthy_gpu_is_reset() {
    let scope = TestScope::new("orphans-nvml-errors").await;
    let directory = tempfile::tempdir().expect("tempdir");
    let stopped = scope
        .container(ContainerRequest::sleeper("stopped").created_only())
        .await;
    let cgroup = TestCgroup::named_like(&stopped, "errors");
    let mut polite: Vec<Proc> = (0..2).map(|_| Proc::spawn(&[], "exec sleep 300")).collect();
    let mut stubborn = Proc::spawn(&[], "trap '' TERM; while :; do sleep 0.2; done");
    for orphan in polite.iter().chain(std::iter::once(&stubborn)) {
        cgroup.adopt(orphan.pid());
    }
    let daemon = started(format!(
        "gpus:\n{}{}{}",
        gpu(GPU0, false, &[polite[0].pid()]),
        gpu_with(GPU1, false, &[polite[1].pid()], "errors: {migMode: 999}"),
        gpu(GPU2, false, &[stubborn.pid()])
    ));
    let path = policy(directory.path(), "");
    let text = std::fs::read_to_string(&path)
        .expect("policy")
        .replace("killAfter: 1s", "killAfter: 5s");
    std::fs::write(&path, text).expect("policy");
    apply(&daemon, &path);
    daemon.wait_for_event(WAIT, "SIGTERM to the orphan on GPU 2", |event| {
        event["event_type"] == "gpu.orphan_terminated" && event["details"]["pid"] == stubborn.pid()
    });
    // Before killAfter passes, NVML starts failing to list GPU 2's processes: the orphan there
    // can no longer be vouched for, so it is not escalated, and its GPU is not reset.
    daemon.set_nvml_state(&format!(
        "gpus:\n{}{}{}",
        gpu(GPU0, false, &[]),
        gpu_with(GPU1, false, &[], "errors: {migMode: 999}"),
        gpu_with(GPU2, false, &[stubborn.pid()], "errors: {processes: 999}")
    ));
    for orphan in &mut polite {
        assert!(orphan.wait_dead(WAIT), "an orphan survived");
    }
    daemon.wait_for_event(WAIT, "gpu.reset", |event| {
        event["event_type"] == "gpu.reset"
    });
    for uuid in [GPU1, GPU2] {
        let skipped = daemon.wait_for_event(WAIT, "a skipped reset", |event| {
            event["event_type"] == "gpu.reset_skipped" && event["details"]["gpu"] == uuid
        });
        assert_eq!(
            skipped["details"]["reason"], "observation_incomplete",
            "{skipped}"
        );
    }
    assert!(
        stubborn.alive(),
        "an orphan NVML could no longer list was escalated to SIGKILL"
    );
    let resets = std::fs::read_to_string(directory.path().join("resets.log"))
        .expect("the reset command ran");
    assert_eq!(
        resets.trim(),
        format!("{GPU0} 0"),
        "only the healthy GPU is reset"
    );
}
