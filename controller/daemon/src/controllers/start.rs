//! Starting the controllers on the runtime, and the handles through which specs, inventory
//! changes and the API ask them to reconcile.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use ds01_host::docker::DockerClient;
use ds01_runtime::{Backoff, Config, Controller, Handle};
use ds01_spec::Kind;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    dcgm::{context::DcgmContext, executor::DcgmReconciler},
    lifecycle::{
        observe::LatestSamples,
        preview::PreviewSources,
        signals::Sampler,
        view::LifecycleViews,
        {context::LifecycleContext, executor::LifecycleReconciler},
    },
    orphans::{context::OrphanContext, executor::OrphanReconciler},
    status::StatusBoard,
};
use crate::{
    config::Flags, health::Loops, inventory::SharedInventory, metrics::Metrics, recorder::Recorder,
    spec_store::SpecStore, state_file::StateFile,
};

/// Handles of the running controllers, by kind.
#[derive(Clone)]
pub struct Controllers {
    /// DcgmExporter resources.
    pub dcgm: Handle<String>,
    /// GpuOrphanPolicy resources.
    pub orphans: Handle<String>,
    /// ContainerLifecyclePolicy resources.
    pub lifecycle: Handle<String>,
    /// Lifecycle facts per container, for the API.
    pub lifecycle_views: LifecycleViews,
    /// What `apply --dry-run` previews of lifecycle policies read.
    pub lifecycle_preview: PreviewSources,
    /// Background stops and deliveries, drained at shutdown.
    pub lifecycle_tasks: TaskTracker,
    /// The lifecycle controller's context: `ds01ctl stop` and `ds01ctl notices` use it.
    pub lifecycle_context: Arc<LifecycleContext<super::engine::Docker>>,
}

impl Controllers {
    /// Asks the controller of `kind` to reconcile `name`.
    pub fn trigger(&self, kind: Kind, name: &str) {
        match kind {
            Kind::DcgmExporter => self.dcgm.trigger(name.to_owned()),
            Kind::GpuOrphanPolicy => self.orphans.trigger(name.to_owned()),
            Kind::ContainerLifecyclePolicy => self.lifecycle.trigger(name.to_owned()),
        }
    }

    /// Asks for a reconcile of every applied resource of `kind`.
    pub async fn trigger_kind(&self, store: &tokio::sync::Mutex<SpecStore>, kind: Kind) {
        let names: Vec<String> = store
            .lock()
            .await
            .all()
            .filter(|stored| stored.resource.kind() == kind)
            .map(|stored| stored.resource.metadata.name.clone())
            .collect();
        for name in names {
            self.trigger(kind, &name);
        }
    }

    /// Asks for a reconcile of everything applied.
    pub async fn trigger_everything(&self, store: &tokio::sync::Mutex<SpecStore>) {
        for kind in Kind::ALL {
            self.trigger_kind(store, kind).await;
        }
    }
}

/// What every controller shares.
pub struct Shared<'a> {
    /// Flags.
    pub flags: &'a Flags,
    /// Applied specs.
    pub store: &'a Arc<tokio::sync::Mutex<SpecStore>>,
    /// Observations.
    pub inventory: &'a SharedInventory,
    /// Events.
    pub recorder: &'a Arc<Recorder>,
    /// Reported status.
    pub board: &'a StatusBoard,
    /// Liveness registry (watchdog).
    pub loops: &'a Loops,
    /// Reconcile counts and durations.
    pub metrics: &'a Arc<Metrics>,
    /// What the controllers remember across restarts.
    pub state: &'a Arc<StateFile>,
}

fn config(reconcile_timeout: Duration) -> Config {
    Config {
        max_concurrency: 2,
        reconcile_timeout,
        backoff: Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        },
        debounce: Duration::ZERO,
        drain_deadline: Duration::from_secs(15),
    }
}

