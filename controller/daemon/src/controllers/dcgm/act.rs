//! Performing the planner's step on Docker: create, start, restart, recreate, replace — and
//! in dry run, recording the decision once while it stays the same.

use ds01_host::docker::{DockerClient, DockerError};
use ds01_spec::{DcgmExporterSpec, EventType, PullPolicy};
use serde_json::json;

use super::{
    context::DcgmContext,
    desired::desired_container,
    plan::{Memory, Observed, Step},
};

/// Why a step failed: the Ready condition's reason and Docker's error, verbatim.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {error}")]
pub struct Failure {
    /// The Ready condition's reason (`DockerError`, `ImageUnavailable`, `GpuMaintenance`, …).
    pub reason: &'static str,
    /// What went wrong, Docker's own words where Docker refused.
    pub error: String,
}

impl Failure {
    /// A failure with this reason.
    #[must_use]
    pub fn new(reason: &'static str, error: impl Into<String>) -> Self {
        Failure {
            reason,
            error: error.into(),
        }
    }

    /// Docker refused or failed: its error chain, verbatim.
    #[must_use]
    pub fn docker(error: &DockerError) -> Self {
        Failure::new("DockerError", ds01_runtime::error_chain(error))
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Records a dry-run decision (the recorder marks it `dry_run: true`) unless it is the one
/// recorded last: an unchanged decision is written once, not at every reconcile.
fn record_decision(
    context: &DcgmContext,
    spec: &DcgmExporterSpec,
    step: &Step,
    memory: &mut Memory,
) {
    let (kind, reason) = match step {
        Step::Create => (EventType::DcgmCreated, "it is missing".to_owned()),
        Step::Recreate => (EventType::DcgmCreated, "the spec changed".to_owned()),
        Step::Replace { reason } => (EventType::DcgmReplaced, reason.clone()),
        Step::Start { reason } | Step::Restart { reason } => {
            (EventType::DcgmRestarted, reason.clone())
        }
    };
    let decision = format!("{}: {reason}", kind.as_str());
    if memory.last_decision.as_deref() == Some(decision.as_str()) {
        return;
    }
    context.recorder.emit(
        kind,
        None,
        json!({ "container": spec.container_name, "reason": reason }),
    );
    memory.last_decision = Some(decision);
}

/// Performs `step`. The memory learns the id of any container created, even when a later
/// part of the step fails.
///
/// # Errors
/// The condition reason and Docker's error.
pub async fn act(
    context: &DcgmContext,
    client: &DockerClient,
    spec: &DcgmExporterSpec,
    observed: &Observed,
    step: &Step,
    memory: &mut Memory,
) -> Result<(), Failure> {
    if context.dry_run {
        record_decision(context, spec, step, memory);
        return Ok(());
    }
    let Ok(_maintenance) = context.maintenance.try_lock() else {
        return Err(Failure::new(
            "GpuMaintenance",
            "another GPU maintenance action started; retrying",
        ));
    };
    let docker_failed = |error: DockerError| Failure::docker(&error);
    let existing = observed
        .container
        .as_ref()
        .map(|container| container.id.clone());
    match step {
        Step::Create | Step::Recreate | Step::Replace { .. } => {
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
                if memory.container_id.as_deref() == Some(id.as_str()) {
                    memory.container_id = None;
                }
            }
            let id = client
                .create(&desired_container(spec))
                .await
                .map_err(docker_failed)?;
            memory.container_id = Some(id.clone());
            client.start(&id).await.map_err(docker_failed)?;
            let (kind, reason) = match step {
                Step::Recreate => (EventType::DcgmCreated, "the spec changed".to_owned()),
                Step::Replace { reason } => (EventType::DcgmReplaced, reason.clone()),
                _ => (EventType::DcgmCreated, "it was missing".to_owned()),
            };
            let mut details = json!({ "container": spec.container_name, "container_id": short(&id), "reason": reason });
            if let (EventType::DcgmReplaced, Some(old)) = (kind, &existing) {
                details["replaced_id"] = json!(short(old));
            }
            context.recorder.emit(kind, None, details);
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
            context.recorder.emit(
                EventType::DcgmRestarted,
                None,
                json!({ "container": spec.container_name, "container_id": short(&id), "reason": reason }),
            );
        }
    }
    Ok(())
}

async fn ensure_image(client: &DockerClient, spec: &DcgmExporterSpec) -> Result<(), Failure> {
    let present = client
        .image_present(&spec.image)
        .await
        .map_err(|error| Failure::docker(&error))?;
    if present {
        return Ok(());
    }
    if spec.pull_policy == PullPolicy::Never {
        return Err(Failure::new(
            "ImageUnavailable",
            format!(
                "image {} is not present and pullPolicy is Never",
                spec.image
            ),
        ));
    }
    client.pull(&spec.image).await.map_err(|error| {
        Failure::new(
            "ImageUnavailable",
            format!(
                "image {} is not present and cannot be pulled: {}",
                spec.image,
                ds01_runtime::error_chain(&error)
            ),
        )
    })
}

/// Notes the outcome of a step in the memory; returns the `dcgm.failed` event's details when
/// the failure is one not reported before (the same error again is not written again).
pub fn remember_outcome(
    memory: &mut Memory,
    step: &Step,
    outcome: &Result<(), Failure>,
) -> Option<serde_json::Value> {
    match outcome {
        Ok(()) => {
            memory.last_error = None;
            memory.reported_error = None;
            None
        }
        Err(Failure { reason, error }) => {
            memory.last_failure = Some(error.clone());
            memory.last_error = Some(error.clone());
            if memory.reported_error.as_deref() == Some(error.as_str()) {
                return None;
            }
            memory.reported_error = Some(error.clone());
            let action = match step {
                Step::Create => "create",
                Step::Recreate => "recreate",
                Step::Replace { .. } => "replace",
                Step::Start { .. } => "start",
                Step::Restart { .. } => "restart",
            };
            Some(json!({ "action": action, "reason": reason, "error": error }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_reported_once_until_it_changes_or_an_action_succeeds() {
        let mut memory = Memory::default();
        let refused: Result<(), Failure> = Err(Failure::new(
            "DockerError",
            "docker create x failed: Docker responded with status code 400: No command specified",
        ));
        let first = remember_outcome(&mut memory, &Step::Create, &refused).expect("reported");
        assert_eq!(first["action"], "create");
        assert!(
            first["error"]
                .as_str()
                .is_some_and(|error| error.contains("No command specified"))
        );
        assert_eq!(remember_outcome(&mut memory, &Step::Create, &refused), None);
        assert!(
            memory
                .last_error
                .as_deref()
                .is_some_and(|error| error.contains("No command"))
        );
        let other: Result<(), Failure> = Err(Failure::new("ImageUnavailable", "gone"));
        assert!(remember_outcome(&mut memory, &Step::Create, &other).is_some());
        assert_eq!(remember_outcome(&mut memory, &Step::Create, &Ok(())), None);
        assert_eq!(memory.last_error, None);
        assert!(remember_outcome(&mut memory, &Step::Create, &other).is_some());
    }
}
