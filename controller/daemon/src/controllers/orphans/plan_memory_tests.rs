//! Orphan planner cases about memory: a dry run leaves nothing enforcement acts on, escalation
//! needs a current orphan, sightings count per poll, unknown cgroups are only reported.

use ds01_spec::{HostProcessAction, PolicyMode};

use super::{
    super::plan::{Memory, Placement, Plan, Settings, Step},
    tests::{at, dry_settings, gone, kinds, observed, plan_at, process, running, settings, spec},
};
use crate::controllers::orphans::plan::{GpuOrphanPolicySpec, ObservedProcess};

/// Runs the planner over `seconds`, one fresh poll each, returning the last plan.
fn run(
    processes: &[ObservedProcess],
    spec: &GpuOrphanPolicySpec,
    settings: &Settings,
    mut memory: Memory,
    seconds: &[i64],
) -> (Vec<Plan>, Memory) {
    let mut plans = Vec::new();
    for second in seconds {
        let plan = plan_at(
            &observed(processes.to_vec()),
            spec,
            &memory,
            settings,
            at(*second),
            at(*second),
        );
        memory = plan.memory.clone();
        plans.push(plan);
    }
    (plans, memory)
}

#[test]
fn dry_run_stores_no_sigterm_time_and_a_switch_to_enforce_starts_from_sigterm() {
    let mut dry = spec();
    dry.mode = PolicyMode::DryRun;
    let orphan = process(42, 100, gone());
    let (_, memory) = run(
        std::slice::from_ref(&orphan),
        &dry,
        &dry_settings(),
        Memory::default(),
        &[0, 60, 120, 600],
    );
    assert!(
        memory
            .tracked
            .values()
            .all(|tracked| tracked.terminated_at.is_none() && tracked.killed_at.is_none()),
        "dry run left memory enforcement would act on: {memory:?}"
    );
    // The admin switches to enforce (a new generation): nothing is inherited, and the first
    // signal, once seen twice across the grace period again, is SIGTERM.
    let enforce = Settings {
        basis: "2:enforce".into(),
        ..settings()
    };
    let (plans, _) = run(
        std::slice::from_ref(&orphan),
        &spec(),
        &enforce,
        memory,
        &[601, 602, 661, 680],
    );
    let steps: Vec<&Step> = plans.iter().flat_map(|plan| &plan.steps).collect();
    assert_eq!(
        steps.first(),
        Some(&&Step::Terminate(orphan.identity)),
        "{steps:?}"
    );
    assert!(plans[0].steps.is_empty() && plans[1].steps.is_empty());
    assert_eq!(plans[2].steps, [Step::Terminate(orphan.identity)]);
}

#[test]
fn a_user_allowed_after_sigterm_is_never_killed() {
    let mut kill_hosts = spec();
    kill_hosts.host_processes = HostProcessAction::Kill;
    let host = process(42, 100, Placement::Host);
    let (plans, memory) = run(
        std::slice::from_ref(&host),
        &kill_hosts,
        &settings(),
        Memory::default(),
        &[0, 60],
    );
    assert_eq!(plans[1].steps, [Step::Terminate(host.identity)]);
    // bob is allow-listed (a new generation of the spec) before killAfter passes.
    let mut allowing = kill_hosts.clone();
    allowing.allowed_host_users = vec!["bob".into()];
    let new_generation = Settings {
        basis: "2:enforce".into(),
        ..settings()
    };
    let (plans, _) = run(
        std::slice::from_ref(&host),
        &allowing,
        &new_generation,
        memory.clone(),
        &[65, 80, 200],
    );
    assert!(plans.iter().all(|plan| plan.steps.is_empty()), "{plans:?}");
    // Even within one generation, escalation needs it to be an orphan now.
    let (plans, _) = run(
        &[process(42, 100, running())],
        &kill_hosts,
        &settings(),
        memory,
        &[65, 80],
    );
    assert!(plans.iter().all(|plan| plan.steps.is_empty()), "{plans:?}");
}

#[test]
fn one_poll_seen_twice_is_one_observation_and_a_stale_snapshot_decides_nothing() {
    let orphan = process(42, 100, gone());
    let first = plan_at(
        &observed(vec![orphan.clone()]),
        &spec(),
        &Memory::default(),
        &settings(),
        at(0),
        at(0),
    );
    // The poller hangs: the controller keeps reconciling on the same snapshot.
    let mut memory = first.memory;
    for second in [5, 9] {
        let again = plan_at(
            &observed(vec![orphan.clone()]),
            &spec(),
            &memory,
            &settings(),
            at(0),
            at(second),
        );
        assert!(again.steps.is_empty(), "one poll counted twice at {second}");
        memory = again.memory;
    }
    assert_eq!(
        memory.tracked.values().next().map(|t| t.observations),
        Some(1)
    );
    // Much later, still the same snapshot: older than allowed, nothing is decided.
    let stale = plan_at(
        &observed(vec![orphan.clone()]),
        &spec(),
        &memory,
        &settings(),
        at(0),
        at(120),
    );
    assert!(stale.steps.is_empty() && stale.events.is_empty());
    assert_eq!(stale.memory, memory);
}

#[test]
fn unknown_cgroups_are_reported_once_and_never_signalled() {
    let mut kill_hosts = spec();
    kill_hosts.host_processes = HostProcessAction::Kill;
    let unknown = process(42, 100, Placement::Container(vec!["nobody-knows".into()]));
    let foreign = process(43, 100, Placement::Foreign("/kubepods/pod/x".into()));
    let (plans, _) = run(
        &[unknown, foreign],
        &kill_hosts,
        &settings(),
        Memory::default(),
        &[0, 60, 120, 600, 1200],
    );
    assert!(plans.iter().all(|plan| plan.steps.is_empty()));
    let reported: Vec<&str> = plans.iter().flat_map(kinds).collect();
    assert_eq!(reported, ["gpu.unknown_process", "gpu.unknown_process"]);
}
