//! Wiring: open the event log, connect Docker and NVML, start the watchers and the inventory
//! writer, then wait for SIGTERM/SIGINT and drain (a second signal exits at once).

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use ds01_host::{docker::DockerClient, event_log::EventLog, gpu::NvmlGpus};
use serde_json::json;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::broadcast,
};
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, AdminPolicy, ApiState},
    config::{Flags, GpuBackend},
    controllers::{self, start::Shared, status::StatusBoard, triggers::route_changes},
    inventory::{
        SharedInventory,
        docker_watch::DockerWatch,
        file,
        gpu_watch::{self, GpuWatch},
        observe::{Change, Observer},
    },
    recorder::Recorder,
    spec_store::{ApplyOutcome, SpecStore},
};

/// Time the watchers get to stop after SIGTERM.
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);
/// Inventory file writes are coalesced over this period.
const INVENTORY_WRITE_DELAY: Duration = Duration::from_millis(100);
const EX_USAGE: u8 = 64;

/// Runs the controller until a signal (or once, with `--once`).
///
/// # Errors
/// Unexpected failures of the runtime itself.
pub async fn run(flags: Flags) -> anyhow::Result<ExitCode> {
    let startup_specs = match &flags.specs {
        None => None,
        Some(directory) => match read_specs(directory) {
            Ok(sources) => Some(sources),
            Err(problems) => {
                for problem in problems {
                    eprintln!("error: {problem}");
                }
                return Ok(ExitCode::from(EX_USAGE));
            }
        },
    };
    let client = match DockerClient::connect(flags.docker_host.as_deref()) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: --docker-host: {:#}", anyhow::Error::from(error));
            return Ok(ExitCode::from(EX_USAGE));
        }
    };
    let event_log = match EventLog::open(&flags.event_log) {
        Ok(log) => Some(log),
        Err(error) => {
            tracing::warn!(error = %format!("{:#}", anyhow::Error::from(error)), "events will be kept in memory only");
            None
        }
    };
    let recorder = Arc::new(Recorder::new(event_log, flags.dry_run));
    let inventory: SharedInventory = Arc::default();
    inventory
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .baseline = file::load_baseline(&flags.inventory_path());
    let (changes, _) = broadcast::channel(4096);
    // Subscribed before any watcher starts, so no early change (Docker unreachable at start-up,
    // the first relist) is missed by the inventory file or the controllers.
    let changes_for_file = changes.subscribe();
    let changes_for_controllers = changes.subscribe();
    let nvml = init_gpus(&flags, &inventory);
    let observer = Arc::new(Observer {
        inventory: inventory.clone(),
        recorder: recorder.clone(),
        proc_root: "/proc".into(),
        changes: changes.clone(),
    });
    let docker_watch = DockerWatch {
        client,
        observer,
        resync_interval: flags.resync_interval.std(),
    };
    let gpu_watch = GpuWatch {
        nvml,
        inventory: inventory.clone(),
        recorder: recorder.clone(),
        proc_root: "/proc".into(),
        interval: flags.gpu_poll_interval.std(),
        changes: changes.clone(),
    };
    let mut store = SpecStore::open(&flags.state_dir)
        .with_context(|| format!("opening the spec store under {}", flags.state_dir.display()))?;
    if let Some(sources) = &startup_specs {
        apply_startup_specs(&mut store, sources, &recorder);
    }
    if flags.once {
        return once(&flags, docker_watch, gpu_watch, &inventory).await;
    }
    recorder.emit(
        "controller.started",
        None,
        json!({ "version": env!("CARGO_PKG_VERSION"), "dry_run": flags.dry_run, "docker_host": docker_watch.client.host() }),
    );
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(docker_watch.run(shutdown.clone()));
    tasks.spawn(gpu_watch.run(shutdown.clone()));
    let store = Arc::new(tokio::sync::Mutex::new(store));
    let board = StatusBoard::default();
    let shared = Shared {
        flags: &flags,
        store: &store,
        inventory: &inventory,
        recorder: &recorder,
        board: &board,
    };
    let controllers = controllers::start::start(&shared, &shutdown, &mut tasks)?;
    controllers.trigger_everything(&store).await;
    tasks.spawn(route_changes(
        changes_for_controllers,
        store.clone(),
        inventory.clone(),
        controllers.clone(),
        shutdown.clone(),
    ));
    let notified = controllers.clone();
    let api_state = Arc::new(ApiState {
        store: store.clone(),
        board,
        notify: Arc::new(move |kind, name| notified.trigger(kind, name)),
        lifecycle: controllers.lifecycle_views.clone(),
        inventory: inventory.clone(),
        recorder: recorder.clone(),
        started: jiff::Timestamp::now(),
        admin: AdminPolicy {
            group: flags.admin_group.clone(),
        },
    });
    let socket = flags.socket.clone();
    let api_shutdown = shutdown.clone();
    let api_failed = shutdown.clone();
    let served_state = api_state.clone();
    tasks.spawn(async move {
        if let Err(error) = api::serve(&socket, served_state, api_shutdown).await {
            tracing::error!(socket = %socket.display(), %error, "control API failed; stopping");
            api_failed.cancel();
        }
    });
    tasks.spawn(write_inventory_on_change(
        flags.inventory_path(),
        inventory.clone(),
        changes_for_file,
        shutdown.clone(),
    ));

    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reopening the event log and re-applying --specs");
                recorder.reopen();
                if let Some(directory) = &flags.specs {
                    match read_specs(directory) {
                        Ok(sources) => {
                            apply_startup_specs(&mut *store.lock().await, &sources, &recorder);
                            controllers.trigger_everything(&store).await;
                        }
                        Err(problems) => {
                            for problem in &problems {
                                tracing::error!(%problem, "SIGHUP: --specs is invalid; the applied specs stay as they were");
                            }
                            recorder.emit("spec.rejected", None, json!({ "source": "--specs", "errors": problems }));
                        }
                    }
                }
            }
        }
    }
    tracing::info!("stopping: draining");
    recorder.emit("controller.stopping", None, json!({}));
    shutdown.cancel();
    let drained = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        () = drained => {}
        () = tokio::time::sleep(DRAIN_DEADLINE) => tracing::warn!("drain deadline passed; exiting"),
        _ = terminate.recv() => tracing::warn!("second signal: exiting at once"),
        _ = interrupt.recv() => tracing::warn!("second signal: exiting at once"),
    }
    write_inventory(&flags.inventory_path(), &inventory);
    Ok(ExitCode::SUCCESS)
}

