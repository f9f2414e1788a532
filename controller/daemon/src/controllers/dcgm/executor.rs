//! The DcgmExporter reconciler: observe (inspect by name, GPUs from the inventory, a health
//! probe), plan, act on Docker, remember, report.

use ds01_spec::EventType;
use std::{sync::Arc, time::Duration};

use ds01_host::docker::{DockerClient, DockerError};
use ds01_runtime::{Action, ReconcileError, Reconciler};
use ds01_spec::{DcgmExporterSpec, Kind, PullPolicy, SpecBody};
use serde_json::json;

use super::{
    desired::{MANAGED_BY, SPEC_HASH, desired_container, spec_hash},
    health,
    plan::{Memory, Observed, ObservedContainer, Plan, Step, plan},
};
use crate::{
    controllers::status::StatusBoard, inventory::SharedInventory, recorder::Recorder,
    spec_store::SpecStore, state_file::Section,
};

/// State-file section of this controller.
pub const SECTION: &str = "dcgmExporter";

/// What the reconciler works with.
pub struct DcgmContext {
    /// Docker (reconnected on demand).
    pub docker: tokio::sync::Mutex<DockerClient>,
    /// Applied specs.
    pub store: Arc<tokio::sync::Mutex<SpecStore>>,
    /// GPUs and containers as observed.
    pub inventory: SharedInventory,
    /// Events.
    pub recorder: Arc<Recorder>,
    /// Reported status.
    pub board: StatusBoard,
    /// Held while a GPU maintenance action runs (exporter restarts, GPU resets).
    pub maintenance: Arc<tokio::sync::Mutex<()>>,
    /// Persistent memory.
    pub state: Section<Memory>,
    /// `--dry-run`: decide and record, change nothing.
    pub dry_run: bool,
}

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
            let _ = context.state.remove(&name);
            return Ok(Action::await_change());
        };
        let client = crate::controllers::connected(&context.docker)
            .await
            .map_err(|error| ReconcileError::Transient(error.into()))?;
        let observed = observe(context, &client, &spec)
            .await
            .map_err(|error| ReconcileError::Transient(error.into()))?;
        let memory: Memory = context.state.get(&name).unwrap_or_default();
        let now = jiff::Timestamp::now();
        let mut decided = plan(&observed, &spec, &memory, now);
        if let Some(step) = decided.step.clone()
            && let Err(failure) = act(context, &client, &spec, &observed, &step).await
        {
            decided.ready = super::plan::Condition {
                status: "False",
                reason: failure.0,
                message: failure.1.clone(),
            };
            decided.memory.last_failure = Some(failure.1);
            decided.requeue_after = decided
                .requeue_after
                .max(spec.restart.backoff_initial.std());
        }
        for (kind, message) in &decided.events {
            context.recorder.emit(*kind, None, json!({ "resource": format!("dcgmexporter/{name}"), "container": spec.container_name, "message": message }));
        }
        if let Err(error) = context.state.set(&name, &decided.memory) {
            tracing::warn!(%error, "cannot persist the exporter's restart history");
        }
        report(context, &name, generation, &observed, &decided);
        Ok(Action::requeue(
            decided.requeue_after.max(Duration::from_millis(200)),
        ))
    }
}

async fn observe(
    context: &DcgmContext,
    client: &DockerClient,
    spec: &DcgmExporterSpec,
) -> Result<Observed, DockerError> {
    let container = client
        .inspect(&spec.container_name)
        .await?
        .map(|info| ObservedContainer {
            ours: info.label(MANAGED_BY.0) == Some(MANAGED_BY.1),
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
    let probe = match &container {
        Some(container)
            if container.state == ds01_host::ContainerState::Running && container.ours =>
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
    })
}

/// Performs a step; `Err((reason, message))` for the Ready condition.
async fn act(
    context: &DcgmContext,
    client: &DockerClient,
    spec: &DcgmExporterSpec,
    observed: &Observed,
    step: &Step,
) -> Result<(), (&'static str, String)> {
    if context.dry_run {
        // Record the decision (the recorder marks it `dry_run: true`) and change nothing.
        let (kind, reason) = match step {
            Step::Create => (EventType::DcgmCreated, "it is missing".to_owned()),
            Step::Recreate => (EventType::DcgmCreated, "the spec changed".to_owned()),
            Step::Start { reason } | Step::Restart { reason } => {
                (EventType::DcgmRestarted, reason.clone())
            }
        };
        context.recorder.emit(
            kind,
            None,
            json!({ "container": spec.container_name, "reason": reason }),
        );
        return Ok(());
    }
    let Ok(_maintenance) = context.maintenance.try_lock() else {
        return Err((
            "GpuMaintenance",
            "another GPU maintenance action started; retrying".to_owned(),
        ));
    };
    let docker_failed = |error: DockerError| ("DockerError", ds01_runtime::error_chain(&error));
    let existing = observed
        .container
        .as_ref()
        .map(|container| container.id.clone());
    match step {
        Step::Create | Step::Recreate => {
            ensure_image(client, spec).await?;
            if let Some(id) = &existing {
                client
                    .stop(id, spec.stop_timeout.std())
                    .await
                    .map_err(docker_failed)?;
                let stopped_first = ds01_host::docker::RemoveOptions {
                    force: false,
                    volumes: true,
                };
                match client.remove(id, stopped_first).await {
                    Err(error) if !error.is_not_found() => return Err(docker_failed(error)),
                    _ => {}
                }
            }
            let id = client
                .create(&desired_container(spec))
                .await
                .map_err(docker_failed)?;
            client.start(&id).await.map_err(docker_failed)?;
            let reason = if matches!(step, Step::Recreate) {
                "the spec changed"
            } else {
                "it was missing"
            };
            context.recorder.emit(EventType::DcgmCreated, None, json!({ "container": spec.container_name, "container_id": id.get(..12).unwrap_or(&id), "reason": reason }));
        }
        Step::Start { reason } | Step::Restart { reason } => {
            let Some(id) = existing else { return Ok(()) };
            if matches!(step, Step::Restart { .. }) {
                client
                    .stop(&id, spec.stop_timeout.std())
                    .await
                    .map_err(docker_failed)?;
            }
            client.start(&id).await.map_err(docker_failed)?;
            context.recorder.emit(EventType::DcgmRestarted, None, json!({ "container": spec.container_name, "container_id": id.get(..12).unwrap_or(&id), "reason": reason }));
        }
    }
    Ok(())
}

async fn ensure_image(
    client: &DockerClient,
    spec: &DcgmExporterSpec,
) -> Result<(), (&'static str, String)> {
    let present = client
        .image_present(&spec.image)
        .await
        .map_err(|error| ("DockerError", ds01_runtime::error_chain(&error)))?;
    if present {
        return Ok(());
    }
    if spec.pull_policy == PullPolicy::Never {
        return Err((
            "ImageUnavailable",
            format!(
                "image {} is not present and pullPolicy is Never",
                spec.image
            ),
        ));
    }
    client.pull(&spec.image).await.map_err(|error| {
        (
            "ImageUnavailable",
            format!(
                "image {} is not present and cannot be pulled: {}",
                spec.image,
                ds01_runtime::error_chain(&error)
            ),
        )
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
