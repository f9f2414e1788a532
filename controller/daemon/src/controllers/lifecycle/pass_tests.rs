//! Whole-pass cases with an explicit `now`: the high-demand factor, deferrals, membership,
//! the controller's own containers, and the preview agreeing with enforcement.

use std::{collections::BTreeMap, time::Duration};

use ds01_host::{ContainerInfo, ContainerState, GpuAccess};
use ds01_spec::{HighDemandSpec, LimitsBlock, Percent};

use super::*;
use crate::controllers::lifecycle::plan::{LimitKind, Step};

fn at(seconds: f64) -> Timestamp {
    Timestamp::from_millisecond(1_800_000_000_000 + (seconds * 1000.0).round() as i64)
        .expect("timestamp")
}

fn record(id: &str, user: &str, started: f64) -> Arc<ContainerRecord> {
    Arc::new(ContainerRecord {
        info: ContainerInfo {
            id: id.to_owned(),
            name: format!("name-{id}"),
            image: "img".into(),
            labels: BTreeMap::new(),
            state: ContainerState::Running,
            pid: Some(100),
            created_at: Some(at(started - 1.0)),
            started_at: Some(at(started)),
            finished_at: None,
            exit_code: None,
            user: None,
            mounts: Vec::new(),
            gpu: GpuAccess {
                has_gpu: true,
                granted: vec![ds01_host::gpu_access::GpuGrant {
                    device: "GPU-0".into(),
                    via: ds01_host::GpuVia::DeviceRequest,
                }],
                hook: true,
                ..GpuAccess::default()
            },
            cgroup_parent: None,
        },
        origin: "docker".into(),
        user: user.to_owned(),
        owner_source: "label:ds01.user",
        owner_verified: false,
        gpu_uuids: vec!["GPU-0".into()],
        gpus: crate::inventory::gpu_resolve::ResolvedGpus::default(),
        owner_conflict: None,
        detected_at: at(started),
    })
}

/// Idle from `from` on: every signal known and below its threshold.
fn idle_since_window(window_start: f64) -> Sample {
    Sample {
        gpu: Some(0.0),
        cpu: Some(0.1),
        network: Some(0),
        keep_alive: false,
        window_start: Some(at(window_start)),
    }
}

fn policy(user_limits: &str) -> ContainerLifecyclePolicySpec {
    let block: LimitsBlock = serde_json::from_str(user_limits).expect("limits");
    let defaults = serde_json::from_str(
        r#"{"idleTimeout": null, "maxRuntime": null, "removeAfterStop": null, "gpuHoldAfterStop": null, "createdTimeout": null}"#,
    )
    .expect("defaults");
    ContainerLifecyclePolicySpec {
        defaults,
        users: [("alice".to_owned(), block)].into_iter().collect(),
        ..ContainerLifecyclePolicySpec::default()
    }
}

fn pass(
    spec: &ContainerLifecyclePolicySpec,
    containers: &[Observation],
    demand: Demand,
    recordable: Recordable,
    membership: &Membership,
    now: Timestamp,
) -> PassPlan {
    let own = HashSet::new();
    plan_pass(
        &PassInput {
            spec,
            dry_run: false,
            containers,
            membership,
            demand,
            own: &own,
            recordable,
        },
        now,
    )
}

fn observation(record: Arc<ContainerRecord>, sample: Sample, memory: Memory) -> Observation {
    Observation {
        record,
        sample,
        stored: memory.clone(),
        memory,
        stopping: false,
    }
}

fn stop_time(plan: &PassPlan) -> Option<Timestamp> {
    plan.decisions[0]
        .plan
        .steps
        .iter()
        .find_map(|step| match step {
            Step::Stop { deadline, .. } => Some(*deadline),
            _ => None,
        })
}

