//! Quiet dry runs: a stop or removal a dry run decided stays due at every pass (nothing
//! changes the container), so it is recorded once and then only remembered, for as long as it
//! is the same decision — the same limit and deadline for a stop, the same reason and the same
//! exit (or creation) for a removal. A new idle episode, a restart or an exit is a new
//! decision and is recorded again; a switch to enforcement forgets all of it
//! (`Memory::for_mode`), so enforcement acts on what is due.

use super::plan::{Plan, Step};

/// What identifies a destructive decision; `None` for steps that are not destructive.
fn identity(step: &Step) -> Option<String> {
    match step {
        Step::Stop {
            reason, deadline, ..
        } => Some(format!("{}-stop@{deadline:.3}", reason.as_str())),
        Step::Remove { reason, expected } => Some(format!(
            "remove:{reason}@{}/{}",
            expected
                .started_at
                .map(|at| format!("{at:.3}"))
                .unwrap_or_default(),
            expected
                .finished_at
                .map(|at| format!("{at:.3}"))
                .unwrap_or_default(),
        )),
        _ => None,
    }
}

/// Drops the destructive steps of a dry-run `plan` that an earlier pass already recorded, and
/// remembers the ones due now (only those: a decision no longer due is forgotten).
pub(super) fn record_once(plan: &mut Plan) {
    let due: Vec<String> = plan.steps.iter().filter_map(identity).collect();
    let reported = std::mem::take(&mut plan.memory.dry_run_reported);
    plan.steps
        .retain(|step| identity(step).is_none_or(|identity| !reported.contains(&identity)));
    plan.memory.dry_run_reported = due;
}

#[cfg(test)]
mod tests {
    use ds01_host::ContainerState;

    use super::*;
    use crate::controllers::lifecycle::plan::{Expected, LimitKind, Memory};

    fn at(seconds: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + seconds).expect("time")
    }

    fn plan(steps: Vec<Step>, memory: Memory) -> Plan {
        Plan {
            steps,
            memory,
            next_deadline: None,
            note: None,
            idle: false,
            upcoming: Vec::new(),
        }
    }

    fn stop(deadline: i64) -> Step {
        Step::Stop {
            reason: LimitKind::Idle,
            remove: false,
            deadline: at(deadline),
        }
    }

    fn removal(finished: i64) -> Step {
        Step::Remove {
            reason: "removeAfterStop",
            expected: Expected {
                state: ContainerState::Exited,
                started_at: Some(at(0)),
                finished_at: Some(at(finished)),
            },
        }
    }

    /// Passes in a row, each given what the one before remembered; the steps of each.
    fn passes(due: &[Vec<Step>]) -> Vec<Vec<Step>> {
        let mut memory = Memory::default();
        due.iter()
            .map(|steps| {
                let mut decided = plan(steps.clone(), memory.clone());
                record_once(&mut decided);
                memory = decided.memory;
                decided.steps
            })
            .collect()
    }

    #[test]
    fn an_unchanged_stop_or_removal_is_recorded_at_the_first_pass_only() {
        let same = vec![stop(10), removal(5)];
        let steps = passes(&[same.clone(), same.clone(), same]);
        assert_eq!(steps[0], [stop(10), removal(5)]);
        assert!(steps[1].is_empty() && steps[2].is_empty(), "{steps:?}");
    }

    #[test]
    fn a_new_episode_exit_or_a_decision_no_longer_due_and_due_again_is_recorded_again() {
        let steps = passes(&[
            vec![stop(10), removal(5)],
            // A new idle episode (another deadline) and another exit.
            vec![stop(20), removal(7)],
            // Activity: nothing due; then the same deadline again is a new decision.
            vec![],
            vec![stop(20)],
        ]);
        assert_eq!(steps[1], [stop(20), removal(7)]);
        assert_eq!(steps[3], [stop(20)]);
    }

    #[test]
    fn warnings_and_notices_pass_through_and_enforcement_forgets_what_a_dry_run_recorded() {
        let warning = Step::Warn {
            kind: LimitKind::Idle,
            trigger: crate::controllers::lifecycle::plan::WarnTrigger::Percent(50),
            deadline: at(10),
        };
        let mut decided = plan(vec![warning.clone(), Step::ReportExempt], Memory::default());
        record_once(&mut decided);
        assert_eq!(decided.steps, [warning, Step::ReportExempt]);
        let mut dry = plan(vec![stop(10)], Memory::default().for_mode(true));
        record_once(&mut dry);
        assert!(!dry.memory.dry_run_reported.is_empty());
        assert!(dry.memory.for_mode(false).dry_run_reported.is_empty());
    }
}
