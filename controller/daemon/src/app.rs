//! The controller as one value, built once from the flags — instance locks, event log and
//! recorder, state file, inventory baseline, GPUs, the Docker and GPU watchers, the spec store
//! with `--specs` applied — then run as the daemon (`daemon.rs`) or for one pass (`once.rs`).

use std::{process::ExitCode, sync::Arc};

use ds01_host::{docker::DockerClient, event_log::EventLog};
use ds01_spec::EventType;
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Flags,
    controllers::{start::Shared, status::StatusBoard},
    health::Loops,
    instance_lock::{self, InstanceLock},
    inventory::{
        InventoryWriter, SharedInventory,
        docker_watch::DockerWatch,
        file,
        gpu_watch::GpuWatch,
        observe::{Change, Observer},
    },
    metrics::Metrics,
    recorder::Recorder,
    spec_store::SpecStore,
    startup::{apply_startup_specs, init_gpus, read_specs},
    state_file::{KeptAside, StateFile},
};

const EX_USAGE: u8 = 64;

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad flags or configuration, found before anything was bound (exit 64).
    #[error("{0}")]
    Usage(String),
    /// Something unexpected (exit 2).
    #[error(transparent)]
    Fatal(#[from] anyhow::Error),
}

/// Everything the controller is made of, before anything runs.
pub struct App {
    /// The flags.
    pub flags: Flags,
    /// One controller per state directory and socket; held until the process exits.
    pub _instance: InstanceLock,
    /// Events.
    pub recorder: Arc<Recorder>,
    /// Prometheus families.
    pub metrics: Arc<Metrics>,
    /// What the controllers remember.
    pub state: Arc<StateFile>,
    /// What the controllers report.
    pub board: StatusBoard,
    /// What is observed.
    pub inventory: SharedInventory,
    /// Applied specs.
    pub store: Arc<tokio::sync::Mutex<SpecStore>>,
    /// The Docker and GPU sources, until they are run.
    pub watchers: Option<Watchers>,
    /// The Docker engine's address, for messages.
    pub docker_host: String,
    /// The loops the watchdog watches.
    pub loops: Loops,
    /// Cancelled once Docker was first observed (or found unreachable).
    pub docker_observed: CancellationToken,
    /// Cancelled once the GPUs were first polled (at once without NVML).
    pub gpus_observed: CancellationToken,
}

/// The two sources of observations, and the change streams they feed — subscribed before
/// either runs, so no early change (Docker unreachable at start-up, the first relist) is
/// missed by the inventory file or the controllers.
pub struct Watchers {
    /// Docker events and relists.
    pub docker: DockerWatch,
    /// NVML polls.
    pub gpus: GpuWatch,
    /// Inventory changes for the inventory file.
    pub changes_for_file: broadcast::Receiver<Change>,
    /// Inventory changes for the controllers.
    pub changes_for_controllers: broadcast::Receiver<Change>,
}

/// Builds the controller and runs it as the flags say.
///
/// # Errors
/// Unexpected failures of the runtime itself.
pub async fn run(flags: Flags) -> anyhow::Result<ExitCode> {
    match App::build(flags) {
        Err(StartError::Usage(message)) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(EX_USAGE))
        }
        Err(StartError::Fatal(error)) => Err(error),
        Ok(app) if app.flags.once => crate::once::once(app).await,
        Ok(app) => crate::daemon::run(app).await,
    }
}

impl App {
    /// Builds everything in order; nothing is bound or spawned yet.
    ///
    /// # Errors
    /// [`StartError::Usage`] for bad `--specs`, `--docker-host` or an instance already running
    /// on the same state directory or socket; [`StartError::Fatal`] otherwise.
    pub fn build(flags: Flags) -> Result<App, StartError> {
        let startup_specs = match &flags.specs {
            None => None,
            Some(directory) => Some(
                read_specs(directory)
                    .map_err(|problems| StartError::Usage(problems.join("\nerror: ")))?,
            ),
        };
        let instance = instance_lock::acquire(&locks(&flags))
            .map_err(|error| StartError::Usage(error.to_string()))?;
        let client = DockerClient::connect(flags.docker_host.as_deref()).map_err(|error| {
            StartError::Usage(format!("--docker-host: {:#}", anyhow::Error::from(error)))
        })?;
        let event_log = match EventLog::open(&flags.event_log) {
            Ok(log) => Some(log),
            Err(error) => {
                tracing::warn!(error = %format!("{:#}", anyhow::Error::from(error)), "events will be kept in memory only");
                None
            }
        };
        let metrics = Arc::new(Metrics::new());
        let recorder =
            Arc::new(Recorder::new(event_log, flags.dry_run).with_metrics(metrics.clone()));
        let (state, kept_aside) = StateFile::open(&flags.state_dir).map_err(anyhow::Error::from)?;
        let board = StatusBoard::default();
        report_state_file(kept_aside.as_ref(), &recorder, &board);
        let writer = InventoryWriter::default();
        let inventory = writer.reader();
        writer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .baseline = file::load_baseline(&flags.inventory_path());
        let (changes, _) = broadcast::channel(4096);
        let changes_for_file = changes.subscribe();
        let changes_for_controllers = changes.subscribe();
        let nvml = init_gpus(&flags, &writer);
        let loops = Loops::default();
        let docker_observed = CancellationToken::new();
        let gpus_observed = CancellationToken::new();
        let observer = Arc::new(Observer {
            inventory: writer.clone(),
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
            inventory: writer,
            recorder: recorder.clone(),
            proc_root: "/proc".into(),
            interval: flags.gpu_poll_interval.std(),
            changes,
            observed: gpus_observed.clone(),
        };
        let mut store = SpecStore::open(&flags.state_dir).map_err(|error| {
            anyhow::Error::from(error).context(format!(
                "opening the spec store under {}",
                flags.state_dir.display()
            ))
        })?;
        if let Some(sources) = &startup_specs {
            apply_startup_specs(&mut store, sources, &recorder);
        }
        Ok(App {
            flags,
            _instance: instance,
            recorder,
            metrics,
            state: Arc::new(state),
            board,
            inventory,
            store: Arc::new(tokio::sync::Mutex::new(store)),
            docker_host: docker_watch.client.host().to_owned(),
            watchers: Some(Watchers {
                docker: docker_watch,
                gpus: gpu_watch,
                changes_for_file,
                changes_for_controllers,
            }),
            loops,
            docker_observed,
            gpus_observed,
        })
    }

    /// What every controller shares.
    #[must_use]
    pub fn shared(&self) -> Shared<'_> {
        Shared {
            flags: &self.flags,
            store: &self.store,
            inventory: &self.inventory,
            recorder: &self.recorder,
            board: &self.board,
            loops: &self.loops,
            metrics: &self.metrics,
            state: &self.state,
        }
    }
}

/// The lock files this run takes: the state directory, and the socket unless `--once`.
fn locks(flags: &Flags) -> Vec<(String, std::path::PathBuf)> {
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
    locks
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
            "the controller state file could not be read ({}); it was kept as {} and the timers, backoff and orphan tracking it held started afresh",
            kept.reason,
            kept.kept_as.display()
        ),
    );
}
