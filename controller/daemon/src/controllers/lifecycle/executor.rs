//! The ContainerLifecyclePolicy reconciler: observe every container, plan the pass
//! (`pass::plan_pass`), remember, perform — every `sampleInterval` and at every exact deadline.

use std::{collections::HashSet, sync::Arc, time::Duration};

use ds01_runtime::{Action, ReconcileError, Reconciler};
use ds01_spec::{ContainerLifecyclePolicySpec, Kind, PolicyMode, SpecBody};
use serde_json::json;

use super::{
    context::LifecycleContext,
    observe,
    pass::{Observation, PassInput, PassPlan, Recordable, plan_pass, requeue_after},
    plan::Memory,
    signals::SampleSettings,
    view::view,
};
use crate::controllers::engine::ContainerEngine;

/// Reconciles one `ContainerLifecyclePolicy`, keyed by name, over every container.
pub struct LifecycleReconciler<E>(pub Arc<LifecycleContext<E>>);

/// A failure of one pass.
#[derive(Debug, thiserror::Error)]
#[error("docker is not reachable")]
pub struct NotConnected;

impl<E: ContainerEngine> Reconciler<String> for LifecycleReconciler<E> {
    type Error = NotConnected;

    async fn reconcile(&self, name: String) -> Result<Action, ReconcileError<NotConnected>> {
        let context = &self.0;
        let stored = context
            .store
            .lock()
            .await
            .spec_of(Kind::ContainerLifecyclePolicy, &name);
        let Some((SpecBody::ContainerLifecyclePolicy(spec), generation)) = stored else {
            context.board.remove(Kind::ContainerLifecyclePolicy, &name);
            return Ok(Action::await_change());
        };
        let dry_run = context.dry_run || spec.mode == PolicyMode::DryRun;
        let membership = context.members.read(&spec).await;
        let Some(observed) = observe_all(context, &name, &spec, dry_run).await else {
            let conditions = [(
                "Ready",
                "False",
                "ObservationIncomplete",
                "Docker is not observed right now; nothing is done until it is".to_owned(),
            )];
            context.board.set(
                Kind::ContainerLifecyclePolicy,
                &name,
                generation,
                &conditions,
                json!({}),
            );
            return Ok(Action::requeue(Duration::from_secs(5)));
        };
        let now = jiff::Timestamp::now();
        let mut input = PassInput {
            spec: &spec,
            dry_run,
            containers: &observed.containers,
            membership: &membership,
            demand: observed.demand,
            own: &observed.own,
            recordable: Recordable::Unchecked,
        };
        let mut pass = plan_pass(&input, now);
        let remembered = remember(context, &name, &pass);
        if pass.wants_recording_check {
            // Something destructive is due: only if it can be remembered and reported.
            input.recordable = match remembered.and_then(|()| can_record(context)) {
                Ok(()) => Recordable::Yes,
                Err(why) => Recordable::No(why.to_string()),
            };
            pass = plan_pass(&input, now);
        }
        publish_views(context, &name, &pass, dry_run);
        for decision in &pass.decisions {
            let key = format!("{name}/{}", decision.record.info.id);
            super::act::execute(context, &spec, &key, decision, dry_run).await;
        }
        forget_gone(context, &name, &observed.containers);
        let details = json!({ "containers": observed.containers.len(), "idle": pass.idle, "nextDeadline": pass.next_wake.map(|at| format!("{at:.3}")), "highDemandFactor": pass.idle_factor });
        context.board.set(
            Kind::ContainerLifecyclePolicy,
            &name,
            generation,
            &pass.conditions,
            details,
        );
        Ok(Action::requeue(requeue_after(
            &pass,
            spec.sample_interval.std(),
            jiff::Timestamp::now(),
        )))
    }
}

/// The containers with their samples and memories, GPU demand and the controller's own
/// containers; `None` while Docker is not observed.
struct Observed {
    containers: Vec<Observation>,
    demand: super::pass::Demand,
    own: HashSet<String>,
}

