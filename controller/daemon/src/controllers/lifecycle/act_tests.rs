//! The executor's effects against a recording engine: removals re-checked right before the
//! call and never forced, stops remembered in the ledger and recorded with their notice, and a
//! stop a killed controller left unrecorded written by the next pass — in milliseconds.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use ds01_host::{ContainerInfo, ContainerState, GpuAccess, docker::RemoveOptions};
use ds01_spec::{ContainerLifecyclePolicySpec, EventType};
use serde_json::json;
use tokio_util::task::TaskTracker;

use super::{
    act::execute,
    context::Stopping,
    context::{LifecycleContext, SECTION},
    members::MembersFiles,
    pass::Decision,
    plan::{Expected, Memory, Plan, Sample, Step},
    stop::{StopOrder, stop_in_background},
};
use crate::{
    controllers::{
        engine::fake::{Call, Recording},
        status::StatusBoard,
    },
    inventory::ContainerRecord,
    recorder::Recorder,
    spec_store::SpecStore,
    state_file::StateFile,
};

pub(super) fn info(id: &str, state: ContainerState) -> ContainerInfo {
    let at = jiff::Timestamp::from_second(1_800_000_000).expect("time");
    ContainerInfo {
        id: id.to_owned(),
        name: format!("name-{id}"),
        image: "img".into(),
        labels: BTreeMap::new(),
        state,
        pid: None,
        created_at: Some(at),
        started_at: Some(at),
        finished_at: (state == ContainerState::Exited).then_some(at),
        exit_code: None,
        user: None,
        mounts: Vec::new(),
        gpu: GpuAccess::default(),
        cgroup_parent: None,
    }
}

pub(super) fn context(directory: &std::path::Path) -> Arc<LifecycleContext<Recording>> {
    let (state, _) = StateFile::open(directory).expect("state");
    let state = Arc::new(state);
    Arc::new(LifecycleContext {
        store: Arc::new(tokio::sync::Mutex::new(
            SpecStore::open(directory).expect("store"),
        )),
        inventory: crate::inventory::SharedInventory::default(),
        recorder: Arc::new(Recorder::new(None, false)),
        board: StatusBoard::default(),
        state: state.section(SECTION),
        engine: Recording::default(),
        sampler: std::sync::Mutex::default(),
        samples: Arc::default(),
        members: MembersFiles::default(),
        proc_root: directory.join("no-proc"),
        dry_run: false,
        gpu_poll_interval: std::time::Duration::from_secs(5),
        views: Arc::default(),
        stopping: Stopping::default(),
        tasks: TaskTracker::new(),
        notices: super::notice_store::NoticeStore::new(&state),
    })
}

fn decision(info: ContainerInfo, steps: Vec<Step>) -> Decision {
    Decision {
        record: Arc::new(ContainerRecord {
            info,
            origin: "docker".into(),
            user: "alice".into(),
            owner_source: "label:ds01.user",
            owner_verified: false,
            gpu_uuids: Vec::new(),
            gpus: crate::inventory::gpu_resolve::ResolvedGpus::default(),
            owner_conflict: None,
            detected_at: jiff::Timestamp::from_second(1_800_000_000).expect("time"),
        }),
        limits: ds01_spec::resolve::ResolvedLimits::default(),
        sample: Sample::default(),
        before: Memory::default(),
        idle_factor: 1.0,
        plan: Plan {
            steps,
            memory: Memory::default(),
            next_deadline: None,
            note: None,
            idle: false,
            upcoming: Vec::new(),
        },
    }
}

pub(super) fn events(context: &LifecycleContext<Recording>) -> Vec<(String, serde_json::Value)> {
    context
        .recorder
        .recent()
        .into_iter()
        .map(|event| (event.event_type, event.details))
        .collect()
}

