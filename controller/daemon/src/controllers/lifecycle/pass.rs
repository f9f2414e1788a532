//! One lifecycle pass, planned whole: limits, the high-demand factor, every container's
//! decision, the deferral of what cannot be recorded, the policy's conditions and the next
//! wake-up — a pure function that enforcement, `apply --dry-run` previews, `describe` and
//! `get containers` all share, so they cannot disagree.

use std::{collections::HashSet, sync::Arc, time::Duration};

use ds01_spec::{ContainerLifecyclePolicySpec, Scope, resolve};
use jiff::Timestamp;

use super::{
    members::Membership,
    plan::{Memory, Plan, Sample, Step, Subject, plan},
};
use crate::inventory::ContainerRecord;

/// How long a pass waits before trying again a stop it could not record.
pub const RECORD_RETRY: Duration = Duration::from_secs(5);

/// One container as a pass sees it.
#[derive(Clone, Debug)]
pub struct Observation {
    /// What the inventory knows.
    pub record: Arc<ContainerRecord>,
    /// Its signals.
    pub sample: Sample,
    /// What the policy remembers of it, for planning.
    pub memory: Memory,
    /// What the state file holds for it now (differs from `memory` when a stop a killed
    /// controller left unrecorded was settled): a decision's memory is written when it differs.
    pub stored: Memory,
    /// Its stop is in progress: nothing is decided for it until that is over.
    pub stopping: bool,
}

/// GPU demand for the high-demand factor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    /// GPUs NVML reports.
    pub gpus: usize,
    /// Of those, how many running containers are granted.
    pub held: usize,
}

/// Whether a destructive step could be recorded (state file and event log writable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recordable {
    /// Not checked yet: the executor checks, then plans again, when something destructive is due.
    Unchecked,
    /// Both can be written.
    Yes,
    /// Why not.
    No(String),
}

/// Everything a pass decides from.
#[derive(Clone, Debug)]
pub struct PassInput<'a> {
    /// The policy.
    pub spec: &'a ContainerLifecyclePolicySpec,
    /// Nothing is changed (the policy's `dryRun`, or `--dry-run`).
    pub dry_run: bool,
    /// Every container.
    pub containers: &'a [Observation],
    /// Each group's `membersFile` members as last read, and what could not be read.
    pub membership: &'a Membership,
    /// GPU demand.
    pub demand: Demand,
    /// Containers the controller itself created.
    pub own: &'a HashSet<String>,
    /// Whether destructive steps can be recorded.
    pub recordable: Recordable,
}

/// The decision for one container.
#[derive(Clone, Debug)]
pub struct Decision {
    /// The container.
    pub record: Arc<ContainerRecord>,
    /// Its limits with their sources.
    pub limits: resolve::ResolvedLimits,
    /// The sample it was based on.
    pub sample: Sample,
    /// The memory before this pass.
    pub before: Memory,
    /// The high-demand factor applied to its idle timeout (1 when demand is normal).
    pub idle_factor: f64,
    /// What to do, what to remember, what comes next.
    pub plan: Plan,
}

/// A policy condition: type, status, reason, message.
pub type Condition = (&'static str, &'static str, &'static str, String);

/// The pass's plan.
#[derive(Clone, Debug)]
pub struct PassPlan {
    /// One per container whose stop is not in progress.
    pub decisions: Vec<Decision>,
    /// The high-demand factor applied to idle timeouts.
    pub idle_factor: f64,
    /// `Ready` and `Degraded`.
    pub conditions: Vec<Condition>,
    /// The earliest deadline or warning time, or the retry of a deferred stop.
    pub next_wake: Option<Timestamp>,
    /// Something destructive is due and recordability was not checked: check, then plan again.
    pub wants_recording_check: bool,
    /// Why destructive steps were held back, if they were.
    pub deferred: Option<String>,
    /// Containers that count as idle now.
    pub idle: usize,
}

/// Why a container must not be touched by this policy, if it must not.
#[must_use]
pub fn untouchable(
    record: &ContainerRecord,
    spec: &ContainerLifecyclePolicySpec,
    own: &HashSet<String>,
) -> Option<String> {
    let labels = || {
        record
            .info
            .labels
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    };
    if let Some(selector) = spec
        .protected_labels
        .iter()
        .find(|selector| selector.matches(labels()))
    {
        return Some(format!("protected by label {selector}"));
    }
    if own.contains(&record.info.id) {
        return Some("the controller's own container".to_owned());
    }
    if spec.scope == Scope::Gpu && !record.info.gpu.has_gpu {
        return Some("outside scope (no GPU access)".to_owned());
    }
    None
}

/// The high-demand factor: `highDemand.idleTimeoutFactor` while the share of GPUs held reaches
/// `highDemand.threshold`, else 1.
#[must_use]
pub fn idle_factor(spec: &ContainerLifecyclePolicySpec, demand: &Demand) -> f64 {
    if demand.gpus == 0 {
        return 1.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "GPU counts are tiny")]
    let share = demand.held.min(demand.gpus) as f64 / demand.gpus as f64 * 100.0;
    if share >= spec.high_demand.threshold.value() {
        spec.high_demand.idle_timeout_factor
    } else {
        1.0
    }
}

