//! `--once`: from a built [`App`], observe everything one time, start the same controllers as
//! the daemon, reconcile every applied resource once, write the inventory, print each
//! resource's status as JSON, exit 0. With `--dry-run` nothing changes.

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use ds01_spec::Kind;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{
    app::App,
    controllers::{self, status::StatusBoard},
    inventory::{attribution, writer},
};

/// The longest `--once` waits for the controllers' single pass.
const PASS_DEADLINE: Duration = Duration::from_secs(300);

/// Runs the single pass.
///
/// # Errors
/// Unexpected failures of the runtime itself.
pub async fn once(mut app: App) -> anyhow::Result<ExitCode> {
    let watchers = app
        .watchers
        .take()
        .context("the watchers were already run")?;
    let mut docker_watch = watchers.docker;
    let gpu_watch = watchers.gpus;
    if let Some(nvml) = gpu_watch.nvml.clone() {
        let (snapshot, processes) = tokio::task::spawn_blocking(move || {
            let snapshot = nvml.snapshot();
            let processes = attribution::attribute(&snapshot, std::path::Path::new("/proc"));
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
    {
        let mut state = docker_watch
            .observer
            .inventory
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.docker.since = Some(jiff::Timestamp::now());
        match observed {
            Ok(()) => state.docker.connected = true,
            Err(error) => {
                let message = crate::inventory::docker_watch::error_chain(&error);
                tracing::warn!(error = %message, "Docker unreachable: inventory has no containers");
                state.docker.connected = false;
                state.docker.last_error = Some(message);
            }
        }
    }
    let board = reconcile_once(&app).await?;
    writer::write_logged(&app.flags.inventory_path(), &app.inventory);
    let statuses: Vec<_> = board
        .all()
        .into_iter()
        .map(|((kind, name), status)| json!({ "kind": kind.as_str(), "name": name, "status": status }))
        .collect();
    println!("{}", json!({ "resources": statuses }));
    Ok(ExitCode::SUCCESS)
}

/// Starts the controllers, asks each for one reconcile of every resource, waits for those,
/// and stops them.
async fn reconcile_once(app: &App) -> anyhow::Result<StatusBoard> {
    let counts: Vec<(&'static str, u64)> = {
        let store = app.store.lock().await;
        [
            ("dcgm-exporter", Kind::DcgmExporter),
            ("gpu-orphans", Kind::GpuOrphanPolicy),
            ("container-lifecycle", Kind::ContainerLifecyclePolicy),
        ]
        .into_iter()
        .map(|(name, kind)| {
            let count = store
                .all()
                .filter(|stored| stored.resource.kind() == kind)
                .count();
            (name, u64::try_from(count).unwrap_or(u64::MAX))
        })
        .collect()
    };
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let controllers = controllers::start::start(&app.shared(), &shutdown, &mut tasks)?;
    controllers.trigger_everything(&app.store).await;
    let all_done = || {
        app.loops.all().iter().all(|(name, stats)| {
            let wanted = counts
                .iter()
                .find(|(kind, _)| kind == name)
                .map_or(0, |(_, count)| *count);
            stats.reconciles.load(std::sync::atomic::Ordering::Relaxed) >= wanted
        })
    };
    let started = tokio::time::Instant::now();
    while !all_done() {
        if started.elapsed() > PASS_DEADLINE {
            tracing::warn!("--once: the controllers did not finish their pass in time");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    let background = controllers.lifecycle_tasks.clone();
    background.close();
    background.wait().await;
    Ok(app.board.clone())
}