async fn observe_all<E: ContainerEngine>(
    context: &LifecycleContext<E>,
    name: &str,
    spec: &ContainerLifecyclePolicySpec,
    dry_run: bool,
) -> Option<Observed> {
    let any_mig = {
        let inventory = context
            .inventory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !inventory.docker.connected {
            return None;
        }
        observe::any_mig(&inventory)
    };
    let mig = if any_mig {
        super::mig_activity::scrape(&context.store).await
    } else {
        None
    };
    let (records, demand, own) = {
        let inventory = context
            .inventory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            observe::containers(
                &inventory,
                mig.as_ref(),
                observe::gpus_fresh(
                    &inventory,
                    jiff::Timestamp::now(),
                    context.gpu_poll_interval * 2,
                ),
            ),
            observe::demand(&inventory),
            observe::own(&inventory),
        )
    };
    let settings = SampleSettings {
        proc_root: &context.proc_root,
        interval: spec.sample_interval.std(),
        keep_alive_file: &spec.keep_alive.file,
        keep_alive_age: spec.keep_alive.max_age.std(),
    };
    let now = jiff::Timestamp::now();
    let mut containers = Vec::with_capacity(records.len());
    {
        let mut sampler = context
            .sampler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (record, gpu) in records {
            let stopping = context.stopping.contains(&record.info.id);
            let sample = sampler.sample(&record, gpu, settings, now);
            let key = format!("{name}/{}", record.info.id);
            let stored: Memory = context.state.get(&key).unwrap_or_default();
            let mut memory = stored.clone();
            // A stop in progress records its own event; only one a killed controller left
            // behind is settled here.
            if !dry_run && !stopping {
                super::ledger::settle(context, &mut memory, record.info.state.is_live());
            }
            containers.push(Observation {
                record,
                sample,
                memory,
                stored,
                stopping,
            });
        }
        sampler.retain(&|id| {
            containers
                .iter()
                .any(|observed| observed.record.info.id == id)
        });
    }
    context
        .samples
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone_from(
            &containers
                .iter()
                .map(|observed| (observed.record.info.id.clone(), observed.sample.clone()))
                .collect(),
        );
    Some(Observed {
        containers,
        demand,
        own,
    })
}

/// Why a destructive step could not be recorded now.
#[derive(Debug, thiserror::Error)]
enum CannotRecord {
    /// The state file.
    #[error("the state file cannot be written: {0}")]
    StateFile(#[from] std::io::Error),
    /// The event log.
    #[error("the event log cannot be written: {0}")]
    EventLog(#[from] crate::recorder::FlushError),
}

/// Writes every changed memory with one write of the state file (before any action: a crash
/// in between loses at most a warning, never repeats one).
fn remember<E>(
    context: &LifecycleContext<E>,
    name: &str,
    pass: &PassPlan,
) -> Result<(), CannotRecord> {
    let changes: Vec<(String, Option<&Memory>)> = pass
        .decisions
        .iter()
        .filter(|decision| decision.plan.memory != decision.before)
        .map(|decision| {
            (
                format!("{name}/{}", decision.record.info.id),
                Some(&decision.plan.memory),
            )
        })
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    context.state.apply(changes).map_err(|error| {
        tracing::warn!(%error, "cannot persist lifecycle timers");
        CannotRecord::StateFile(error)
    })
}

/// Whether a destructive action could be recorded now: the state file and the event log can
/// both be written.
fn can_record<E>(context: &LifecycleContext<E>) -> Result<(), CannotRecord> {
    context.state.file().sync()?;
    Ok(context.recorder.flush()?)
}

fn publish_views<E>(context: &LifecycleContext<E>, name: &str, pass: &PassPlan, dry_run: bool) {
    let mut views = context
        .views
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for decision in &pass.decisions {
        views.insert(
            decision.record.info.id.clone(),
            view(name, decision, dry_run),
        );
    }
}

fn forget_gone<E>(context: &LifecycleContext<E>, name: &str, containers: &[Observation]) {
    let present: HashSet<&str> = containers
        .iter()
        .map(|observed| observed.record.info.id.as_str())
        .collect();
    context
        .views
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|id, _| present.contains(id.as_str()));
    super::ledger::forget_gone(context, name, &present);
}
