//! What the lifecycle planner decides with and decides: the container as it needs it, one
//! sample of its signals, the steps, what comes later, and the arithmetic of deadlines
//! (saturating at "never", never "now").

use std::time::Duration;

use ds01_host::ContainerState;
use ds01_spec::{OnIdle, resolve::ResolvedLimits};
use jiff::Timestamp;

use super::memory::{LimitKind, Memory};

/// The container as the planner needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// State.
    pub state: ContainerState,
    /// Creation.
    pub created_at: Option<Timestamp>,
    /// Last start.
    pub started_at: Option<Timestamp>,
    /// Last exit.
    pub finished_at: Option<Timestamp>,
    /// Holds a GPU.
    pub has_gpu: bool,
    /// Why it must not be touched, if it must not (protected label, ours, out of scope).
    pub untouchable: Option<String>,
}

/// One sample of the idle signals; `None` = unknown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// GPU utilisation, percent.
    pub gpu: Option<f64>,
    /// CPU, percent of one core.
    pub cpu: Option<f64>,
    /// Network bytes in + out over the last interval.
    pub network: Option<u64>,
    /// A keep-alive file younger than `keepAlive.maxAge` exists.
    pub keep_alive: bool,
    /// When the window these values measure began (the previous counter reading).
    pub window_start: Option<Timestamp>,
}

/// What sets off a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarnTrigger {
    /// `warnAt`: this percent of the limit reached.
    Percent(u8),
    /// `warnBefore`: this long before the action.
    Before(Duration),
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Warn the owner.
    Warn {
        /// Which limit.
        kind: LimitKind,
        /// What set it off.
        trigger: WarnTrigger,
        /// When the action happens.
        deadline: Timestamp,
    },
    /// Stop (and remove, for `stopAndRemove` on idle).
    Stop {
        /// Which limit.
        reason: LimitKind,
        /// Remove after stopping.
        remove: bool,
        /// When the stop became due.
        deadline: Timestamp,
    },
    /// Remove a stopped or never-started container — only if it is still as it was seen.
    Remove {
        /// `removeAfterStop`, `gpuHoldAfterStop` or `createdTimeout`.
        reason: &'static str,
        /// The state, start and exit the decision was based on.
        expected: Expected,
    },
    /// Report once that the user is exempt.
    ReportExempt,
    /// Tell an exempt owner, once per episode or run, that the limit would have applied now.
    ExemptNotice {
        /// Which limit.
        kind: LimitKind,
    },
}

/// The container as a removal decision saw it; a removal of a container that changed since is
/// not done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// State.
    pub state: ContainerState,
    /// Last start.
    pub started_at: Option<Timestamp>,
    /// Last exit.
    pub finished_at: Option<Timestamp>,
}

impl Step {
    /// Stops and removals: what must not happen unless it can be recorded.
    #[must_use]
    pub fn is_destructive(&self) -> bool {
        matches!(self, Step::Stop { .. } | Step::Remove { .. })
    }
}

/// An action the plan expects to take later, for previews, `describe` and `get`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upcoming {
    /// When.
    pub at: Timestamp,
    /// `stop`, `stop and remove` or `remove`.
    pub action: &'static str,
    /// The limit and its source (`idleTimeout 30m from users.alice`).
    pub reason: String,
    /// What it assumes, when it is not certain (`if idle from now on`).
    pub assuming: Option<&'static str>,
}

/// The planner's answer for one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Next memory.
    pub memory: Memory,
    /// When to look again at the latest (a deadline or warning time), if anything is pending.
    pub next_deadline: Option<Timestamp>,
    /// Why nothing is counted (untouchable, unknown signal, startup grace), for `describe`.
    pub note: Option<String>,
    /// Whether it counts as idle now.
    pub idle: bool,
    /// What comes later, soonest first.
    pub upcoming: Vec<Upcoming>,
}

/// `at + duration`, saturating at the largest timestamp: a deadline too far to compute is
/// "never", never "now".
#[must_use]
pub fn add(at: Timestamp, duration: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(duration)
        .ok()
        .and_then(|delta| at.checked_add(delta).ok())
        .unwrap_or(Timestamp::MAX)
}

fn sub(at: Timestamp, duration: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(duration)
        .ok()
        .and_then(|delta| at.checked_sub(delta).ok())
        .unwrap_or(Timestamp::MIN)
}

fn fraction_of(duration: Duration, percent: f64) -> Duration {
    duration.mul_f64((percent / 100.0).clamp(0.0, 1.0))
}

impl Plan {
    pub(super) fn wake_at(&mut self, at: Timestamp) {
        self.next_deadline = Some(self.next_deadline.map_or(at, |existing| existing.min(at)));
    }

    pub(super) fn due(&mut self, deadline: Timestamp, now: Timestamp, step: Step) {
        if now >= deadline {
            self.steps.push(step);
        } else {
            self.wake_at(deadline);
        }
    }
}

impl Plan {
    pub(super) fn upcoming(&mut self, at: Timestamp, action: &'static str, reason: String) {
        self.upcoming.push(Upcoming {
            at,
            action,
            reason,
            assuming: None,
        });
    }

    /// Warnings of one limit: `warnAt` fractions counted from `from`, `warnBefore` lead times
    /// before `deadline`; each sent once (indexes remembered in `sent`/`sent_before`).
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per limit; a struct would only rename them"
    )]
    pub(super) fn warnings(
        &mut self,
        kind: LimitKind,
        from: Timestamp,
        limit: Duration,
        (fractions, leads): (&[ds01_spec::Percent], &[ds01_spec::Duration]),
        (sent, sent_before): (&mut Vec<usize>, &mut Vec<usize>),
        deadline: Timestamp,
        now: Timestamp,
    ) {
        for (index, fraction) in fractions.iter().enumerate() {
            let due = add(from, fraction_of(limit, fraction.value()));
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "percentages are 0-100"
            )]
            let trigger = WarnTrigger::Percent(fraction.value().round() as u8);
            self.warning(kind, trigger, (due, deadline, now), index, sent);
        }
        for (index, lead) in leads.iter().enumerate() {
            let due = sub(deadline, lead.std()).max(from);
            let trigger = WarnTrigger::Before(lead.std());
            self.warning(kind, trigger, (due, deadline, now), index, sent_before);
        }
        self.wake_at(deadline);
    }

    fn warning(
        &mut self,
        kind: LimitKind,
        trigger: WarnTrigger,
        (due, deadline, now): (Timestamp, Timestamp, Timestamp),
        index: usize,
        sent: &mut Vec<usize>,
    ) {
        if now < due {
            self.wake_at(due);
        } else if !sent.contains(&index) {
            sent.push(index);
            self.steps.push(Step::Warn {
                kind,
                trigger,
                deadline,
            });
        }
    }
}

/// The action an idle stop takes, in words.
#[must_use]
pub fn idle_action(limits: &ResolvedLimits) -> &'static str {
    if limits.on_idle.value == OnIdle::StopAndRemove {
        "stop and remove"
    } else {
        "stop"
    }
}
