//! The ContainerLifecyclePolicy reconciler: every container, every `sampleInterval` and at
//! every exact deadline — resolve limits, sample signals, plan, warn, stop, remove, remember.

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use ds01_host::docker::DockerClient;
use ds01_runtime::{Action, ReconcileError, Reconciler};
use ds01_spec::{ContainerLifecyclePolicySpec, Kind, PolicyMode, Scope, SpecBody, resolve};
use serde_json::json;

use super::{
    act::{Acting, Stopping, execute},
    plan::{Memory, Plan, Step, Subject, plan},
    signals::Sampler,
};
use crate::{
    controllers::status::StatusBoard,
    inventory::{ContainerRecord, SharedInventory},
    recorder::Recorder,
    spec_store::SpecStore,
    state_file::Section,
};

/// The state file section of lifecycle memory, keyed `policy/container-id`.
pub const SECTION: &str = "containerLifecycle";

/// What the reconciler works with.
pub struct LifecycleContext {
    /// Applied specs.
    pub store: Arc<tokio::sync::Mutex<SpecStore>>,
    /// Observations.
    pub inventory: SharedInventory,
    /// Events.
    pub recorder: Arc<Recorder>,
    /// Reported status.
    pub board: StatusBoard,
    /// Persistent memory (idle-since, warnings sent).
    pub state: Section<Memory>,
    /// Docker.
    pub docker: tokio::sync::Mutex<DockerClient>,
    /// Signal deltas.
    pub sampler: std::sync::Mutex<Sampler>,
    /// `/proc`.
    pub proc_root: PathBuf,
    /// `--dry-run`.
    pub dry_run: bool,
    /// What `describe container` and `get containers` show, by container id.
    pub views: LifecycleViews,
    /// Containers whose stop runs in the background.
    pub stopping: Stopping,
}

/// The lifecycle facts of each container (limits with sources, signals, deadlines), shared
/// with the API.
pub type LifecycleViews = Arc<std::sync::RwLock<HashMap<String, serde_json::Value>>>;

fn sourced<T: ToString>(value: Option<T>, source: &resolve::LimitSource) -> serde_json::Value {
    json!({ "value": value.map(|value| value.to_string()), "source": source.to_string() })
}

fn view(
    name: &str,
    limits: &resolve::ResolvedLimits,
    sample: &super::plan::Sample,
    memory: &Memory,
    decided: &Plan,
    dry_run: bool,
) -> serde_json::Value {
    let signal = |value: Option<String>, below: bool| json!({ "value": value, "idle": below });
    json!({
        "policy": name,
        "dryRun": dry_run,
        "group": limits.group,
        "limits": {
            "idleTimeout": sourced(limits.idle_timeout.value, &limits.idle_timeout.source),
            "maxRuntime": sourced(limits.max_runtime.value, &limits.max_runtime.source),
            "stopGracePeriod": sourced(Some(limits.stop_grace_period.value), &limits.stop_grace_period.source),
            "onIdle": sourced(Some(format!("{:?}", limits.on_idle.value)), &limits.on_idle.source),
            "removeAfterStop": sourced(limits.remove_after_stop.value, &limits.remove_after_stop.source),
            "gpuHoldAfterStop": sourced(limits.gpu_hold_after_stop.value, &limits.gpu_hold_after_stop.source),
            "createdTimeout": sourced(limits.created_timeout.value, &limits.created_timeout.source),
            "startupGrace": sourced(Some(limits.startup_grace.value), &limits.startup_grace.source),
            "gpuUtilBelow": sourced(Some(limits.gpu_util_below.value), &limits.gpu_util_below.source),
            "cpuBelow": sourced(Some(limits.cpu_below.value), &limits.cpu_below.source),
            "networkBelow": sourced(Some(limits.network_below.value), &limits.network_below.source),
        },
        "exemptions": limits.exemptions.iter().map(|exemption| json!({ "from": exemption.exempt_from, "reason": exemption.reason, "expires": exemption.expires })).collect::<Vec<_>>(),
        "signals": {
            "gpu": signal(sample.gpu.map(|gpu| format!("{gpu:.0}%")), sample.gpu.is_some_and(|gpu| gpu < limits.gpu_util_below.value.value())),
            "cpu": signal(sample.cpu.map(|cpu| format!("{cpu:.1}%")), sample.cpu.is_some_and(|cpu| cpu < limits.cpu_below.value.value())),
            "network": signal(sample.network.map(|bytes| format!("{bytes}B")), sample.network.is_some_and(|bytes| bytes < limits.network_below.value.bytes())),
            "keepAlive": sample.keep_alive,
        },
        "idle": decided.idle,
        "idleSince": decided.memory.idle_since.map(|at| format!("{at:.3}")),
        "idleWarningsSent": memory.idle_warned.len().max(decided.memory.idle_warned.len()),
        "runtimeWarningsSent": decided.memory.runtime_warned.len(),
        "nextDeadline": decided.next_deadline.map(|at| format!("{at:.3}")),
        "note": decided.note,
    })
}

