//! Lifecycle planner cases with an explicit `now`.

use ds01_spec::{
    Duration as SpecDuration,
    resolve::{LimitSource, Sourced},
};

use ds01_spec::OnIdle;

use super::*;

pub(super) fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("timestamp")
}

pub(super) fn limits(idle_seconds: Option<u64>, runtime_seconds: Option<u64>) -> ResolvedLimits {
    let set = |value| Sourced {
        value,
        source: LimitSource::Defaults,
    };
    ResolvedLimits {
        idle_timeout: set(idle_seconds.map(SpecDuration::from_secs)),
        max_runtime: set(runtime_seconds.map(SpecDuration::from_secs)),
        startup_grace: Sourced {
            value: SpecDuration::from_secs(0),
            source: LimitSource::Defaults,
        },
        on_idle: Sourced {
            value: OnIdle::StopAndRemove,
            source: LimitSource::Defaults,
        },
        ..ResolvedLimits::default()
    }
}

pub(super) fn running(has_gpu: bool) -> Subject {
    Subject {
        state: ContainerState::Running,
        created_at: Some(at(-10)),
        started_at: Some(at(0)),
        finished_at: None,
        has_gpu,
        untouchable: None,
    }
}

pub(super) fn expected(subject: &Subject) -> Expected {
    Expected {
        state: subject.state,
        started_at: subject.started_at,
        finished_at: subject.finished_at,
    }
}

pub(super) fn quiet() -> Sample {
    Sample {
        gpu: Some(0.0),
        cpu: Some(0.5),
        network: Some(100),
        keep_alive: false,
        window_start: None,
    }
}

/// Runs the planner every second from `from` to `to`, collecting (second, step).
pub(super) fn run(
    subject: &Subject,
    limits: &ResolvedLimits,
    sample: impl Fn(i64) -> Sample,
    from: i64,
    to: i64,
) -> Vec<(i64, Step)> {
    let mut memory = Memory::default();
    let mut steps = Vec::new();
    for second in from..=to {
        let plan = plan(subject, limits, &sample(second), &memory, 1.0, at(second));
        steps.extend(plan.steps.into_iter().map(|step| (second, step)));
        memory = plan.memory;
    }
    steps
}

#[test]
fn an_idle_container_is_warned_at_80_and_95_percent_then_stopped_and_removed_at_the_timeout() {
    let steps = run(
        &running(true),
        &limits(Some(100), None),
        |_| quiet(),
        10,
        115,
    );
    let expected_deadline = at(110);
    assert_eq!(
        steps,
        [
            (
                90,
                Step::Warn {
                    kind: LimitKind::Idle,
                    trigger: WarnTrigger::Percent(80),
                    deadline: expected_deadline
                }
            ),
            (
                105,
                Step::Warn {
                    kind: LimitKind::Idle,
                    trigger: WarnTrigger::Percent(95),
                    deadline: expected_deadline
                }
            ),
            (
                110,
                Step::Stop {
                    reason: LimitKind::Idle,
                    remove: true,
                    deadline: expected_deadline
                }
            ),
            (
                111,
                Step::Stop {
                    reason: LimitKind::Idle,
                    remove: true,
                    deadline: expected_deadline
                }
            ),
            (
                112,
                Step::Stop {
                    reason: LimitKind::Idle,
                    remove: true,
                    deadline: expected_deadline
                }
            ),
            (
                113,
                Step::Stop {
                    reason: LimitKind::Idle,
                    remove: true,
                    deadline: expected_deadline
                }
            ),
            (
                114,
                Step::Stop {
                    reason: LimitKind::Idle,
                    remove: true,
                    deadline: expected_deadline
                }
            ),
            (
                115,
                Step::Stop {
                    reason: LimitKind::Idle,
                    remove: true,
                    deadline: expected_deadline
                }
            ),
        ]
    );
}