#[tokio::test]
async fn a_removal_is_rechecked_and_skipped_when_the_container_changed_and_never_forced() {
    let directory = tempfile::tempdir().expect("tempdir");
    let context = context(directory.path());
    let seen = info("c1", ContainerState::Exited);
    let expected = Expected {
        state: seen.state,
        started_at: seen.started_at,
        finished_at: seen.finished_at,
    };
    // It was restarted after the decision: now running.
    context
        .engine
        .containers
        .lock()
        .expect("lock")
        .insert("c1".into(), info("c1", ContainerState::Running));
    let remove = Step::Remove {
        reason: "removeAfterStop",
        expected: expected.clone(),
    };
    let spec = ContainerLifecyclePolicySpec::default();
    execute(
        &context,
        &spec,
        "lab/c1",
        &decision(seen.clone(), vec![remove.clone()]),
        false,
    )
    .await;
    assert_eq!(context.engine.calls(), [Call::Inspect("c1".into())]);
    assert!(events(&context).is_empty());
    // Unchanged: removed, without force, keeping anonymous volumes.
    context
        .engine
        .containers
        .lock()
        .expect("lock")
        .insert("c1".into(), seen.clone());
    execute(
        &context,
        &spec,
        "lab/c1",
        &decision(seen, vec![remove]),
        false,
    )
    .await;
    assert_eq!(
        context.engine.calls()[2],
        Call::Remove(
            "c1".into(),
            RemoveOptions {
                force: false,
                volumes: false
            }
        )
    );
    let written = events(&context);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].0, "lifecycle.removed");
    assert_eq!(written[0].1["outcome"], "removed");
}

#[tokio::test]
async fn a_stop_is_remembered_before_it_is_issued_and_recorded_with_the_owners_notice() {
    let directory = tempfile::tempdir().expect("tempdir");
    let context = context(directory.path());
    let running = decision(info("c2", ContainerState::Running), Vec::new());
    stop_in_background(
        &context,
        StopOrder {
            key: "lab/c2".into(),
            record: running.record.clone(),
            grace: Duration::from_secs(3),
            remove: true,
            remove_volumes: false,
            event: EventType::IdleStop,
            details: json!({ "container_id": "c2", "issued_at": "2027-01-01T00:00:00.000Z" }),
            why: "it was idle for 1h".into(),
            notice: ds01_spec::NotifySpec {
                tty: false,
                container_file: "/workspace/.ds01-alerts".into(),
            },
        },
    );
    // Before the stop ran, its event is in the state file.
    let remembered: Memory = context.state.get("lab/c2").expect("remembered");
    assert_eq!(
        remembered.unrecorded_stop.map(|stop| stop.event),
        Some(EventType::IdleStop)
    );
    assert!(context.stopping.contains("c2"));
    context.tasks.close();
    context.tasks.wait().await;
    assert_eq!(
        context.engine.calls(),
        [
            Call::Stop("c2".into(), Duration::from_secs(3)),
            Call::Remove(
                "c2".into(),
                RemoveOptions {
                    force: false,
                    volumes: false
                }
            )
        ]
    );
    let written = events(&context);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].0, "lifecycle.idle_stop");
    assert_eq!(written[0].1["outcome"], "stopped and removed");
    assert!(
        written[0].1["notice"]["alert_file"]
            .as_str()
            .is_some_and(|why| why.contains("not written")),
        "{}",
        written[0].1
    );
    let forgotten: Option<Memory> = context.state.get("lab/c2");
    assert!(
        forgotten.is_none_or(|memory| memory.unrecorded_stop.is_none()),
        "the recorded stop is forgotten"
    );
    assert!(!context.stopping.contains("c2"));
}

#[tokio::test]
async fn a_stop_left_unrecorded_is_written_for_an_exited_container_and_dropped_for_a_live_one() {
    let directory = tempfile::tempdir().expect("tempdir");
    let context = context(directory.path());
    let left = Memory {
        unrecorded_stop: Some(super::memory::UnrecordedStop {
            event: EventType::RuntimeStop,
            user: "alice".into(),
            details: json!({ "container_id": "c3", "issued_at": "2027-01-01T00:00:00.000Z" }),
        }),
        ..Memory::default()
    };
    let mut exited = left.clone();
    super::ledger::settle(&context, &mut exited, false);
    let mut live = left;
    super::ledger::settle(&context, &mut live, true);
    assert_eq!((exited.unrecorded_stop, live.unrecorded_stop), (None, None));
    let written = events(&context);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].0, "lifecycle.runtime_stop");
    assert_eq!(written[0].1["recorded_after_restart"], true);
}
