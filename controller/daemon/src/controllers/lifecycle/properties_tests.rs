//! Properties of the lifecycle planner over generated limits, start times and sampling.

use std::time::Duration;

use ds01_spec::{
    Duration as SpecDuration,
    resolve::{LimitSource, ResolvedLimits, Sourced},
};
use jiff::Timestamp;
use proptest::prelude::*;

use super::{
    pass::requeue_after,
    plan::{Memory, Sample, Step, Subject, plan},
};
use ds01_host::ContainerState;

fn sourced<T>(value: T) -> Sourced<T> {
    Sourced {
        value,
        source: LimitSource::Defaults,
    }
}

const HUNDRED_YEARS: u64 = 36_525 * 24 * 3600;

fn limits(idle: u64, runtime: Option<u64>, grace: u64) -> ResolvedLimits {
    ResolvedLimits {
        idle_timeout: sourced(Some(SpecDuration::from_secs(idle))),
        max_runtime: sourced(runtime.map(SpecDuration::from_secs)),
        startup_grace: sourced(SpecDuration::from_secs(grace)),
        remove_after_stop: sourced(Some(SpecDuration::from_secs(HUNDRED_YEARS))),
        ..ResolvedLimits::default()
    }
}

fn running(started: Timestamp) -> Subject {
    Subject {
        state: ContainerState::Running,
        created_at: Some(started),
        started_at: Some(started),
        finished_at: None,
        has_gpu: false,
        untouchable: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A reconcile loop that requeues as the pass says, sampling every interval: the idle stop
    /// is issued within a second of idle-since plus the effective timeout. (A timeout shorter
    /// than the sample interval cannot be met: idleness is known only once a window closes.)
    #[test]
    fn the_idle_stop_is_issued_within_a_second_of_its_deadline(
        idle in 1_u64..7200,
        interval in 1_u64..120,
        grace in 0_u64..600,
        phase_ms in 0_u64..1000,
        half in any::<bool>(),
    ) {
        let factor = if half { 0.5 } else { 1.0 };
        prop_assume!(idle as f64 * factor >= interval as f64);
        let limits = limits(idle, None, grace);
        let started = Timestamp::from_second(1_800_000_000).expect("time");
        let mut now = started + jiff::SignedDuration::from_millis(i64::try_from(phase_ms).unwrap_or(0));
        let mut last_reading: Option<Timestamp> = None;
        let mut memory = Memory::default();
        let horizon = started + jiff::SignedDuration::from_secs(i64::try_from(grace + idle * 2 + interval * 4).unwrap_or(0));
        let mut issued = None;
        while now < horizon {
            // A counter reading at most once per interval (as the sampler does).
            let due_reading = last_reading.is_none_or(|at| now.duration_since(at).as_secs_f64() >= interval as f64);
            let window_start = if due_reading {
                let start = last_reading;
                last_reading = Some(now);
                start
            } else {
                None
            };
            let sample = Sample { gpu: None, cpu: window_start.map(|_| 0.0), network: window_start.map(|_| 0), keep_alive: false, window_start };
            let sample = if window_start.is_none() && memory.idle_since.is_some() {
                Sample { cpu: Some(0.0), network: Some(0), ..sample }
            } else { sample };
            let decided = plan(&running(started), &limits, &sample, &memory, factor, now);
            if let Some(deadline) = decided.steps.iter().find_map(|step| match step { Step::Stop { deadline, .. } => Some(*deadline), _ => None }) {
                issued = Some((now, deadline, decided.memory.idle_since));
                break;
            }
            memory = decided.memory.clone();
            let pass = super::pass::PassPlan {
                decisions: Vec::new(), idle_factor: factor, conditions: Vec::new(),
                next_wake: decided.next_deadline, wants_recording_check: false, deferred: None, idle: 0,
            };
            now += jiff::SignedDuration::try_from(requeue_after(&pass, Duration::from_secs(interval), now)).expect("delay");
        }
        let (at, deadline, since) = issued.expect("stopped before the horizon");
        let since = since.expect("an idle episode");
        let effective = Duration::from_secs(idle).mul_f64(factor);
        prop_assert_eq!(deadline, super::plan::add(since, effective));
        let late = at.duration_since(deadline);
        prop_assert!(late >= jiff::SignedDuration::ZERO && late <= jiff::SignedDuration::from_secs(1), "late by {late}");
        let grace_end = super::plan::add(started, Duration::from_secs(grace));
        prop_assert!(since >= grace_end, "idle counted before startupGrace ended");
    }

    /// For any valid durations (at most 100 years) and any start, no computed deadline lies
    /// before the moment it is counted from.
    #[test]
    fn no_deadline_lies_before_what_it_counts_from(
        idle in 1_u64..=HUNDRED_YEARS,
        runtime in 1_u64..=HUNDRED_YEARS,
        grace in 0_u64..=HUNDRED_YEARS,
        start in -2_000_000_000_i64..253_402_207_000,
        offset in 0_i64..1_000_000_000,
        exited in any::<bool>(),
    ) {
        let started = Timestamp::from_second(start.min(Timestamp::MAX.as_second() - 1)).expect("time");
        let now = started.checked_add(jiff::SignedDuration::from_secs(offset)).unwrap_or(Timestamp::MAX);
        let limits = limits(idle, Some(runtime), grace);
        let mut subject = running(started);
        if exited {
            subject.state = ContainerState::Exited;
            subject.finished_at = Some(started);
        }
        let sample = Sample { gpu: None, cpu: Some(0.0), network: Some(0), keep_alive: false, window_start: Some(now) };
        let decided = plan(&subject, &limits, &sample, &Memory::default(), 0.5, now);
        for upcoming in &decided.upcoming {
            prop_assert!(upcoming.at > started, "{upcoming:?} not after the start {started}");
        }
        for step in &decided.steps {
            if let Step::Stop { deadline, .. } = step {
                prop_assert!(*deadline > started, "a stop due {deadline}, not after the start {started}");
            }
        }
        if let Some(wake) = decided.next_deadline {
            prop_assert!(wake >= started);
        }
    }
}