/// Starts every controller.
///
/// # Errors
/// When the Docker host is unusable.
pub fn start(
    shared: &Shared<'_>,
    shutdown: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<Controllers> {
    let docker =
        || DockerClient::connect(shared.flags.docker_host.as_deref()).context("--docker-host");
    // One GPU maintenance action at a time: exporter restarts and GPU resets.
    let maintenance = Arc::new(tokio::sync::Mutex::new(()));
    let state = shared.state.clone();
    let dcgm = DcgmContext {
        docker: tokio::sync::Mutex::new(docker()?),
        store: shared.store.clone(),
        inventory: shared.inventory.clone(),
        recorder: shared.recorder.clone(),
        board: shared.board.clone(),
        maintenance: maintenance.clone(),
        state: state.section(super::dcgm::context::SECTION),
        dry_run: shared.flags.dry_run,
    };
    // labhost: the exporters' ids are known as the controller's own before any pass runs.
    super::dcgm::executor::remember_own(&dcgm);
    // A recreate may stop the exporter (stopTimeout) and pull an image.
    let dcgm = Controller::new(
        "dcgm-exporter",
        DcgmReconciler(Arc::new(dcgm)),
        config(Duration::from_secs(600)),
    )
    .observed_by(shared.metrics.clone());
    let orphans = OrphanContext {
        store: shared.store.clone(),
        inventory: shared.inventory.clone(),
        recorder: shared.recorder.clone(),
        board: shared.board.clone(),
        maintenance,
        state: state.section(super::orphans::context::SECTION),
        proc_root: "/proc".into(),
        docker: tokio::sync::Mutex::new(docker()?),
        dry_run: shared.flags.dry_run,
        gpu_poll_interval: shared.flags.gpu_poll_interval.std(),
    };
    // A reset may take `reset.timeout` plus stopping the exporter.
    let orphans = Controller::new(
        "gpu-orphans",
        OrphanReconciler(Arc::new(orphans)),
        config(Duration::from_secs(900)),
    )
    .observed_by(shared.metrics.clone());
    let lifecycle = LifecycleContext {
        store: shared.store.clone(),
        inventory: shared.inventory.clone(),
        recorder: shared.recorder.clone(),
        board: shared.board.clone(),
        state: state.section(super::lifecycle::context::SECTION),
        engine: super::engine::Docker::new(docker()?),
        sampler: std::sync::Mutex::new(Sampler::default()),
        samples: LatestSamples::default(),
        members: super::lifecycle::members::MembersFiles::default(),
        proc_root: "/proc".into(),
        dry_run: shared.flags.dry_run,
        gpu_poll_interval: shared.flags.gpu_poll_interval.std(),
        views: LifecycleViews::default(),
        stopping: super::lifecycle::context::Stopping::default(),
        tasks: TaskTracker::new(),
        notices: super::lifecycle::notice_store::NoticeStore::new(&state),
    };
    let lifecycle_views = lifecycle.views.clone();
    let lifecycle_preview = PreviewSources {
        samples: lifecycle.samples.clone(),
        memory: lifecycle.state.clone(),
    };
    let lifecycle_tasks = lifecycle.tasks.clone();
    let lifecycle_context = Arc::new(lifecycle);
    // Manual stops a killed controller left unrecorded, once Docker is listed.
    tasks.spawn(super::lifecycle::manual::settle_left_over(
        lifecycle_context.clone(),
        shutdown.clone(),
    ));
    // A pass may stop several containers, each with its stopGracePeriod.
    let lifecycle = Controller::new(
        "container-lifecycle",
        LifecycleReconciler(lifecycle_context.clone()),
        config(Duration::from_secs(1800)),
    )
    .observed_by(shared.metrics.clone());
    shared.loops.register("dcgm-exporter", dcgm.stats());
    shared.loops.register("gpu-orphans", orphans.stats());
    shared
        .loops
        .register("container-lifecycle", lifecycle.stats());
    let handles = Controllers {
        dcgm: dcgm.handle(),
        orphans: orphans.handle(),
        lifecycle: lifecycle.handle(),
        lifecycle_views,
        lifecycle_preview,
        lifecycle_tasks,
        lifecycle_context,
    };
    tasks.spawn(dcgm.run(shutdown.clone()));
    tasks.spawn(orphans.run(shutdown.clone()));
    tasks.spawn(lifecycle.run(shutdown.clone()));
    Ok(handles)
}
