//! The GpuOrphanPolicy reconciler: build the observation from the inventory and `/proc`,
//! plan, signal by verified identity, reset under the GPU-maintenance lock, report.

use ds01_spec::EventType;
use std::{collections::HashSet, path::PathBuf, sync::Arc, time::Duration};

use ds01_host::{
    docker::DockerClient,
    process::{IdentitySignal, ProcessIdentity, SignalOutcome},
};
use ds01_runtime::{Action, ReconcileError, Reconciler};
use ds01_spec::{GpuOrphanPolicySpec, Kind, PolicyMode, SpecBody};
use serde_json::json;

use super::plan::{
    Memory, Observed, ObservedGpu, ObservedProcess, Placement, Plan, Settings, Step, plan, stale,
};
use crate::{
    controllers::status::StatusBoard,
    inventory::{SharedInventory, attribution},
    recorder::Recorder,
    spec_store::SpecStore,
    state_file::Section,
};

pub const SECTION: &str = "gpuOrphanPolicy";

/// What the reconciler works with.
pub struct OrphanContext {
    /// Applied specs.
    pub store: Arc<tokio::sync::Mutex<SpecStore>>,
    /// Observations.
    pub inventory: SharedInventory,
    /// Events.
    pub recorder: Arc<Recorder>,
    /// Reported status.
    pub board: StatusBoard,
    /// Shared with the DCGM exporter controller: one GPU maintenance action at a time.
    pub maintenance: Arc<tokio::sync::Mutex<()>>,
    /// Persistent memory.
    pub state: Section<Memory>,
    /// `/proc`.
    pub proc_root: PathBuf,
    /// Docker, to stop the exporter around a reset.
    pub docker: tokio::sync::Mutex<DockerClient>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--gpu-poll-interval`: snapshots older than two of these decide nothing.
    pub gpu_poll_interval: Duration,
}

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

/// Why there is no observation to decide on (missing data means doing nothing).
#[derive(Debug, thiserror::Error)]
enum Unobserved {
    #[error("Docker is not observed right now; nothing is done until it is")]
    Docker,
    #[error("the GPU backend has not been polled yet; nothing is done until it is")]
    NotPolled,
    #[error("NVML cannot list the GPUs ({0}); nothing is done until it can")]
    NvmlCannotList(String),
    #[error("{0}")]
    Stale(String),
}

/// Builds the observation, or says why there is none.
fn observe(context: &OrphanContext, memory: &Memory) -> Result<Observed, Unobserved> {
    let inventory = context
        .inventory
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !inventory.docker.connected {
        return Err(Unobserved::Docker);
    }
    let Some(polled_at) = inventory.gpu.last_poll else {
        return Err(Unobserved::NotPolled);
    };
    if let Some(error) = inventory.gpus.errors.first() {
        return Err(Unobserved::NvmlCannotList(error.clone()));
    }
    let mut live_containers = HashSet::new();
    let mut stopped_containers = HashSet::new();
    for record in inventory.containers.values() {
        if record.info.state.is_live() {
            live_containers.insert(record.info.id.clone());
        } else {
            stopped_containers.insert(record.info.id.clone());
        }
    }
    let processes = inventory
        .gpu_processes
        .iter()
        .map(|process| ObservedProcess {
            identity: process.identity,
            gpu: process.gpu_uuid.clone(),
            parent_gpu: process.parent_gpu_uuid.clone(),
            // The snapshot may predate a termination: a process gone from /proc by now is a
            // ghost, whatever the snapshot said.
            placement: match &process.placement {
                _ if !exists(&context.proc_root, process.identity) => Placement::Ghost,
                attribution::Placement::Container { id, nested } => Placement::Container(
                    std::iter::once(id.clone())
                        .chain(nested.iter().cloned())
                        .collect(),
                ),
                attribution::Placement::Foreign { cgroup } => Placement::Foreign(cgroup.clone()),
                attribution::Placement::Host => Placement::Host,
                attribution::Placement::Ghost => Placement::Ghost,
            },
            uid: process.uid,
            user: process.user.clone(),
            name: process.name.clone(),
            cmdline: process.cmdline.clone(),
            zombie: process.zombie,
        })
        .collect();
    let gpus = inventory
        .gpus
        .gpus
        .iter()
        .filter(|gpu| !gpu.uuid.is_empty())
        .map(|gpu| ObservedGpu {
            uuid: gpu.uuid.clone(),
            index: gpu.index,
            mig: gpu.mig_enabled,
            holders: holders(&inventory, gpu),
            incomplete: (!gpu.errors.is_empty()).then(|| gpu.errors.join("; ")),
        })
        .collect();
    let removed_containers = inventory.removed.keys().cloned().collect();
    drop(inventory);
    let alive = memory
        .tracked
        .values()
        .map(|tracked| tracked.identity)
        .filter(|identity| is_alive(&context.proc_root, *identity))
        .collect();
    Ok(Observed {
        polled_at,
        processes,
        live_containers,
        stopped_containers,
        removed_containers,
        gpus,
        alive,
    })
}

/// Running containers that hold or claim `gpu` (or one of its MIG devices) in any form, and
/// running containers with GPU access the controller could not resolve to devices of this host
/// (an index or slot it cannot place may be this GPU; a UUID NVML does not report is not).
fn holders(
    inventory: &crate::inventory::Inventory,
    gpu: &ds01_host::gpu::GpuDevice,
) -> Vec<String> {
    let devices: Vec<&str> = std::iter::once(gpu.uuid.as_str())
        .chain(gpu.mig_devices.iter().map(|mig| mig.uuid.as_str()))
        .collect();
    let known: HashSet<&str> = inventory
        .gpus
        .gpus
        .iter()
        .flat_map(|gpu| {
            std::iter::once(gpu.uuid.as_str())
                .chain(gpu.mig_devices.iter().map(|mig| mig.uuid.as_str()))
        })
        .collect();
    inventory
        .containers
        .values()
        .filter(|record| record.info.state.is_live())
        .filter(|record| {
            // labhost: label claims count here too (DESIGN §2.2): a claim may hold a reset back,
            // never cause one.
            let claimed = record
                .gpus
                .claims
                .iter()
                .filter_map(|claim| claim.uuid.as_ref());
            let held = record
                .gpu_uuids
                .iter()
                .chain(claimed)
                .any(|held| devices.contains(&held.as_str()));
            let unresolved = (record.info.gpu.has_gpu && record.gpu_uuids.is_empty())
                || record.gpus.unresolved.iter().any(|id| {
                    !known.contains(id.as_str())
                        && !id.starts_with("GPU-")
                        && !id.starts_with("MIG-")
                });
            held || unresolved
        })
        .map(|record| record.info.name.clone())
        .collect()
}

/// The same process (pid and start time) is still in `/proc`, zombie or not.
fn exists(proc_root: &std::path::Path, identity: ProcessIdentity) -> bool {
    ds01_host::process::read_process(proc_root, identity.pid)
        .ok()
        .flatten()
        .is_some_and(|process| process.identity == identity)
}

/// The same process is still running (a zombie has exited already).
fn is_alive(proc_root: &std::path::Path, identity: ProcessIdentity) -> bool {
    ds01_host::process::read_process(proc_root, identity.pid)
        .ok()
        .flatten()
        .is_some_and(|process| process.identity == identity && !process.is_zombie())
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

/// Runs the reset command under the maintenance lock, with the exporter stopped around it.
async fn reset(
    context: &OrphanContext,
    spec: &GpuOrphanPolicySpec,
    uuid: &str,
    index: u32,
) -> serde_json::Value {
    let _maintenance = context.maintenance.lock().await;
    let exporters = stop_exporters(context).await;
    let argv = spec.reset.command.render(uuid, index);
    let started = std::time::Instant::now();
    let outcome = match argv.split_first() {
        None => Err("empty reset command".to_owned()),
        Some((program, arguments)) => {
            let child = tokio::process::Command::new(program)
                .args(arguments)
                .kill_on_drop(true)
                .output();
            match tokio::time::timeout(spec.reset.timeout.std(), child).await {
                Err(_) => Err(format!("timed out after {}", spec.reset.timeout)),
                Ok(Err(error)) => Err(format!("cannot run {program}: {error}")),
                Ok(Ok(output)) => {
                    let text = format!(
                        "{}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    );
                    if output.status.success() {
                        Ok(text)
                    } else {
                        Err(format!(
                            "exit status {}: {}",
                            output.status.code().unwrap_or(-1),
                            text.trim()
                        ))
                    }
                }
            }
        }
    };
    start_exporters(context, &exporters).await;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (kind, result) = match &outcome {
        Ok(output) => (
            EventType::Reset,
            json!({ "gpu": uuid, "index": index, "command": argv, "output": output.trim(), "duration_ms": millis }),
        ),
        Err(error) => (
            EventType::ResetFailed,
            json!({ "gpu": uuid, "index": index, "command": argv, "error": error, "duration_ms": millis }),
        ),
    };
    context.recorder.emit(kind, None, result.clone());
    json!({ "at": format!("{:.3}", jiff::Timestamp::now()), "result": if outcome.is_ok() { "ok" } else { "failed" }, "details": result })
}

/// Stops the running exporter containers (they hold every GPU); returns their ids.
async fn stop_exporters(context: &OrphanContext) -> Vec<(String, std::time::Duration)> {
    let exporters: Vec<(String, std::time::Duration)> = context
        .store
        .lock()
        .await
        .all()
        .filter_map(|stored| match &stored.resource.spec {
            SpecBody::DcgmExporter(spec) => {
                Some((spec.container_name.clone(), spec.stop_timeout.std()))
            }
            _ => None,
        })
        .collect();
    let Ok(docker) = crate::controllers::connected(&context.docker).await else {
        return Vec::new();
    };
    let mut stopped = Vec::new();
    for (name, timeout) in exporters {
        if let Ok(Some(info)) = docker.inspect(&name).await
            && info.state.is_live()
            && docker.stop(&info.id, timeout).await.is_ok()
        {
            stopped.push((info.id, timeout));
        }
    }
    stopped
}

async fn start_exporters(context: &OrphanContext, stopped: &[(String, std::time::Duration)]) {
    let Ok(docker) = crate::controllers::connected(&context.docker).await else {
        return;
    };
    for (id, _) in stopped {
        if let Err(error) = docker.start(id).await {
            tracing::warn!(container = %id, error = %ds01_runtime::error_chain(&error), "cannot restart the exporter after a GPU reset");
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
