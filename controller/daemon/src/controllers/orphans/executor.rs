//! The GpuOrphanPolicy reconciler: build the observation from the inventory and `/proc`,
//! plan, signal by verified identity, reset under the GPU-maintenance lock, report.

use std::{sync::Arc, time::Duration};

use ds01_host::process::{IdentitySignal, ProcessIdentity, SignalOutcome};
use ds01_runtime::{Action, ReconcileError, Reconciler};
use ds01_spec::{GpuOrphanPolicySpec, Kind, PolicyMode, SpecBody};
use serde_json::json;

use super::{
    context::OrphanContext,
    observe::{Unobserved, observe},
    plan::{Memory, Plan, Settings, Step, plan, stale},
    reset::reset,
};

/// Reconciles one `GpuOrphanPolicy`, keyed by name.
pub struct OrphanReconciler(pub Arc<OrphanContext>);

/// Never fails as a whole: problems are reported in status and events.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
pub struct Never;

impl Reconciler<String> for OrphanReconciler {
    type Error = Never;

    async fn reconcile(&self, name: String) -> Result<Action, ReconcileError<Never>> {
        let context = &self.0;
        let stored = context
            .store
            .lock()
            .await
            .spec_of(Kind::GpuOrphanPolicy, &name);
        let Some((SpecBody::GpuOrphanPolicy(spec), generation)) = stored else {
            context.board.remove(Kind::GpuOrphanPolicy, &name);
            let _ = context.state.remove(&name);
            return Ok(Action::await_change());
        };
        let mut spec = spec;
        if context.dry_run {
            spec.mode = PolicyMode::DryRun;
        }
        let memory: Memory = context.state.get(&name).unwrap_or_default();
        let settings = Settings {
            basis: Settings::basis(generation, spec.mode),
            max_snapshot_age: context.gpu_poll_interval * 2,
        };
        let now = jiff::Timestamp::now();
        let observed = observe(context, &memory).and_then(|observed| {
            stale(&observed, &settings, now).map_or(Ok(observed), |why| Err(Unobserved::Stale(why)))
        });
        let observed = match observed {
            Ok(observed) => observed,
            Err(why) => {
                let conditions = [("Ready", "False", "ObservationIncomplete", why.to_string())];
                context.board.set(
                    Kind::GpuOrphanPolicy,
                    &name,
                    generation,
                    &conditions,
                    json!({}),
                );
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
        };
        let decided = plan(&observed, &spec, &memory, &settings, now);
        for (kind, user, details) in &decided.events {
            let mut details = details.clone();
            details["policy"] = json!(name);
            context.recorder.emit(*kind, user.as_deref(), details);
        }
        let mut last_reset = None;
        for step in &decided.steps {
            match step {
                Step::Terminate(identity) => {
                    signal(context, *identity, IdentitySignal::Terminate);
                }
                Step::Kill(identity) => signal(context, *identity, IdentitySignal::Kill),
                Step::Reset { uuid, index } => {
                    last_reset = Some(reset(context, &spec, uuid, *index).await)
                }
            }
        }
        if let Err(error) = context.state.set(&name, &decided.memory) {
            tracing::warn!(%error, "cannot persist the orphan policy's memory");
        }
        report(context, &name, generation, &spec, &decided, last_reset);
        let busy = decided
            .memory
            .tracked
            .values()
            .any(|tracked| tracked.terminated_at.is_some() && !tracked.unkillable);
        Ok(Action::requeue(if busy {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        }))
    }
}

/// Signals a process only if it is still the same process (pid and start time), through a
/// pidfd so that a reused pid can never receive it.
fn signal(context: &OrphanContext, identity: ProcessIdentity, signal: IdentitySignal) {
    match ds01_host::process::signal_identity(&context.proc_root, identity, signal) {
        Ok(SignalOutcome::Sent) => tracing::info!(
            pid = identity.pid,
            ?signal,
            "signalled an orphaned GPU process"
        ),
        Ok(outcome) => tracing::info!(
            pid = identity.pid,
            ?signal,
            ?outcome,
            "not signalled: the process is no longer the one judged an orphan"
        ),
        Err(error) => {
            tracing::warn!(pid = identity.pid, ?signal, %error, "cannot signal an orphaned GPU process");
        }
    }
}

fn report(
    context: &OrphanContext,
    name: &str,
    generation: u64,
    spec: &GpuOrphanPolicySpec,
    decided: &Plan,
    last_reset: Option<serde_json::Value>,
) {
    let previous = context
        .board
        .get(Kind::GpuOrphanPolicy, name)
        .map(|status| status.details)
        .unwrap_or_default();
    let unkillable: Vec<u32> = decided
        .unkillable
        .iter()
        .map(|identity| identity.pid)
        .collect();
    // Stopped containers that still hold GPUs (the lifecycle policy's gpuHoldAfterStop removes them).
    let stopped_holders: Vec<serde_json::Value> = {
        let inventory = context
            .inventory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inventory
            .containers
            .values()
            .filter(|record| !record.gpu_uuids.is_empty() && !record.info.state.is_live())
            .map(|record| json!({ "container": record.info.name, "user": record.user, "status": record.info.state.as_str(), "gpus": record.gpu_uuids, "finishedAt": record.info.finished_at.map(|at| format!("{at:.3}")) }))
            .collect()
    };
    let details = json!({
        "stoppedContainersHoldingGpus": stopped_holders,
        "mode": if spec.mode == PolicyMode::DryRun { "dryRun" } else { "enforce" },
        "processesByClass": decided.classes,
        "tracked": decided.memory.tracked.len(),
        "unkillable": unkillable,
        "lastAction": decided.steps.last().map(|step| format!("{step:?}")).or_else(|| previous["lastAction"].as_str().map(str::to_owned)),
        "lastReset": last_reset.unwrap_or_else(|| previous["lastReset"].clone()),
    });
    let alert = if unkillable.is_empty() {
        ("OrphansUnkillable", "False", "None", String::new())
    } else {
        (
            "OrphansUnkillable",
            "True",
            "Unkillable",
            format!("processes {unkillable:?} survived SIGKILL; the GPU needs an admin"),
        )
    };
    let ready = (
        "Ready",
        "True",
        if spec.mode == PolicyMode::DryRun {
            "DryRun"
        } else {
            "Enforcing"
        },
        String::new(),
    );
    context.board.set(
        Kind::GpuOrphanPolicy,
        name,
        generation,
        &[ready, alert],
        details,
    );
}
