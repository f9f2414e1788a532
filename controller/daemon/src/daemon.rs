//! The daemon: spawn the watchers, controllers, control API, metrics, inventory writer and
//! watchdog from a built [`App`]; tell systemd when ready; serve until SIGTERM/SIGINT (SIGHUP
//! reopens the event log and re-applies `--specs`); then drain, background stops included (a
//! second signal exits at once).

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use ds01_spec::EventType;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, AdminPolicy, ApiState},
    app::App,
    config::Flags,
    controllers::{self, start::Controllers, triggers::route_changes},
    inventory::{SharedInventory, writer},
    metrics::{self, Sources},
    recorder::Recorder,
    spec_store::SpecStore,
    startup::{apply_startup_specs, read_specs},
    systemd,
};

/// Time the watchers get to stop after SIGTERM (the unit's TimeoutStopSec is above it).
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);
/// READY is sent after the first observation, or after this long if Docker or NVML hang.
const OBSERVATION_DEADLINE: Duration = Duration::from_secs(60);

/// Runs the daemon until a signal.
///
/// # Errors
/// Unexpected failures of the runtime itself.
pub async fn run(mut app: App) -> anyhow::Result<ExitCode> {
    app.recorder.emit(
        EventType::ControllerStarted,
        None,
        json!({ "version": env!("CARGO_PKG_VERSION"), "dry_run": app.flags.dry_run, "docker_host": app.docker_host }),
    );
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let watchers = app
        .watchers
        .take()
        .context("the watchers were already run")?;
    tasks.spawn(watchers.docker.run(shutdown.clone()));
    tasks.spawn(watchers.gpus.run(shutdown.clone()));
    let store = app.store.clone();
    let controllers = controllers::start::start(&app.shared(), &shutdown, &mut tasks)?;
    controllers.trigger_everything(&store).await;
    tasks.spawn(route_changes(
        watchers.changes_for_controllers,
        store.clone(),
        app.inventory.clone(),
        controllers.clone(),
        shutdown.clone(),
    ));
    let api_bound = spawn_api(&app, &store, &controllers, &shutdown, &mut tasks);
    spawn_metrics(&app, &store, &shutdown, &mut tasks);
    tasks.spawn(writer::write_on_change(
        app.flags.inventory_path(),
        app.inventory.clone(),
        watchers.changes_for_file,
        shutdown.clone(),
    ));
    tasks.spawn(systemd::watchdog(app.loops.clone(), shutdown.clone()));
    tasks.spawn(crate::gpu_health::report_gpu_backend(
        app.inventory.clone(),
        app.board.clone(),
        app.flags.gpu_poll_interval.std(),
        shutdown.clone(),
    ));
    serve(&app, &store, &controllers, &shutdown, api_bound).await?;
    drain(&app, &controllers, &shutdown, tasks).await?;
    Ok(ExitCode::SUCCESS)
}

/// The control API; the receiver learns when its socket is bound.
fn spawn_api(
    app: &App,
    store: &Arc<tokio::sync::Mutex<SpecStore>>,
    controllers: &Controllers,
    shutdown: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) -> tokio::sync::oneshot::Receiver<()> {
    let notified = controllers.clone();
    let api_state = Arc::new(ApiState {
        store: store.clone(),
        board: app.board.clone(),
        notify: Arc::new(move |kind, name| notified.trigger(kind, name)),
        lifecycle: controllers.lifecycle_views.clone(),
        lifecycle_preview: controllers.lifecycle_preview.clone(),
        lifecycle_context: controllers.lifecycle_context.clone(),
        inventory: app.inventory.clone(),
        recorder: app.recorder.clone(),
        started: jiff::Timestamp::now(),
        admin: AdminPolicy {
            group: app.flags.admin_group.clone(),
        },
        shutdown: shutdown.clone(),
    });
    let socket = app.flags.socket.clone();
    let api_shutdown = shutdown.clone();
    let api_failed = shutdown.clone();
    let (bound, api_bound) = tokio::sync::oneshot::channel();
    tasks.spawn(async move {
        if let Err(error) = api::serve(&socket, api_state, api_shutdown, bound).await {
            tracing::error!(socket = %socket.display(), %error, "control API failed; stopping");
            api_failed.cancel();
        }
    });
    api_bound
}

/// The Prometheus endpoint; a failure to bind it is reported, never fatal.
fn spawn_metrics(
    app: &App,
    store: &Arc<tokio::sync::Mutex<SpecStore>>,
    shutdown: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let sources = Sources {
        inventory: app.inventory.clone(),
        store: store.clone(),
        board: app.board.clone(),
        loops: app.loops.clone(),
    };
    let address = app.flags.metrics_addr;
    let families = app.metrics.clone();
    let metrics_shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(error) = metrics::serve(address, families, sources, metrics_shutdown).await {
            tracing::error!(%address, %error, "metrics endpoint unavailable; the controller keeps running");
        }
    });
}

/// READY after the first observation, then signals until SIGTERM/SIGINT or a fatal failure.
async fn serve(
    app: &App,
    store: &tokio::sync::Mutex<SpecStore>,
    controllers: &Controllers,
    shutdown: &CancellationToken,
    api_bound: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let observed = async {
        let _ = api_bound.await;
        app.docker_observed.cancelled().await;
        app.gpus_observed.cancelled().await;
    };
    tokio::select! {
        () = observed => {}
        () = tokio::time::sleep(OBSERVATION_DEADLINE) => tracing::warn!("first observation incomplete; reporting ready anyway"),
        () = shutdown.cancelled() => {}
    }
    systemd::ready(&ready_status(&app.inventory));
    tracing::info!("ready");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
            _ = hangup.recv() => {
                systemd::reloading();
                reload(&app.flags, store, &app.recorder, controllers).await;
                systemd::ready(&ready_status(&app.inventory));
            }
        }
    }
}

/// Stops everything; stops and deliveries under way finish within the drain deadline, so a
/// stop's event and its owner's notice are not cut off. A second signal exits at once.
async fn drain(
    app: &App,
    controllers: &Controllers,
    shutdown: &CancellationToken,
    mut tasks: tokio::task::JoinSet<()>,
) -> anyhow::Result<()> {
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tracing::info!("stopping: draining");
    systemd::stopping();
    app.recorder
        .emit(EventType::ControllerStopping, None, json!({}));
    shutdown.cancel();
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
    writer::write_logged(&app.flags.inventory_path(), &app.inventory);
    Ok(())
}

/// SIGHUP: reopen the event log (logrotate) and re-apply `--specs`.
async fn reload(
    flags: &Flags,
    store: &tokio::sync::Mutex<SpecStore>,
    recorder: &Recorder,
    controllers: &Controllers,
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
