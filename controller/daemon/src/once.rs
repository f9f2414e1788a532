//! `--once`: observe everything one time, reconcile every applied resource once, write the
//! inventory, print each resource's status as JSON, exit 0. With `--dry-run` nothing changes.

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Flags,
    controllers::{self, start::Shared, status::StatusBoard},
    health::Loops,
    inventory::{
        SharedInventory,
        docker_watch::DockerWatch,
        gpu_watch::{self, GpuWatch},
        writer,
    },
    metrics::Metrics,
    recorder::Recorder,
    spec_store::SpecStore,
};

/// The longest `--once` waits for the controllers' single pass.
const PASS_DEADLINE: Duration = Duration::from_secs(300);

/// Runs the single pass.
///
/// # Errors
/// Unexpected failures of the runtime itself.
pub async fn once(
    flags: &Flags,
    mut docker_watch: DockerWatch,
    gpu_watch: GpuWatch,
    store: SpecStore,
    recorder: &Arc<Recorder>,
    state: &Arc<crate::state_file::StateFile>,
) -> anyhow::Result<ExitCode> {
    let inventory = docker_watch.observer.inventory.clone();
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
    {
        let mut state = inventory
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
    let board = reconcile_once(flags, store, &inventory, recorder, state).await?;
    writer::write_logged(&flags.inventory_path(), &inventory);
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
async fn reconcile_once(
    flags: &Flags,
    store: SpecStore,
    inventory: &SharedInventory,
    recorder: &Arc<Recorder>,
    state: &Arc<crate::state_file::StateFile>,
) -> anyhow::Result<StatusBoard> {
    let counts: Vec<(&'static str, u64)> = [
        ("dcgm-exporter", ds01_spec::Kind::DcgmExporter),
        ("gpu-orphans", ds01_spec::Kind::GpuOrphanPolicy),
        (
            "container-lifecycle",
            ds01_spec::Kind::ContainerLifecyclePolicy,
        ),
    ]
    .into_iter()
    .map(|(name, kind)| {
        let count = store
            .all()
            .filter(|stored| stored.resource.kind() == kind)
            .count();
        (name, u64::try_from(count).unwrap_or(u64::MAX))
    })
    .collect();
    let store = Arc::new(tokio::sync::Mutex::new(store));
    let board = StatusBoard::default();
    let loops = Loops::default();
    let metrics = Arc::new(Metrics::new());
    let shared = Shared {
        flags,
        store: &store,
        inventory,
        recorder,
        board: &board,
        loops: &loops,
        metrics: &metrics,
        state,
    };
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let controllers = controllers::start::start(&shared, &shutdown, &mut tasks)?;
    controllers.trigger_everything(&store).await;
    let all_done = || {
        loops.all().iter().all(|(name, stats)| {
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
    Ok(board)
}