/// Reconciles one `ContainerLifecyclePolicy`, keyed by name, over every container.
pub struct LifecycleReconciler(pub Arc<LifecycleContext>);

/// A failure of one pass.
#[derive(Debug, thiserror::Error)]
#[error("docker is not reachable")]
pub struct NotConnected(#[source] ds01_host::docker::DockerError);

/// Why a container must not be touched by this policy, if it must not.
pub fn untouchable(
    record: &ContainerRecord,
    spec: &ContainerLifecyclePolicySpec,
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
    if record.info.label("ds01.managed_by") == Some("ds01-controller") {
        return Some("the controller's own container".to_owned());
    }
    if spec.scope == Scope::Gpu && !record.info.gpu.has_gpu {
        return Some("outside scope (no GPU access)".to_owned());
    }
    None
}

/// Each group's `membersFile` content.
pub fn members_files(spec: &ContainerLifecyclePolicySpec) -> HashMap<String, Vec<String>> {
    spec.groups
        .iter()
        .filter_map(|(name, group)| {
            let text = std::fs::read_to_string(group.members_file.as_ref()?).ok()?;
            let members = text
                .lines()
                .map(|line| line.split('#').next().unwrap_or_default().trim().to_owned())
                .filter(|line| !line.is_empty())
                .collect();
            Some((name.clone(), members))
        })
        .collect()
}

impl Reconciler<String> for LifecycleReconciler {
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
        let client = crate::controllers::connected(&context.docker)
            .await
            .map_err(|error| ReconcileError::Transient(NotConnected(error)))?;
        let now = jiff::Timestamp::now();
        let file_members = members_files(&spec);
        let (records, idle_factor, connected) = {
            let inventory = context
                .inventory
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let gpus = inventory.gpus.gpus.len();
            let held: std::collections::HashSet<&String> = inventory
                .containers
                .values()
                .filter(|record| record.info.state.is_live())
                .flat_map(|record| record.gpu_uuids.iter())
                .collect();
            #[expect(clippy::cast_precision_loss, reason = "GPU counts are tiny")]
            let share = if gpus == 0 {
                0.0
            } else {
                held.len() as f64 / gpus as f64 * 100.0
            };
            let factor = if gpus > 0 && share >= spec.high_demand.threshold.value() {
                spec.high_demand.idle_timeout_factor
            } else {
                1.0
            };
            (
                inventory.containers.values().cloned().collect::<Vec<_>>(),
                factor,
                inventory.docker.connected,
            )
        };
        if !connected {
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
        }
        let any_mig = {
            let inventory = context
                .inventory
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            records
                .iter()
                .any(|record| super::signals::holds_mig_device(record, &inventory))
        };
        let mig = if any_mig {
            super::mig_activity::scrape(&context.store).await
        } else {
            None
        };
        let mut next: Option<jiff::Timestamp> = None;
        let mut idle = 0;
        // Checked once per pass, and only when something destructive is due.
        let mut recordable: Option<Result<(), String>> = None;
        let mut deferred: Option<String> = None;
        for record in &records {
            if context.stopping.contains(&record.info.id) {
                // Its stop is in progress; the next pass after it sees the outcome.
                continue;
            }
            let limits = resolve::resolve(
                &spec,
                resolve::Subject {
                    user: &record.user,
                    origin: &record.origin,
                },
                &file_members,
                now,
            );
            let sample = {
                let inventory = context
                    .inventory
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let mut sampler = context
                    .sampler
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                sampler.sample(
                    record,
                    &inventory,
                    &context.proc_root,
                    spec.sample_interval.std(),
                    (&spec.keep_alive.file, spec.keep_alive.max_age.std()),
                    mig.as_ref(),
                )
            };
            let subject = Subject {
                state: record.info.state,
                created_at: record.info.created_at,
                started_at: record.info.started_at,
                finished_at: record.info.finished_at,
                has_gpu: record.info.gpu.has_gpu,
                untouchable: untouchable(record, &spec),
            };
            let key = format!("{name}/{}", record.info.id);
            let stored: Memory = context.state.get(&key).unwrap_or_default();
            let mut memory = stored.clone();
            if !dry_run {
                super::ledger::settle(context, &mut memory, record.info.state.is_live());
            }
            let decided = plan(&subject, &limits, &sample, &memory, idle_factor, now);
            context
                .views
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(
                    record.info.id.clone(),
                    view(&name, &limits, &sample, &memory, &decided, dry_run),
                );
            idle += usize::from(decided.idle);
            // Remember before acting: a crash in between loses at most a warning, never repeats one.
            let mut remembered = Ok(());
            if decided.memory != stored {
                remembered = context.state.set(&key, &decided.memory);
                if let Err(error) = &remembered {
                    tracing::warn!(%error, "cannot persist lifecycle timers");
                }
            }
            // A stop or removal the controller could not record is not done: it waits until
            // the state directory and the event log can be written again.
            let mut decided = decided;
            if !dry_run && decided.steps.iter().any(Step::is_destructive) {
                let problem = match (&remembered, &recordable) {
                    (Err(error), _) => Some(format!("the state file cannot be written: {error}")),
                    (Ok(()), Some(result)) => result.clone().err(),
                    (Ok(()), None) => {
                        let result = can_record(context);
                        recordable = Some(result.clone());
                        result.err()
                    }
                };
                if let Some(problem) = problem {
                    decided.steps.retain(|step| !step.is_destructive());
                    deferred.get_or_insert(problem);
                    let retry = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5);
                    next = Some(next.map_or(retry, |existing| existing.min(retry)));
                }
            }
            let acting = Acting {
                key: &key,
                record,
                limits: &limits,
                sample: &sample,
                decided: &decided,
                dry_run,
            };
            execute(context, &client, &spec, &acting).await;
            if let Some(deadline) = decided.next_deadline {
                next = Some(next.map_or(deadline, |existing| existing.min(deadline)));
            }
        }
        context
            .sampler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(&|id| records.iter().any(|record| record.info.id == id));
        let present: std::collections::HashSet<&str> = records
            .iter()
            .map(|record| record.info.id.as_str())
            .collect();
        super::ledger::forget_gone(context, &name, &present);
        let ready = (
            "Ready",
            "True",
            if dry_run { "DryRun" } else { "Enforcing" },
            String::new(),
        );
        let degraded = match &deferred {
            Some(problem) => (
                "Degraded",
                "True",
                "CannotRecord",
                format!("stops and removals are held back: {problem}"),
            ),
            None => ("Degraded", "False", "AsExpected", String::new()),
        };
        let details = json!({ "containers": records.len(), "idle": idle, "nextDeadline": next.map(|at| format!("{at:.3}")), "highDemandFactor": idle_factor });
        context.board.set(
            Kind::ContainerLifecyclePolicy,
            &name,
            generation,
            &[ready, degraded],
            details,
        );
        let interval = spec.sample_interval.std();
        let until_deadline = next.map(|deadline| {
            Duration::try_from(deadline.duration_since(jiff::Timestamp::now()))
                .unwrap_or(Duration::ZERO)
        });
        Ok(Action::requeue(
            until_deadline
                .map_or(interval, |delay| delay.min(interval))
                .max(Duration::from_millis(50)),
        ))
    }
}

/// Whether a destructive action could be recorded now: the state file and the event log can
/// both be written.
fn can_record(context: &LifecycleContext) -> Result<(), String> {
    context
        .state
        .file()
        .sync()
        .map_err(|error| format!("the state file cannot be written: {error}"))?;
    context
        .recorder
        .flush()
        .map_err(|error| format!("the event log cannot be written: {error}"))
}