#[test]
fn with_startup_grace_and_high_demand_the_idle_stop_is_due_at_grace_plus_scaled_timeout() {
    // startupGrace 6s, idleTimeout 4s, factor 0.5 in force: due 8 s after the start.
    let mut spec = policy(r#"{"startupGrace": "6s", "idleTimeout": "4s"}"#);
    spec.high_demand = HighDemandSpec {
        threshold: Percent::new(50.0).expect("percent"),
        idle_timeout_factor: 0.5,
    };
    let busy = Demand { gpus: 2, held: 1 };
    let container = record("c1", "alice", 0.0);
    // The preview, one second after the start, before any idle window is measured.
    let preview = pass(
        &spec,
        &[observation(
            container.clone(),
            Sample::default(),
            Memory::default(),
        )],
        busy.clone(),
        Recordable::Yes,
        &Membership::default(),
        at(1.0),
    );
    assert_eq!(preview.idle_factor, 0.5);
    let projected = &preview.decisions[0].plan.upcoming[0];
    assert_eq!(projected.at, at(8.0), "{projected:?}");
    // Enforcement: sampled every second from 0.1 s; windows within the grace count from its end.
    let mut memory = Memory::default();
    let mut stopped = None;
    for tick in 1..=12 {
        let now = f64::from(tick) + 0.1;
        let decided = pass(
            &spec,
            &[observation(
                container.clone(),
                idle_since_window(now - 1.0),
                memory.clone(),
            )],
            busy.clone(),
            Recordable::Yes,
            &Membership::default(),
            at(now),
        );
        if let Some(deadline) = stop_time(&decided) {
            stopped = Some((deadline, at(now)));
            break;
        }
        memory = decided.decisions[0].plan.memory.clone();
    }
    let (deadline, issued) = stopped.expect("stopped");
    assert_eq!(deadline, at(8.0));
    assert!(issued.duration_since(deadline) < jiff::SignedDuration::from_secs(1));
}

#[test]
fn idle_time_counts_from_the_start_of_the_first_window_measured_idle() {
    let spec = policy(r#"{"startupGrace": "0s", "idleTimeout": "8s"}"#);
    let container = record("c1", "alice", 0.0);
    // First reading at 0.1 s gives no delta; the window [0.1, 1.1] is the first measured idle.
    let first = pass(
        &spec,
        &[observation(
            container.clone(),
            idle_since_window(0.1),
            Memory::default(),
        )],
        Demand::default(),
        Recordable::Yes,
        &Membership::default(),
        at(1.1),
    );
    assert_eq!(
        first.decisions[0].plan.memory.idle_since,
        Some(at(0.1)),
        "idle since the window's start, not the reading that proved it"
    );
    let stop = &first.decisions[0].plan.upcoming[0];
    assert_eq!((stop.at, stop.assuming), (at(8.1), None));
}

#[test]
fn what_cannot_be_recorded_is_held_back_and_retried_and_unchecked_asks_for_a_check() {
    let spec = policy(r#"{"startupGrace": "0s", "maxRuntime": "10s"}"#);
    let containers = [observation(
        record("c1", "alice", 0.0),
        idle_since_window(10.0),
        Memory::default(),
    )];
    let unchecked = pass(
        &spec,
        &containers,
        Demand::default(),
        Recordable::Unchecked,
        &Membership::default(),
        at(11.0),
    );
    assert!(unchecked.wants_recording_check);
    let refused = pass(
        &spec,
        &containers,
        Demand::default(),
        Recordable::No("the state file cannot be written: read-only".into()),
        &Membership::default(),
        at(11.0),
    );
    assert!(
        refused.decisions[0]
            .plan
            .steps
            .iter()
            .all(|step| !step.is_destructive())
    );
    assert_eq!(refused.next_wake, Some(at(16.0)));
    assert!(refused.conditions.iter().any(|(kind, status, reason, _)| {
        *kind == "Degraded" && *status == "True" && *reason == "CannotRecord"
    }));
    let allowed = pass(
        &spec,
        &containers,
        Demand::default(),
        Recordable::Yes,
        &Membership::default(),
        at(11.0),
    );
    assert_eq!(stop_time(&allowed), Some(at(10.0)));
}

#[test]
fn an_unread_members_file_holds_stops_back_and_degrades_the_policy() {
    let spec = policy(r#"{"startupGrace": "0s", "maxRuntime": "10s"}"#);
    let containers = [observation(
        record("c1", "alice", 0.0),
        idle_since_window(10.0),
        Memory::default(),
    )];
    let never_read = Membership {
        problems: vec!["membersFile /etc/x of group g: not a regular file".into()],
        incomplete: true,
        ..Membership::default()
    };
    let held = pass(
        &spec,
        &containers,
        Demand::default(),
        Recordable::Yes,
        &never_read,
        at(11.0),
    );
    assert_eq!(stop_time(&held), None);
    let last_read = Membership {
        incomplete: false,
        ..never_read
    };
    let used = pass(
        &spec,
        &containers,
        Demand::default(),
        Recordable::Yes,
        &last_read,
        at(11.0),
    );
    assert_eq!(stop_time(&used), Some(at(10.0)));
    for plan in [&held, &used] {
        assert!(plan.conditions.iter().any(|(_, status, reason, message)| {
            *status == "True" && *reason == "MembersFileUnreadable" && message.contains("/etc/x")
        }));
    }
}

#[test]
fn the_controllers_own_containers_and_a_stop_in_progress_are_left_alone() {
    let spec = policy(r#"{"startupGrace": "0s", "maxRuntime": "10s"}"#);
    let mine = record("ours", "alice", 0.0);
    let own = HashSet::from(["ours".to_owned()]);
    let mut stopping = observation(
        record("c2", "alice", 0.0),
        idle_since_window(10.0),
        Memory::default(),
    );
    stopping.stopping = true;
    let containers = [
        observation(mine, idle_since_window(10.0), Memory::default()),
        stopping,
    ];
    let decided = plan_pass(
        &PassInput {
            spec: &spec,
            dry_run: false,
            containers: &containers,
            membership: &Membership::default(),
            demand: Demand::default(),
            own: &own,
            recordable: Recordable::Yes,
        },
        at(11.0),
    );
    assert_eq!(
        decided.decisions.len(),
        1,
        "the stopping container is skipped"
    );
    assert!(decided.decisions[0].plan.steps.is_empty());
    assert_eq!(
        decided.decisions[0].plan.note.as_deref(),
        Some("the controller's own container")
    );
}

#[test]
fn warnings_a_dry_run_decided_are_sent_again_once_enforcing() {
    let spec =
        policy(r#"{"startupGrace": "0s", "maxRuntime": "100s", "warnAt": {"runtime": [50]}}"#);
    let container = record("c1", "alice", 0.0);
    let dry = plan_pass(
        &PassInput {
            spec: &spec,
            dry_run: true,
            containers: &[observation(
                container.clone(),
                idle_since_window(59.0),
                Memory::default(),
            )],
            membership: &Membership::default(),
            demand: Demand::default(),
            own: &HashSet::new(),
            recordable: Recordable::Yes,
        },
        at(60.0),
    );
    let remembered = dry.decisions[0].plan.memory.clone();
    assert_eq!(remembered.runtime_warned, [0]);
    let enforcing = pass(
        &spec,
        &[observation(container, idle_since_window(60.0), remembered)],
        Demand::default(),
        Recordable::Yes,
        &Membership::default(),
        at(61.0),
    );
    assert!(
        enforcing.decisions[0]
            .plan
            .steps
            .iter()
            .any(|step| matches!(
                step,
                Step::Warn {
                    kind: LimitKind::Runtime,
                    ..
                }
            )),
        "a warning only decided in dry run was never delivered"
    );
}

#[test]
fn requeue_is_the_next_wake_up_bounded_by_the_sample_interval() {
    let spec = policy(r#"{"startupGrace": "0s", "maxRuntime": "10s", "warnAt": {"runtime": []}}"#);
    let decided = pass(
        &spec,
        &[observation(
            record("c1", "alice", 0.0),
            idle_since_window(4.0),
            Memory::default(),
        )],
        Demand::default(),
        Recordable::Yes,
        &Membership::default(),
        at(5.0),
    );
    assert_eq!(
        requeue_after(&decided, Duration::from_secs(60), at(5.0)),
        Duration::from_secs(5)
    );
    assert_eq!(
        requeue_after(&decided, Duration::from_secs(2), at(5.0)),
        Duration::from_secs(2)
    );
}