/// Plans a pass.
#[must_use]
pub fn plan_pass(input: &PassInput<'_>, now: Timestamp) -> PassPlan {
    let factor = idle_factor(input.spec, &input.demand);
    let mut pass = PassPlan {
        decisions: Vec::with_capacity(input.containers.len()),
        idle_factor: factor,
        conditions: Vec::new(),
        next_wake: None,
        wants_recording_check: false,
        deferred: None,
        idle: 0,
    };
    for observed in input
        .containers
        .iter()
        .filter(|observed| !observed.stopping)
    {
        let record = &observed.record;
        let limits = resolve::resolve(
            input.spec,
            resolve::Subject {
                user: &record.user,
                origin: &record.origin,
            },
            &input.membership.by_group,
            now,
        );
        let subject = Subject {
            state: record.info.state,
            created_at: record.info.created_at,
            started_at: record.info.started_at,
            finished_at: record.info.finished_at,
            has_gpu: record.info.gpu.has_gpu,
            untouchable: untouchable(record, input.spec, input.own),
        };
        let mut decided = plan(
            &subject,
            &limits,
            &observed.sample,
            &observed.memory.for_mode(input.dry_run),
            factor,
            now,
        );
        if input.dry_run {
            super::dry_run_once::record_once(&mut decided);
        }
        if !input.dry_run && decided.steps.iter().any(Step::is_destructive) {
            let incomplete = input.membership.incomplete.then(|| {
                "group membership is incomplete (a membersFile was never read)".to_owned()
            });
            match (&input.recordable, incomplete.as_ref()) {
                (_, Some(why)) | (Recordable::No(why), None) => {
                    decided.steps.retain(|step| !step.is_destructive());
                    pass.deferred.get_or_insert_with(|| why.clone());
                    let retry = super::plan::add(now, RECORD_RETRY);
                    decided.next_deadline =
                        Some(decided.next_deadline.map_or(retry, |at| at.min(retry)));
                }
                (Recordable::Unchecked, None) => pass.wants_recording_check = true,
                (Recordable::Yes, None) => {}
            }
        }
        pass.idle += usize::from(decided.idle);
        if let Some(at) = decided.next_deadline {
            pass.next_wake = Some(pass.next_wake.map_or(at, |existing| existing.min(at)));
        }
        pass.decisions.push(Decision {
            record: record.clone(),
            limits,
            sample: observed.sample.clone(),
            before: observed.stored.clone(),
            idle_factor: factor,
            plan: decided,
        });
    }
    pass.conditions = conditions(input, pass.deferred.as_deref());
    pass
}

fn conditions(input: &PassInput<'_>, deferred: Option<&str>) -> Vec<Condition> {
    let ready = (
        "Ready",
        "True",
        if input.dry_run { "DryRun" } else { "Enforcing" },
        String::new(),
    );
    let members = &input.membership;
    let degraded = if !members.problems.is_empty() {
        (
            "Degraded",
            "True",
            "MembersFileUnreadable",
            format!(
                "{}; {}",
                members.problems.join("; "),
                if members.incomplete {
                    "stops and removals are held back until it can be read"
                } else {
                    "the membership last read is used"
                }
            ),
        )
    } else if let Some(problem) = deferred {
        (
            "Degraded",
            "True",
            "CannotRecord",
            format!("stops and removals are held back: {problem}"),
        )
    } else {
        ("Degraded", "False", "AsExpected", String::new())
    };
    vec![ready, degraded]
}

/// When to run the next pass: at the next wake-up, but at least every `sampleInterval`.
#[must_use]
pub fn requeue_after(pass: &PassPlan, sample_interval: Duration, now: Timestamp) -> Duration {
    let until = pass
        .next_wake
        .map(|at| Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO));
    until
        .map_or(sample_interval, |delay| delay.min(sample_interval))
        .max(Duration::from_millis(50))
}

#[cfg(test)]
#[path = "pass_tests.rs"]
mod tests;
