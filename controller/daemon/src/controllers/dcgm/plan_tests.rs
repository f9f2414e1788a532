//! Planner cases with an explicit `now`.

use ds01_host::ContainerState;

use super::*;

fn spec() -> DcgmExporterSpec {
    DcgmExporterSpec::default()
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("timestamp")
}

fn container(state: ContainerState, started: i64) -> ObservedContainer {
    ObservedContainer {
        id: "c1".into(),
        state,
        spec_hash: Some("h1".into()),
        labelled_ours: true,
        started_at: Some(at(started)),
    }
}

fn observed(container: Option<ObservedContainer>) -> Observed {
    Observed {
        container,
        gpus: Some(vec!["GPU-1".into()]),
        mig_layout: String::new(),
        probe: None,
        maintenance_busy: false,
        desired_hash: "h1".into(),
        missing_networks: Vec::new(),
    }
}

/// The memory of a controller that created container `c1`.
fn mine() -> Memory {
    Memory {
        container_id: Some("c1".into()),
        ..Memory::default()
    }
}

#[test]
fn a_missing_exporter_is_created_without_counting_a_restart() {
    let plan = plan(&observed(None), &spec(), &Memory::default(), at(0));
    assert_eq!(plan.step, Some(Step::Create));
    assert!(plan.memory.restarts.is_empty());
    assert_eq!(plan.memory.not_before, None);
}

#[test]
fn crashes_restart_at_once_then_with_doubling_backoff() {
    let spec = spec();
    let mut memory = mine();
    let mut starts = Vec::new();
    // The exporter dies right after every start; the controller looks every second.
    for second in 0..200 {
        let plan = plan(
            &observed(Some(container(ContainerState::Exited, second - 1))),
            &spec,
            &memory,
            at(second),
        );
        if plan.step.is_some() {
            starts.push(second);
        }
        memory = plan.memory;
    }
    assert_eq!(starts, [0, 10, 30, 70, 150]);
}

#[test]
fn more_restarts_than_allowed_in_the_window_is_a_crash_loop_retried_at_backoff_max() {
    let mut spec = spec();
    spec.restart.backoff_initial = ds01_spec::Duration::from_secs(1);
    spec.restart.backoff_max = ds01_spec::Duration::from_secs(4);
    spec.restart.max_restarts = 2;
    spec.restart.window = ds01_spec::Duration::from_secs(60);
    let mut memory = mine();
    let mut starts = Vec::new();
    let mut crash_events = 0;
    let mut last = None;
    for second in 0..30 {
        let plan = plan(
            &observed(Some(container(ContainerState::Exited, second - 1))),
            &spec,
            &memory,
            at(second),
        );
        if plan.step.is_some() {
            starts.push(second);
        }
        crash_events += plan
            .events
            .iter()
            .filter(|(kind, _)| *kind == "dcgm.crashloop")
            .count();
        memory = plan.memory.clone();
        last = Some(plan);
    }
    // 0 (at once), +1, +2 → third restart exceeds 2 in the window: from then on every 4s.
    assert_eq!(starts, [0, 1, 3, 7, 11, 15, 19, 23, 27]);
    assert_eq!(crash_events, 1, "dcgm.crashloop is reported once");
    let last = last.expect("planned");
    assert_eq!(
        (last.degraded.status, last.degraded.reason),
        ("True", "CrashLoop")
    );
}

#[test]
fn health_resets_the_backoff_after_reset_after() {
    let spec = spec();
    let memory = Memory {
        attempt: 3,
        not_before: Some(at(100)),
        restarts: vec![at(0)],
        last_failure: Some("exited".into()),
        ..mine()
    };
    let mut probe = observed(Some(container(ContainerState::Running, 0)));
    probe.probe = Some(Ok(()));
    let first = plan(&probe, &spec, &memory, at(120));
    assert_eq!(first.memory.attempt, 3, "not healthy long enough yet");
    let later = plan(&probe, &spec, &first.memory, at(180));
    assert_eq!((later.memory.attempt, later.memory.not_before), (0, None));
    assert_eq!(later.ready.reason, "Healthy");
}

#[test]
fn unhealthy_probes_restart_after_the_threshold_but_not_during_the_start_period() {
    let spec = spec();
    let mut failing = observed(Some(container(ContainerState::Running, 0)));
    failing.probe = Some(Err("GPU-1 missing from /metrics".into()));
    let mut memory = mine();
    // Within the 60s start period failures do not count.
    for second in [10, 25, 40] {
        let plan = plan(&failing, &spec, &memory, at(second));
        assert_eq!(plan.step, None);
        assert_eq!(plan.ready.reason, "Starting");
        memory = plan.memory;
    }
    let mut steps = Vec::new();
    let mut unhealthy = 0;
    for second in [70, 85, 100] {
        let plan = plan(&failing, &spec, &memory, at(second));
        steps.push(plan.step.clone());
        unhealthy += plan
            .events
            .iter()
            .filter(|(kind, _)| *kind == "dcgm.unhealthy")
            .count();
        memory = plan.memory;
    }
    assert_eq!(steps[..2], [None, None]);
    assert!(
        matches!(&steps[2], Some(Step::Restart { reason }) if reason.contains("GPU-1 missing"))
    );
    assert_eq!(unhealthy, 1);
    // It answers again: recovered, once.
    let mut healthy = observed(Some(container(ContainerState::Running, 101)));
    healthy.probe = Some(Ok(()));
    let plan = plan(&healthy, &spec, &memory, at(200));
    assert_eq!(
        plan.events
            .iter()
            .filter(|(kind, _)| *kind == "dcgm.recovered")
            .count(),
        1
    );
    let again = super::plan(&healthy, &spec, &plan.memory, at(215));
    assert!(again.events.is_empty());
}

