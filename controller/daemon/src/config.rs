//! Command-line flags of `ds01-controller`; each is also read from a `DS01_*` variable.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, ValueEnum};
use ds01_spec::Duration;

/// ds01-controller — keeps a shared GPU server in the state its specs describe.
#[derive(Clone, Debug, Parser)]
#[command(name = "ds01-controller", version, max_term_width = 100)]
pub struct Flags {
    /// Spec directory applied at start-up (and on SIGHUP), like `ds01ctl apply -f DIR`.
    #[arg(long, env = "DS01_SPECS")]
    pub specs: Option<PathBuf>,
    /// State directory (applied specs, timers, inventory).
    #[arg(long, env = "DS01_STATE_DIR", default_value = "/var/lib/ds01")]
    pub state_dir: PathBuf,
    /// JSONL event log.
    #[arg(
        long,
        env = "DS01_EVENT_LOG",
        default_value = "/var/log/ds01/events.jsonl"
    )]
    pub event_log: PathBuf,
    /// Control socket.
    #[arg(long, env = "DS01_SOCKET", default_value = "/run/ds01/controller.sock")]
    pub socket: PathBuf,
    /// Prometheus metrics address.
    #[arg(long, env = "DS01_METRICS_ADDR", default_value = "127.0.0.1:9402")]
    pub metrics_addr: SocketAddr,
    /// Docker engine (`unix:///path`); default: DOCKER_HOST or the local socket.
    #[arg(long, env = "DS01_DOCKER_HOST")]
    pub docker_host: Option<String>,
    /// NVML library; default: the system libnvidia-ml.so.1.
    #[arg(long, env = "DS01_NVML_LIBRARY")]
    pub nvml_library: Option<PathBuf>,
    /// GPU backend.
    #[arg(long, env = "DS01_GPU_BACKEND", value_enum, default_value_t = GpuBackend::Auto)]
    pub gpu_backend: GpuBackend,
    /// How often NVML is polled.
    #[arg(long, env = "DS01_GPU_POLL_INTERVAL", default_value = "5s")]
    pub gpu_poll_interval: Duration,
    /// How often Docker is fully relisted (besides every reconnect).
    #[arg(long, env = "DS01_RESYNC_INTERVAL", default_value = "5m")]
    pub resync_interval: Duration,
    /// Group whose members may change specs (besides root).
    #[arg(long, env = "DS01_ADMIN_GROUP", default_value = "ds01-admin")]
    pub admin_group: String,
    /// Decide and record everything, change nothing.
    #[arg(long, env = "DS01_DRY_RUN")]
    pub dry_run: bool,
    /// Observe everything, reconcile once, write inventory and status, exit.
    #[arg(long, env = "DS01_ONCE")]
    pub once: bool,
    /// Log format on stderr.
    #[arg(long, env = "DS01_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Print the manual page (roff) and exit (packaging).
    #[arg(long, hide = true)]
    pub man: bool,
}

/// Which GPU backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GpuBackend {
    /// NVML if it loads, else none.
    Auto,
    /// NVML; failures are reported and retried.
    Nvml,
    /// No GPU observation.
    None,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A flag clap accepted but the controller cannot use.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// A duration that must be above zero.
    #[error("{0} must be above zero")]
    Zero(&'static str),
}

impl Flags {
    /// Checks values clap cannot.
    ///
    /// # Errors
    /// The first flag that is out of range.
    pub fn check(&self) -> Result<(), FlagError> {
        if self.gpu_poll_interval.is_zero() {
            return Err(FlagError::Zero("--gpu-poll-interval"));
        }
        if self.resync_interval.is_zero() {
            return Err(FlagError::Zero("--resync-interval"));
        }
        Ok(())
    }

    /// Path of the inventory file.
    #[must_use]
    pub fn inventory_path(&self) -> PathBuf {
        self.state_dir.join("workload-inventory.json")
    }
}
