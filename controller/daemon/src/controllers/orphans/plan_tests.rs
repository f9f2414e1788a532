//! Orphan planner cases with an explicit `now`.

use std::collections::HashSet;

use ds01_spec::HostProcessAction;

use super::*;

const GPU: &str = "GPU-1";

pub(super) fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("timestamp")
}

pub(super) fn spec() -> GpuOrphanPolicySpec {
    GpuOrphanPolicySpec::default()
}

pub(super) fn settings() -> Settings {
    Settings {
        basis: "1:enforce".into(),
        max_snapshot_age: std::time::Duration::from_secs(10),
    }
}

pub(super) fn dry_settings() -> Settings {
    Settings {
        basis: "1:dryRun".into(),
        ..settings()
    }
}

/// Plans with the snapshot taken at `now` (a fresh poll each call).
pub(super) fn plan(
    observed: &Observed,
    spec: &GpuOrphanPolicySpec,
    memory: &Memory,
    now: Timestamp,
) -> Plan {
    let settings = if spec.mode == PolicyMode::DryRun {
        dry_settings()
    } else {
        settings()
    };
    plan_at(observed, spec, memory, &settings, now, now)
}

pub(super) fn plan_at(
    observed: &Observed,
    spec: &GpuOrphanPolicySpec,
    memory: &Memory,
    settings: &Settings,
    polled_at: Timestamp,
    now: Timestamp,
) -> Plan {
    let mut observed = observed.clone();
    observed.polled_at = polled_at;
    super::plan(&observed, spec, memory, settings, now)
}

pub(super) fn gone() -> Placement {
    Placement::Container(vec!["stopped".into()])
}

pub(super) fn running() -> Placement {
    Placement::Container(vec!["running".into()])
}

pub(super) fn process(pid: u32, start_time: u64, placement: Placement) -> ObservedProcess {
    ObservedProcess {
        identity: ProcessIdentity { pid, start_time },
        gpu: GPU.into(),
        parent_gpu: GPU.into(),
        placement,
        uid: Some(1000),
        user: Some("bob".into()),
        name: "python".into(),
        cmdline: "python train.py".into(),
        zombie: false,
    }
}

pub(super) fn observed(processes: Vec<ObservedProcess>) -> Observed {
    let alive = processes
        .iter()
        .filter(|p| p.placement != Placement::Ghost)
        .map(|p| p.identity)
        .collect();
    Observed {
        polled_at: at(0),
        processes,
        live_containers: HashSet::from(["running".to_owned()]),
        stopped_containers: HashSet::from(["stopped".to_owned()]),
        removed_containers: HashSet::from(["removed".to_owned()]),
        gpus: vec![ObservedGpu {
            uuid: GPU.into(),
            index: 0,
            mig: Some(false),
            holders: Vec::new(),
            incomplete: None,
        }],
        alive,
    }
}

pub(super) fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.events.iter().map(|(kind, ..)| kind.as_str()).collect()
}