#[test]
fn a_changed_spec_recreates_and_someone_elses_container_is_left_alone() {
    let mut changed = observed(Some(container(ContainerState::Running, 0)));
    changed.desired_hash = "h2".into();
    assert_eq!(
        plan(&changed, &spec(), &mine(), at(100)).step,
        Some(Step::Recreate)
    );
    let mut foreign = container(ContainerState::Exited, 0);
    foreign.id = "c9".into();
    foreign.labelled_ours = false;
    let plan = plan(&observed(Some(foreign)), &spec(), &mine(), at(100));
    assert_eq!((plan.step, plan.ready.reason), (None, "NameConflict"));
}

#[test]
fn the_exporter_is_known_by_the_id_the_controller_created_never_by_its_labels() {
    let labelled = observed(Some(container(ContainerState::Running, 0)));
    // Labels copied onto someone else's container, while the controller remembers its own id.
    let other_id = Memory {
        container_id: Some("c0".into()),
        ..Memory::default()
    };
    let conflict = plan(&labelled, &spec(), &other_id, at(100));
    assert_eq!(
        (conflict.step, conflict.ready.reason),
        (None, "NameConflict")
    );
    assert!(
        conflict
            .ready
            .message
            .contains("docker stop -t 30 ds01-dcgm-exporter && docker rm ds01-dcgm-exporter"),
        "{}",
        conflict.ready.message
    );
    // With replaceExisting it is stopped, removed and replaced by ours.
    let mut replace = spec();
    replace.replace_existing = true;
    let taken = plan(&labelled, &replace, &other_id, at(100));
    assert!(
        matches!(&taken.step, Some(Step::Replace { reason }) if reason.contains("replaceExisting")),
        "{:?}",
        taken.step
    );
    // Made by an earlier version (labels, no id remembered): replaced once, no setting needed.
    let legacy = plan(&labelled, &spec(), &Memory::default(), at(100));
    assert!(
        matches!(&legacy.step, Some(Step::Replace { reason }) if reason.contains("earlier version")),
        "{:?}",
        legacy.step
    );
    // Without the labels and without replaceExisting: a conflict, never touched.
    let mut bare = container(ContainerState::Running, 0);
    bare.labelled_ours = false;
    let left = plan(&observed(Some(bare)), &spec(), &Memory::default(), at(100));
    assert_eq!((left.step, left.ready.reason), (None, "NameConflict"));
    // The remembered id: ours, left alone while healthy.
    let mut healthy = labelled.clone();
    healthy.probe = Some(Ok(()));
    assert_eq!(plan(&healthy, &spec(), &mine(), at(100)).step, None);
}

#[test]
fn a_missing_network_holds_creation_back_without_counting_restarts() {
    let mut missing = observed(None);
    missing.missing_networks = vec!["ds01-monitoring".into()];
    let mut memory = Memory::default();
    for second in 0..600 {
        let plan = plan(&missing, &spec(), &memory, at(second));
        assert_eq!(plan.step, None);
        assert_eq!(plan.ready.reason, "NetworkMissing");
        assert!(
            plan.ready
                .message
                .contains("docker network create ds01-monitoring")
        );
        assert_eq!(plan.degraded.reason, "AsExpected");
        memory = plan.memory;
    }
    assert!(memory.restarts.is_empty());
    missing.missing_networks.clear();
    assert_eq!(
        plan(&missing, &spec(), &memory, at(600)).step,
        Some(Step::Create)
    );
}

#[test]
fn a_back_off_says_what_the_last_attempt_failed_with() {
    let memory = Memory {
        not_before: Some(at(50)),
        last_failure: Some("missing".into()),
        last_error: Some("docker create x failed: No command specified".into()),
        ..Memory::default()
    };
    let waiting = plan(&observed(None), &spec(), &memory, at(10));
    assert_eq!(waiting.ready.reason, "BackOff");
    assert!(
        waiting.ready.message.contains("No command specified"),
        "{}",
        waiting.ready.message
    );
}

#[test]
fn no_gpus_with_require_gpus_means_no_container_churn() {
    let mut none = observed(None);
    none.gpus = Some(Vec::new());
    let plan = plan(&none, &spec(), &Memory::default(), at(0));
    assert_eq!(
        (plan.step, plan.ready.status, plan.ready.reason),
        (None, "False", "NoGpus")
    );
    let mut spec = spec();
    spec.require_gpus = false;
    assert_eq!(
        super::plan(&none, &spec, &Memory::default(), at(0)).step,
        Some(Step::Create)
    );
}

#[test]
fn a_mig_layout_change_restarts_but_never_during_gpu_maintenance() {
    let mut running = observed(Some(container(ContainerState::Running, 0)));
    running.probe = Some(Ok(()));
    let settled = plan(&running, &spec(), &mine(), at(100));
    assert_eq!(settled.step, None);
    running.mig_layout = "GPU-1:1g.10gb,1g.10gb".into();
    running.maintenance_busy = true;
    let waiting = plan(&running, &spec(), &settled.memory, at(110));
    assert_eq!(
        (waiting.step.clone(), waiting.ready.reason),
        (None, "GpuMaintenance")
    );
    running.maintenance_busy = false;
    let restarted = plan(&running, &spec(), &waiting.memory, at(111));
    assert!(matches!(restarted.step, Some(Step::Restart { .. })));
}