#[test]
fn activity_a_keep_alive_file_or_an_unknown_signal_ends_or_prevents_the_episode() {
    let limits = limits(Some(100), None);
    // Busy CPU at second 50 restarts the episode: the stop moves to 150.
    let busy_once = run(
        &running(false),
        &limits,
        |second| {
            if second == 50 {
                Sample {
                    cpu: Some(90.0),
                    ..quiet()
                }
            } else {
                quiet()
            }
        },
        0,
        160,
    );
    assert_eq!(
        busy_once
            .iter()
            .find(|(_, step)| matches!(step, Step::Stop { .. }))
            .map(|(second, _)| *second),
        Some(151)
    );
    // Network above 1 MiB per interval is activity.
    let chatty = run(
        &running(false),
        &limits,
        |_| Sample {
            network: Some(5 << 20),
            ..quiet()
        },
        0,
        300,
    );
    assert!(chatty.is_empty());
    let kept = run(
        &running(false),
        &limits,
        |_| Sample {
            keep_alive: true,
            ..quiet()
        },
        0,
        300,
    );
    assert!(kept.is_empty());
    // A GPU container whose GPU signal is unknown is never idle.
    let unknown = run(
        &running(true),
        &limits,
        |_| Sample {
            gpu: None,
            ..quiet()
        },
        0,
        300,
    );
    assert!(unknown.is_empty());
    let note = plan(
        &running(true),
        &limits,
        &Sample {
            gpu: None,
            ..quiet()
        },
        &Memory::default(),
        1.0,
        at(10),
    )
    .note;
    assert!(note.is_some_and(|note| note.contains("gpu")));
    // A busy GPU is activity.
    let gpu_busy = run(
        &running(true),
        &limits,
        |_| Sample {
            gpu: Some(60.0),
            ..quiet()
        },
        0,
        300,
    );
    assert!(gpu_busy.is_empty());
}

#[test]
fn max_runtime_warns_once_per_run_and_stops_at_the_deadline() {
    let steps = run(
        &running(false),
        &limits(None, Some(100)),
        |_| Sample {
            cpu: Some(100.0),
            ..quiet()
        },
        0,
        101,
    );
    let deadline = at(100);
    assert_eq!(
        steps,
        [
            (
                75,
                Step::Warn {
                    kind: LimitKind::Runtime,
                    trigger: WarnTrigger::Percent(75),
                    deadline
                }
            ),
            (
                90,
                Step::Warn {
                    kind: LimitKind::Runtime,
                    trigger: WarnTrigger::Percent(90),
                    deadline
                }
            ),
            (
                100,
                Step::Stop {
                    reason: LimitKind::Runtime,
                    remove: false,
                    deadline
                }
            ),
            (
                101,
                Step::Stop {
                    reason: LimitKind::Runtime,
                    remove: false,
                    deadline
                }
            ),
        ]
    );
    // Before the deadline the next look is scheduled for the next warning, then the deadline.
    let early = plan(
        &running(false),
        &limits(None, Some(100)),
        &quiet(),
        &Memory::default(),
        1.0,
        at(10),
    );
    assert_eq!(early.next_deadline, Some(at(75)));
    let late = plan(
        &running(false),
        &limits(None, Some(100)),
        &quiet(),
        &early.memory,
        1.0,
        at(95),
    );
    assert_eq!(late.next_deadline, Some(deadline));
}

#[test]
fn stopped_and_never_started_containers_are_removed_after_their_holds() {
    let limits = limits(None, None);
    let exited = |has_gpu| Subject {
        state: ContainerState::Exited,
        created_at: Some(at(0)),
        started_at: Some(at(0)),
        finished_at: Some(at(0)),
        has_gpu,
        untouchable: None,
    };
    // removeAfterStop 30m for CPU containers, gpuHoldAfterStop 15m for GPU holders.
    assert!(
        plan(
            &exited(false),
            &limits,
            &quiet(),
            &Memory::default(),
            1.0,
            at(1799)
        )
        .steps
        .is_empty()
    );
    assert_eq!(
        plan(
            &exited(false),
            &limits,
            &quiet(),
            &Memory::default(),
            1.0,
            at(1800)
        )
        .steps,
        [Step::Remove {
            reason: "removeAfterStop",
            expected: expected(&exited(false))
        }]
    );
    assert_eq!(
        plan(
            &exited(true),
            &limits,
            &quiet(),
            &Memory::default(),
            1.0,
            at(900)
        )
        .steps,
        [Step::Remove {
            reason: "gpuHoldAfterStop",
            expected: expected(&exited(true))
        }]
    );
    let created = Subject {
        state: ContainerState::Created,
        created_at: Some(at(0)),
        started_at: None,
        finished_at: None,
        has_gpu: false,
        untouchable: None,
    };
    assert_eq!(
        plan(
            &created,
            &limits,
            &quiet(),
            &Memory::default(),
            1.0,
            at(1800)
        )
        .steps,
        [Step::Remove {
            reason: "createdTimeout",
            expected: expected(&created)
        }]
    );
    assert_eq!(
        plan(
            &created,
            &limits,
            &quiet(),
            &Memory::default(),
            1.0,
            at(100)
        )
        .next_deadline,
        Some(at(1800))
    );
}