#[test]
fn processes_are_classified_as_the_policy_says() {
    let mut kill_hosts = spec();
    kill_hosts.host_processes = HostProcessAction::Kill;
    kill_hosts.allowed_host_users = vec!["alice".into()];
    let mut system = process(1, 1, Placement::Host);
    system.name = "nvidia-persistenced".into();
    system.uid = Some(0);
    // A user's process renamed like a system process is judged by its cgroup and user.
    let mut renamed = process(5, 1, Placement::Host);
    renamed.name = "nvidia-smi".into();
    let mut renamed_in_dead_container = process(6, 1, gone());
    renamed_in_dead_container.name = "dcgm-exporter".into();
    renamed_in_dead_container.uid = Some(0);
    let mut zombie = process(2, 1, Placement::Host);
    zombie.zombie = true;
    let mut allowed = process(3, 1, Placement::Host);
    allowed.user = Some("alice".into());
    let cases = [
        (process(10, 1, running()), spec(), "container"),
        (process(11, 1, gone()), spec(), "orphan"),
        (process(12, 1, Placement::Host), spec(), "host"),
        (
            process(12, 1, Placement::Host),
            kill_hosts.clone(),
            "orphan",
        ),
        (allowed, kill_hosts.clone(), "allowed-host"),
        (system, kill_hosts.clone(), "system"),
        (renamed.clone(), kill_hosts.clone(), "orphan"),
        (renamed, spec(), "host"),
        (renamed_in_dead_container, spec(), "orphan"),
        (
            process(
                14,
                1,
                Placement::Container(vec!["running".into(), "inner".into()]),
            ),
            kill_hosts.clone(),
            "container",
        ),
        (
            process(15, 1, Placement::Container(vec!["removed".into()])),
            spec(),
            "orphan",
        ),
        (
            process(16, 1, Placement::Container(vec!["nobody-knows".into()])),
            kill_hosts.clone(),
            "unknown",
        ),
        (
            process(17, 1, Placement::Foreign("/kubepods/pod1/abc".into())),
            kill_hosts.clone(),
            "unknown",
        ),
        (
            process(13, 0, Placement::Ghost),
            kill_hosts.clone(),
            "ghost",
        ),
        (zombie, kill_hosts, "zombie"),
    ];
    for (process, spec, expected) in cases {
        let observation = observed(vec![process.clone()]);
        assert_eq!(
            classify(&process, &observation, &spec).label(),
            expected,
            "{process:?}"
        );
    }
}

#[test]
fn an_orphan_is_terminated_only_after_two_observations_spanning_the_grace_period() {
    let orphan = process(42, 100, gone());
    let first = plan(
        &observed(vec![orphan.clone()]),
        &spec(),
        &Memory::default(),
        at(0),
    );
    assert_eq!(kinds(&first), ["gpu.orphan_detected"]);
    assert!(first.steps.is_empty());
    let second = plan(
        &observed(vec![orphan.clone()]),
        &spec(),
        &first.memory,
        at(30),
    );
    assert!(second.steps.is_empty(), "inside the grace period");
    let third = plan(
        &observed(vec![orphan.clone()]),
        &spec(),
        &second.memory,
        at(60),
    );
    assert_eq!(third.steps, [Step::Terminate(orphan.identity)]);
    assert_eq!(kinds(&third), ["gpu.orphan_terminated"]);
    // A single observation, however old, is never enough.
    let lone = plan(
        &observed(vec![orphan.clone()]),
        &spec(),
        &Memory::default(),
        at(1000),
    );
    assert!(lone.steps.is_empty());
}

#[test]
fn a_reused_pid_is_a_different_process_and_starts_over() {
    let before = process(42, 100, gone());
    let first = plan(&observed(vec![before]), &spec(), &Memory::default(), at(0));
    let reused = process(42, 999, gone());
    let later = plan(
        &observed(vec![reused.clone()]),
        &spec(),
        &first.memory,
        at(120),
    );
    assert!(
        later.steps.is_empty(),
        "a new process under an old pid was about to be signalled"
    );
    assert_eq!(kinds(&later), ["gpu.orphan_detected"]);
    let after_grace = plan(
        &observed(vec![reused.clone()]),
        &spec(),
        &later.memory,
        at(180),
    );
    assert_eq!(after_grace.steps, [Step::Terminate(reused.identity)]);
}

#[test]
fn sigterm_then_sigkill_after_kill_after_then_unkillable_once() {
    let orphan = process(42, 100, gone());
    let mut memory = Memory::default();
    for second in [0, 60] {
        memory = plan(
            &observed(vec![orphan.clone()]),
            &spec(),
            &memory,
            at(second),
        )
        .memory;
    }
    let waiting = plan(&observed(vec![orphan.clone()]), &spec(), &memory, at(65));
    assert!(waiting.steps.is_empty());
    let killing = plan(
        &observed(vec![orphan.clone()]),
        &spec(),
        &waiting.memory,
        at(70),
    );
    assert_eq!(killing.steps, [Step::Kill(orphan.identity)]);
    assert_eq!(kinds(&killing), ["gpu.orphan_killed"]);
    let stuck = plan(
        &observed(vec![orphan.clone()]),
        &spec(),
        &killing.memory,
        at(73),
    );
    // Unkillable: the GPU cannot be reset with it still there.
    assert_eq!(
        kinds(&stuck),
        ["gpu.orphan_unkillable", "gpu.reset_skipped"]
    );
    assert_eq!(stuck.events[1].2["reason"], "processes_remaining");
    assert_eq!(stuck.unkillable, [orphan.identity]);
    let still = plan(
        &observed(vec![orphan.clone()]),
        &spec(),
        &stuck.memory,
        at(80),
    );
    assert!(
        still.events.is_empty() && still.steps.is_empty(),
        "reported once, never re-signalled"
    );
}

