//! The texts owners read, checked for what #16 asks of each: what will happen (or happened),
//! when in the server's local time, why (the limit in force and its source) and what to do.

use std::{collections::BTreeMap, time::Duration};

use ds01_host::{ContainerInfo, ContainerState, GpuAccess};
use ds01_spec::{
    ExemptFrom, Exemption, OnIdle,
    resolve::{LimitSource, ResolvedLimits, Sourced},
};

use super::*;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("time")
}

fn record() -> ContainerRecord {
    ContainerRecord {
        info: ContainerInfo {
            id: "0123456789abcdef".into(),
            name: "thesis".into(),
            image: "img".into(),
            labels: BTreeMap::new(),
            state: ContainerState::Running,
            pid: None,
            created_at: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            user: None,
            mounts: Vec::new(),
            gpu: GpuAccess::default(),
            cgroup_parent: None,
        },
        origin: "docker".into(),
        user: "alice".into(),
        owner_source: "label:ds01.user",
        owner_verified: false,
        gpu_uuids: Vec::new(),
        gpus: crate::inventory::gpu_resolve::ResolvedGpus::default(),
        owner_conflict: None,
        detected_at: at(0),
    }
}

fn limits() -> ResolvedLimits {
    ResolvedLimits {
        idle_timeout: Sourced {
            value: Some(Duration::from_secs(3600).into()),
            source: LimitSource::Group("student".into()),
        },
        max_runtime: Sourced {
            value: Some(Duration::from_secs(7200).into()),
            source: LimitSource::User("alice".into()),
        },
        on_idle: Sourced {
            value: OnIdle::StopAndRemove,
            source: LimitSource::Defaults,
        },
        ..ResolvedLimits::default()
    }
}

fn warning_text(kind: LimitKind, trigger: WarnTrigger, idle_factor: f64) -> String {
    let record = record();
    let limits = limits();
    warning(&Warning {
        record: &record,
        limits: &limits,
        idle_factor,
        kind,
        trigger,
        deadline: at(300),
        keep_alive: ("/workspace/.keep-alive", Duration::from_secs(86_400).into()),
        now: at(0),
    })
}

#[test]
fn an_idle_warning_says_what_when_why_and_what_to_do() {
    let text = warning_text(LimitKind::Idle, WarnTrigger::Percent(80), 1.0);
    for expected in [
        "container thesis (0123456789ab) will be stopped and removed",
        &format!("at {} (in 5 min)", local(at(300))),
        "because it has reached 80% of the idle limit of 1h (idleTimeout from groups.student)",
        "touch /workspace/.keep-alive",
        "holds off idle stops for 1d",
        "Save your work now",
        "exemption",
    ] {
        assert!(text.contains(expected), "missing `{expected}`: {text}");
    }
    let before = warning_text(
        LimitKind::Idle,
        WarnTrigger::Before(Duration::from_secs(300)),
        1.0,
    );
    assert!(
        before.contains("because it will then have been idle for the idle limit of 1h"),
        "{before}"
    );
}

#[test]
fn under_high_demand_the_warning_and_the_stop_name_the_scaled_limit_and_why() {
    let text = warning_text(LimitKind::Idle, WarnTrigger::Percent(80), 0.5);
    assert!(
        text.contains(
            "the idle limit of 30m (idleTimeout 1h from groups.student, × 0.5 while the GPUs are in high demand)"
        ),
        "{text}"
    );
    assert!(stop_reason(LimitKind::Idle, &limits(), 0.5).contains("idle limit of 30m"));
}

#[test]
fn a_runtime_warning_names_the_runtime_limit_and_never_the_keep_alive_file() {
    let text = warning_text(
        LimitKind::Runtime,
        WarnTrigger::Before(Duration::from_secs(300)),
        1.0,
    );
    assert!(text.contains("will be stopped at"), "{text}");
    assert!(
        !text.contains("removed"),
        "runtime stops never remove: {text}"
    );
    assert!(
        text.contains(
            "it will then have run for the runtime limit of 2h (maxRuntime from users.alice)"
        ),
        "{text}"
    );
    assert!(text.contains("Save your work now") && text.contains("exemption"));
    assert!(!text.contains("keep-alive"), "{text}");
}

#[test]
fn the_stop_notice_says_it_was_stopped_why_and_how_to_restart() {
    let record = record();
    let why = stop_reason(LimitKind::Idle, &limits(), 1.0);
    let stopped_only = stopped(&record, &why, false, at(0));
    assert!(
        stopped_only.contains(&format!(
            "container thesis (0123456789ab) was stopped at {}",
            local(at(0))
        )) && stopped_only.contains(
            "because it was idle for the idle limit of 1h (idleTimeout from groups.student)"
        ) && stopped_only.contains("docker start thesis"),
        "{stopped_only}"
    );
    let removed = stopped(&record, &why, true, at(0));
    assert!(
        removed.contains("was stopped and removed") && removed.contains("create it again"),
        "{removed}"
    );
    let manual = stopped(
        &record,
        &manual_stop_reason("root", "maintenance"),
        false,
        at(0),
    );
    assert!(
        manual.contains("because an administrator (root) stopped it: maintenance"),
        "{manual}"
    );
}

#[test]
fn the_exempt_notice_names_the_limit_the_exemption_and_that_nothing_will_be_done() {
    let mut limits = limits();
    limits.idle_timeout.value = None;
    limits.lifted_idle_timeout = Some(Duration::from_secs(3600).into());
    limits.exemptions = vec![Exemption {
        user: "alice".into(),
        exempt_from: vec![ExemptFrom::Idle],
        reason: "deadline week".into(),
        expires: None,
    }];
    let text = exempt(&record(), LimitKind::Idle, &limits);
    for expected in [
        "[ds01] NOTICE: container thesis (0123456789ab) has been idle for 1h",
        "you are exempt: deadline week (with no end date)",
        "Nothing will be done",
    ] {
        assert!(text.contains(expected), "missing `{expected}`: {text}");
    }
}
