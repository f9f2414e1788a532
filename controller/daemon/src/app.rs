//! Wiring: open the event log, connect Docker and NVML, start the watchers, controllers, API,
//! metrics and watchdog, tell systemd when ready, then wait for SIGTERM/SIGINT and drain (a
//! second signal exits at once). SIGHUP reopens the event log and re-applies `--specs`.

use ds01_spec::EventType;
use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use ds01_host::{docker::DockerClient, event_log::EventLog};
use serde_json::json;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::broadcast,
};
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, AdminPolicy, ApiState},
    config::Flags,
    controllers::{self, start::Shared, status::StatusBoard, triggers::route_changes},
    health::Loops,
    instance_lock,
    inventory::{
        SharedInventory, docker_watch::DockerWatch, file, gpu_watch::GpuWatch, observe::Observer,
        writer,
    },
    metrics::{self, Metrics, Sources},
    once::once,
    recorder::Recorder,
    spec_store::SpecStore,
    startup::{apply_startup_specs, init_gpus, read_specs},
    state_file::{KeptAside, StateFile},
    systemd,
};

/// Time the watchers get to stop after SIGTERM (the unit's TimeoutStopSec is above it).
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);
/// READY is sent after the first observation, or after this long if Docker or NVML hang.
const OBSERVATION_DEADLINE: Duration = Duration::from_secs(60);
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
    // One controller per state directory and socket, decided before anything is bound.
    let mut locks = vec![(
        format!("--state-dir {}", flags.state_dir.display()),
        instance_lock::state_dir_lock(&flags.state_dir),
    )];
    if !flags.once {
        locks.push((
            format!("--socket {}", flags.socket.display()),
            instance_lock::socket_lock(&flags.socket),
        ));
    }
    let _instance = match instance_lock::acquire(&locks) {
        Ok(held) => held,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(EX_USAGE));
        }
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
    let metrics = Arc::new(Metrics::new());
    let recorder = Arc::new(Recorder::new(event_log, flags.dry_run).with_metrics(metrics.clone()));
    let (state, kept_aside) = StateFile::open(&flags.state_dir)?;
    let state = Arc::new(state);
    let board = StatusBoard::default();
    report_state_file(kept_aside.as_ref(), &recorder, &board);
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
    let loops = Loops::default();
    let docker_observed = CancellationToken::new();
    let gpus_observed = CancellationToken::new();
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
        loops: loops.clone(),
        metrics: Some(metrics.clone()),
        observed: docker_observed.clone(),
    };
    let gpu_watch = GpuWatch {
        nvml,
        inventory: inventory.clone(),
        recorder: recorder.clone(),
        proc_root: "/proc".into(),
        interval: flags.gpu_poll_interval.std(),
        changes: changes.clone(),
        observed: gpus_observed.clone(),
    };
    let mut store = SpecStore::open(&flags.state_dir)
        .with_context(|| format!("opening the spec store under {}", flags.state_dir.display()))?;
    if let Some(sources) = &startup_specs {
        apply_startup_specs(&mut store, sources, &recorder);
    }
    if flags.once {
        return once(&flags, docker_watch, gpu_watch, store, &recorder, &state).await;
    }
    recorder.emit(
        EventType::ControllerStarted,
        None,
        json!({ "version": env!("CARGO_PKG_VERSION"), "dry_run": flags.dry_run, "docker_host": docker_watch.client.host() }),
    );
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(docker_watch.run(shutdown.clone()));
    tasks.spawn(gpu_watch.run(shutdown.clone()));
    let store = Arc::new(tokio::sync::Mutex::new(store));
    let shared = Shared {
        flags: &flags,
        store: &store,
        inventory: &inventory,
        recorder: &recorder,
        board: &board,
        loops: &loops,
        metrics: &metrics,
        state: &state,
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
        board: board.clone(),
        notify: Arc::new(move |kind, name| notified.trigger(kind, name)),
        lifecycle: controllers.lifecycle_views.clone(),
        lifecycle_preview: controllers.lifecycle_preview.clone(),
        lifecycle_context: controllers.lifecycle_context.clone(),
        inventory: inventory.clone(),
        recorder: recorder.clone(),
        started: jiff::Timestamp::now(),
        admin: AdminPolicy {
            group: flags.admin_group.clone(),
        },
        shutdown: shutdown.clone(),
    });
    let socket = flags.socket.clone();
    let api_shutdown = shutdown.clone();
    let api_failed = shutdown.clone();
    let (api_bound_sender, api_bound) = tokio::sync::oneshot::channel();
    tasks.spawn(async move {
        if let Err(error) = api::serve(&socket, api_state, api_shutdown, api_bound_sender).await {
            tracing::error!(socket = %socket.display(), %error, "control API failed; stopping");
            api_failed.cancel();
        }
    });
    let sources = Sources {
        inventory: inventory.clone(),
        store: store.clone(),
        board,
        loops: loops.clone(),
    };
    let metrics_address = flags.metrics_addr;
    let metrics_shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(error) =
            metrics::serve(metrics_address, metrics, sources, metrics_shutdown).await
        {
            tracing::error!(address = %metrics_address, %error, "metrics endpoint unavailable; the controller keeps running");
        }
    });
    tasks.spawn(writer::write_on_change(
        flags.inventory_path(),
        inventory.clone(),
        changes_for_file,
        shutdown.clone(),
    ));
    tasks.spawn(systemd::watchdog(loops.clone(), shutdown.clone()));

    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let observed = async {
        let _ = api_bound.await;
        docker_observed.cancelled().await;
        gpus_observed.cancelled().await;
    };
    tokio::select! {
        () = observed => {}
        () = tokio::time::sleep(OBSERVATION_DEADLINE) => tracing::warn!("first observation incomplete; reporting ready anyway"),
        () = shutdown.cancelled() => {}
    }
    systemd::ready(&ready_status(&inventory));
    tracing::info!("ready");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => {
                systemd::reloading();
                reload(&flags, &store, &recorder, &controllers).await;
                systemd::ready(&ready_status(&inventory));
            }
        }
    }
    tracing::info!("stopping: draining");
    systemd::stopping();
    recorder.emit(EventType::ControllerStopping, None, json!({}));
    shutdown.cancel();
    // Stops and deliveries under way finish (within the drain deadline): a stop's event and
    // its owner's notice are not cut off.
    let background = controllers.lifecycle_tasks.clone();
    background.close();
    let drained = async {
        while tasks.join_next().await.is_some() {}
        background.wait().await;
    };
    tokio::select! {
        () = drained => {}
        () = tokio::time::sleep(DRAIN_DEADLINE) => tracing::warn!("drain deadline passed; exiting"),
        _ = terminate.recv() => tracing::warn!("second signal: exiting at once"),
        _ = interrupt.recv() => tracing::warn!("second signal: exiting at once"),
    }
    writer::write_logged(&flags.inventory_path(), &inventory);
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: reopen the event log (logrotate) and re-apply `--specs`.
async fn reload(
    flags: &Flags,
    store: &tokio::sync::Mutex<SpecStore>,
    recorder: &Recorder,
    controllers: &controllers::start::Controllers,
) {
    tracing::info!("SIGHUP: reopening the event log and re-applying --specs");
    recorder.reopen();
    let Some(directory) = &flags.specs else {
        return;
    };
    match read_specs(directory) {
        Ok(sources) => {
            apply_startup_specs(&mut *store.lock().await, &sources, recorder);
            controllers.trigger_everything(store).await;
        }
        Err(problems) => {
            for problem in &problems {
                tracing::error!(%problem, "SIGHUP: --specs is invalid; the applied specs stay as they were");
            }
            recorder.emit(
                EventType::SpecRejected,
                None,
                json!({ "source": "--specs", "errors": problems }),
            );
        }
    }
}

/// An unreadable state file kept aside: an event, and a controller condition until restart.
fn report_state_file(kept_aside: Option<&KeptAside>, recorder: &Recorder, board: &StatusBoard) {
    let Some(kept) = kept_aside else {
        board.set_controller_condition("StateFileReadable", "True", "AsExpected", String::new());
        return;
    };
    recorder.emit(
        EventType::StateUnreadable,
        None,
        json!({ "kept_as": kept.kept_as.display().to_string(), "error": kept.reason }),
    );
    board.set_controller_condition(
        "StateFileReadable",
        "False",
        "KeptAside",
        format!(
            "the controller state file could not be read ({}); it was kept as {} and timers, backoff and orphan tracking started afresh",
            kept.reason,
            kept.kept_as.display()
        ),
    );
}

/// The one-line STATUS systemd shows.
fn ready_status(inventory: &SharedInventory) -> String {
    let inventory = inventory
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    format!(
        "watching {} containers; Docker {}; GPU backend {}",
        inventory.containers.len(),
        if inventory.docker.connected {
            "connected"
        } else {
            "unreachable"
        },
        inventory.gpu.backend
    )
}