#[test]
fn a_freed_gpu_is_reset_only_when_nothing_holds_it() {
    let orphan = process(42, 100, gone());
    let mut memory = Memory::default();
    for second in [0, 60] {
        memory = plan(
            &observed(vec![orphan.clone()]),
            &spec(),
            &memory,
            at(second),
        )
        .memory;
    }
    let clean = observed(Vec::new());
    let reset = plan(&clean, &spec(), &memory, at(62));
    assert_eq!(
        reset.steps,
        [Step::Reset {
            uuid: GPU.into(),
            index: 0
        }]
    );
    assert!(reset.memory.dirty_gpus.is_empty());

    // (observation, policy, expected skip reason)
    let mut shared = observed(Vec::new());
    shared.gpus[0].holders = vec!["trainer".into()];
    let mut mig = observed(Vec::new());
    mig.gpus[0].mig = Some(true);
    let mut mig_unknown = observed(Vec::new());
    mig_unknown.gpus[0].mig = None;
    let mut erring = observed(Vec::new());
    erring.gpus[0].incomplete = Some("compute processes: Unknown Error".into());
    let busy = observed(vec![process(7, 1, running())]);
    let mut disabled = spec();
    disabled.reset.enabled = false;
    for (observation, policy, reason) in [
        (shared, spec(), "shared"),
        (mig, spec(), "mig"),
        (mig_unknown, spec(), "observation_incomplete"),
        (erring, spec(), "observation_incomplete"),
        (busy, spec(), "processes_remaining"),
        (observed(Vec::new()), disabled, "disabled"),
    ] {
        let plan = plan(&observation, &policy, &memory, at(62));
        assert!(
            plan.steps
                .iter()
                .all(|step| !matches!(step, Step::Reset { .. })),
            "{reason}"
        );
        let skipped = plan
            .events
            .iter()
            .find(|(kind, ..)| *kind == "gpu.reset_skipped")
            .expect("skip reported");
        assert_eq!(skipped.2["reason"], reason);
    }
}

#[test]
fn processes_of_running_containers_are_never_touched() {
    let inside = process(10, 1, running());
    let mut memory = Memory::default();
    for second in (0..1000).step_by(100) {
        let plan = plan(
            &observed(vec![inside.clone()]),
            &spec(),
            &memory,
            at(second),
        );
        assert!(plan.steps.is_empty() && plan.events.is_empty());
        memory = plan.memory;
    }
}

#[test]
fn dry_run_decides_and_reports_but_plans_no_signal_and_no_reset() {
    let mut dry = spec();
    dry.mode = PolicyMode::DryRun;
    let orphan = process(42, 100, gone());
    let mut memory = Memory::default();
    let mut all_events = Vec::new();
    for second in [0, 60, 120, 180] {
        let plan = plan(&observed(vec![orphan.clone()]), &dry, &memory, at(second));
        assert!(plan.steps.is_empty());
        all_events.extend(plan.events.clone());
        memory = plan.memory;
    }
    let kinds: Vec<&str> = all_events.iter().map(|(kind, ..)| kind.as_str()).collect();
    assert_eq!(kinds, ["gpu.orphan_detected", "gpu.orphan_terminated"]);
    assert!(
        all_events
            .iter()
            .all(|(_, _, details)| details["dry_run"] == true)
    );
    assert!(memory.dirty_gpus.is_empty());
}