/// Reads and validates `--specs`; every problem is returned for printing.
fn read_specs(directory: &std::path::Path) -> Result<Vec<ds01_spec::Source>, Vec<String>> {
    let sources = ds01_spec::read_sources(&[directory.to_owned()])
        .map_err(|error| vec![format!("--specs: {:#}", anyhow::Error::from(error))])?;
    ds01_spec::parse_sources(&sources).map_err(|diagnostics| {
        diagnostics
            .0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    })?;
    Ok(sources)
}

/// Applies `--specs` into the spec store (at start-up and on SIGHUP), reporting each change
/// as `spec.applied`.
fn apply_startup_specs(store: &mut SpecStore, sources: &[ds01_spec::Source], recorder: &Recorder) {
    match store.apply(sources, jiff::Timestamp::now()) {
        Ok(outcomes) => {
            for (reference, outcome) in outcomes {
                tracing::info!(resource = %reference, ?outcome, "spec from --specs");
                if outcome != ApplyOutcome::Unchanged {
                    let generation = reference
                        .split_once('/')
                        .and_then(|(kind, name)| store.get(kind.parse().ok()?, name))
                        .map(|spec| spec.generation);
                    let details = json!({ "resource": reference, "outcome": outcome, "generation": generation, "source": "--specs" });
                    recorder.emit("spec.applied", None, details);
                }
            }
        }
        Err(error) => {
            let message = crate::inventory::docker_watch::error_chain(&error);
            tracing::warn!(error = %message, "cannot store the specs from --specs");
        }
    }
}

fn init_gpus(flags: &Flags, inventory: &SharedInventory) -> Option<Arc<NvmlGpus>> {
    let mut state = inventory
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if flags.gpu_backend == GpuBackend::None {
        state.gpu.backend = "none".to_owned();
        return None;
    }
    match NvmlGpus::init(flags.nvml_library.as_deref()) {
        Ok(nvml) => {
            tracing::info!(library = ?flags.nvml_library, "NVML loaded");
            state.gpu.backend = "nvml".to_owned();
            Some(Arc::new(nvml))
        }
        Err(error) => {
            let message = crate::inventory::docker_watch::error_chain(&error);
            if flags.gpu_backend == GpuBackend::Nvml {
                tracing::warn!(error = %message, "NVML unavailable: GPU signals are unknown");
                state.gpu.backend = "nvml".to_owned();
            } else {
                tracing::info!(error = %message, "NVML not loaded: running without GPU observation");
                state.gpu.backend = "none".to_owned();
            }
            state.gpu.last_error = Some(message);
            None
        }
    }
}

/// `--once`: observe everything one time, write the inventory, exit 0.
async fn once(
    flags: &Flags,
    mut docker_watch: DockerWatch,
    gpu_watch: GpuWatch,
    inventory: &SharedInventory,
) -> anyhow::Result<ExitCode> {
    if let Some(nvml) = gpu_watch.nvml.clone() {
        let (snapshot, processes) = tokio::task::spawn_blocking(move || {
            let snapshot = nvml.snapshot();
            let processes = gpu_watch::attribute(&snapshot, std::path::Path::new("/proc"));
            (snapshot, processes)
        })
        .await
        .context("GPU snapshot thread")?;
        gpu_watch.apply(snapshot, processes, &mut std::collections::HashMap::new());
    }
    let observed = match docker_watch.client.ping().await {
        Ok(()) => docker_watch.relist(None).await,
        Err(error) => Err(error),
    };
    if let Err(error) = observed {
        let message = crate::inventory::docker_watch::error_chain(&error);
        tracing::warn!(error = %message, "Docker unreachable: inventory has no containers");
        let mut state = inventory
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.docker.connected = false;
        state.docker.last_error = Some(message);
    }
    write_inventory(&flags.inventory_path(), inventory);
    Ok(ExitCode::SUCCESS)
}

fn write_inventory(path: &std::path::Path, inventory: &SharedInventory) {
    let snapshot = inventory
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Err(error) = file::write(path, &snapshot) {
        tracing::warn!(path = %path.display(), %error, "cannot write the inventory file");
    }
}

async fn write_inventory_on_change(
    path: std::path::PathBuf,
    inventory: SharedInventory,
    mut changes: broadcast::Receiver<Change>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => {
                if matches!(change, Err(broadcast::error::RecvError::Closed)) {
                    return;
                }
                tokio::time::sleep(INVENTORY_WRITE_DELAY).await;
                // Everything that arrived meanwhile is covered by this write.
                while changes.try_recv().is_ok() {}
                let path = path.clone();
                let inventory = inventory.clone();
                let _ = tokio::task::spawn_blocking(move || write_inventory(&path, &inventory)).await;
            }
        }
    }
}
