//! Start-up pieces shared by the daemon and `--once`: reading `--specs`, applying them into
//! the spec store, and loading NVML.

use ds01_spec::EventType;
use std::sync::Arc;

use ds01_host::gpu::NvmlGpus;
use serde_json::json;

use crate::{
    config::{Flags, GpuBackend},
    inventory::InventoryWriter,
    recorder::Recorder,
    spec_store::{ApplyOutcome, SpecStore},
};

/// Reads and validates `--specs`; every problem is returned for printing.
pub fn read_specs(directory: &std::path::Path) -> Result<Vec<ds01_spec::Source>, Vec<String>> {
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
pub fn apply_startup_specs(
    store: &mut SpecStore,
    sources: &[ds01_spec::Source],
    recorder: &Recorder,
) {
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
                    recorder.emit(EventType::SpecApplied, None, details);
                }
            }
        }
        Err(error) => {
            let message = crate::inventory::docker_watch::error_chain(&error);
            tracing::warn!(error = %message, "cannot store the specs from --specs");
        }
    }
}

/// Loads NVML as `--gpu-backend` asks, recording the backend and its error.
pub fn init_gpus(flags: &Flags, inventory: &InventoryWriter) -> Option<Arc<NvmlGpus>> {
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
