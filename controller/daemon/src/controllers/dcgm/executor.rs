//! The DcgmExporter reconciler: observe (inspect by name, GPUs from the inventory, a health
//! probe), plan, act on Docker, remember, report.

use ds01_spec::EventType;
use std::{sync::Arc, time::Duration};

use ds01_host::docker::{DockerClient, DockerError};
use ds01_runtime::{Action, ReconcileError, Reconciler};
use ds01_spec::{DcgmExporterSpec, Kind, SpecBody};
use serde_json::json;

use super::{
    act::{act, remember_outcome},
    context::DcgmContext,
    desired::{MANAGED_BY, SPEC_HASH, spec_hash},
    health,
    plan::{Memory, Observed, ObservedContainer, Plan, plan},
};
use crate::inventory::SharedInventory;

/// Reconciles one `DcgmExporter` resource, keyed by its name.
pub struct DcgmReconciler(pub Arc<DcgmContext>);

/// A failure of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum DcgmError {
    /// Docker failed.
    #[error("docker request failed")]
    Docker(#[from] DockerError),
}

fn mig_layout(inventory: &SharedInventory) -> String {
    let inventory = inventory
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    inventory
        .gpus
        .gpus
        .iter()
        .filter(|gpu| gpu.mig_enabled == Some(true))
        .map(|gpu| {
            format!(
                "{}:{}",
                gpu.uuid,
                gpu.mig_devices
                    .iter()
                    .map(|mig| mig.uuid.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The MIG layout fingerprint the exporter is restarted on.
#[must_use]
pub fn layout_fingerprint(inventory: &SharedInventory) -> String {
    mig_layout(inventory)
}

impl Reconciler<String> for DcgmReconciler {
    type Error = DcgmError;

    async fn reconcile(&self, name: String) -> Result<Action, ReconcileError<DcgmError>> {
        let context = &self.0;
        let stored = context
            .store
            .lock()
            .await
            .spec_of(Kind::DcgmExporter, &name);
        let Some((SpecBody::DcgmExporter(spec), generation)) = stored else {
            context.board.remove(Kind::DcgmExporter, &name);
            // The container it created stays where it is (deleting a spec undoes nothing), and
            // its id is kept: applying the spec again takes it back instead of calling it a
            // name conflict. The restart history goes.
            let created = context
                .state
                .get(&name)
                .and_then(|memory: Memory| memory.container_id);
            let _ = match created {
                Some(container_id) => context.state.set(
                    &name,
                    &Memory {
                        container_id: Some(container_id),
                        ..Memory::default()
                    },
                ),
                None => context.state.remove(&name),
            };
            own_containers(&context.inventory).set(&name, None);
            return Ok(Action::await_change());
        };
        let client = crate::controllers::connected(&context.docker)
            .await
            .map_err(|error| ReconcileError::Transient(error.into()))?;
        let memory: Memory = context.state.get(&name).unwrap_or_default();
        let observed = observe(context, &client, &spec, &memory)
            .await
            .map_err(|error| ReconcileError::Transient(error.into()))?;
        let now = jiff::Timestamp::now();
        let mut decided = plan(&observed, &spec, &memory, now);
        if let Some(step) = decided.step.clone() {
            let outcome = act(
                context,
                &client,
                &spec,
                &observed,
                &step,
                &mut decided.memory,
            )
            .await;
            if let Some(details) = remember_outcome(&mut decided.memory, &step, &outcome) {
                let mut details = details;
                details["resource"] = json!(format!("dcgmexporter/{name}"));
                details["container"] = json!(spec.container_name);
                context.recorder.emit(EventType::DcgmFailed, None, details);
            }
            if let Err(failure) = outcome {
                decided.ready = super::plan::Condition {
                    status: "False",
                    reason: failure.reason,
                    message: failure.error,
                };
                decided.requeue_after = decided
                    .requeue_after
                    .max(spec.restart.backoff_initial.std());
            }
        }
        for (kind, message) in &decided.events {
            context.recorder.emit(*kind, None, json!({ "resource": format!("dcgmexporter/{name}"), "container": spec.container_name, "message": message }));
        }
        if let Err(error) = context.state.set(&name, &decided.memory) {
            tracing::warn!(%error, "cannot persist the exporter's restart history");
        }
        own_containers(&context.inventory).set(&name, decided.memory.container_id.as_deref());
        report(context, &name, generation, &observed, &decided);
        Ok(Action::requeue(
            decided.requeue_after.max(Duration::from_millis(200)),
        ))
    }
}

fn own_containers(inventory: &SharedInventory) -> crate::controllers::own::OwnContainers {
    inventory
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .own
        .clone()
}

/// Makes the ids of the exporters remembered in the state file known as the controller's own,
/// before any controller runs a pass.
pub fn remember_own(context: &DcgmContext) {
    let own = own_containers(&context.inventory);
    for name in context.state.keys() {
        if let Some(id) = context
            .state
            .get(&name)
            .and_then(|memory| memory.container_id)
        {
            own.set(&name, Some(&id));
        }
    }
}

async fn observe(
    context: &DcgmContext,
    client: &DockerClient,
    spec: &DcgmExporterSpec,
    memory: &Memory,
) -> Result<Observed, DockerError> {
    let container = client
        .inspect(&spec.container_name)
        .await?
        .map(|info| ObservedContainer {
            labelled_ours: info.label(MANAGED_BY.0) == Some(MANAGED_BY.1)
                && info.label(SPEC_HASH).is_some(),
            spec_hash: info.label(SPEC_HASH).map(str::to_owned),
            state: info.state,
            started_at: info.started_at,
            id: info.id,
        });
    let gpus = {
        let inventory = context
            .inventory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (inventory.gpu.backend == "nvml" && inventory.gpu.last_poll.is_some()).then(|| {
            inventory
                .gpus
                .gpus
                .iter()
                .filter(|gpu| !gpu.uuid.is_empty())
                .map(|gpu| gpu.uuid.clone())
                .collect::<Vec<_>>()
        })
    };
    let mut missing_networks = Vec::new();
    for network in &spec.networks {
        if !client.network_exists(&network.name).await? {
            missing_networks.push(network.name.clone());
        }
    }
    let probe = match &container {
        Some(container)
            if container.state == ds01_host::ContainerState::Running
                && memory.container_id.as_deref() == Some(container.id.as_str()) =>
        {
            let required = if spec.health.require_all_gpus {
                gpus.clone().unwrap_or_default()
            } else {
                Vec::new()
            };
            Some(
                health::probe(
                    spec.bind_address,
                    spec.port,
                    &spec.health.path,
                    spec.health.timeout.std(),
                    &required,
                )
                .await,
            )
        }
        _ => None,
    };
    Ok(Observed {
        container,
        gpus,
        mig_layout: mig_layout(&context.inventory),
        probe,
        maintenance_busy: context.maintenance.try_lock().is_err(),
        desired_hash: spec_hash(spec),
        missing_networks,
    })
}

fn report(context: &DcgmContext, name: &str, generation: u64, observed: &Observed, decided: &Plan) {
    let memory = &decided.memory;
    let details = json!({
        "containerId": observed.container.as_ref().map(|container| container.id.get(..12).unwrap_or(&container.id).to_owned()),
        "phase": observed.container.as_ref().map_or("missing", |container| container.state.as_str()),
        "restartsInWindow": memory.restarts.len(),
        "lastHealthy": memory.last_healthy.map(|at| format!("{at:.3}")),
        "lastFailure": memory.last_failure,
        "nextAttempt": memory.not_before.map(|at| format!("{at:.3}")),
    });
    let conditions = [
        (
            "Ready",
            decided.ready.status,
            decided.ready.reason,
            decided.ready.message.clone(),
        ),
        (
            "Degraded",
            decided.degraded.status,
            decided.degraded.reason,
            decided.degraded.message.clone(),
        ),
    ];
    context
        .board
        .set(Kind::DcgmExporter, name, generation, &conditions, details);
}
