//! The GPU signal of MIG devices: DCGM's `DCGM_FI_PROF_GR_ENGINE_ACTIVE` per GPU instance,
//! scraped from the DCGM exporter the controller runs (NVML has no per-instance utilisation).

use std::collections::HashMap;

use ds01_spec::{Kind, SpecBody};

use crate::{controllers::dcgm::health, spec_store::SpecStore};

/// The metric: fraction of time the graphics/compute engine of the instance was busy (0–1).
const METRIC: &str = "DCGM_FI_PROF_GR_ENGINE_ACTIVE";

/// Engine activity per (parent GPU UUID, GPU instance id), as a fraction.
pub type MigActivity = HashMap<(String, u32), f64>;

/// Reads the metric's samples out of an exposition-format body; lines without both the `UUID`
/// and `GPU_I_ID` labels (whole-GPU samples) are skipped.
#[must_use]
pub fn parse(body: &str) -> MigActivity {
    let mut activity = MigActivity::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(METRIC) else {
            continue;
        };
        let Some(labels_and_value) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((labels, value)) = labels_and_value.rsplit_once('}') else {
            continue;
        };
        let Some(value) = value
            .split_whitespace()
            .next()
            .and_then(|value| value.parse::<f64>().ok())
            .filter(|value| value.is_finite())
        else {
            continue;
        };
        let labels = parse_labels(labels);
        let uuid = labels.get("UUID");
        let instance = labels.get("GPU_I_ID").and_then(|id| id.parse::<u32>().ok());
        if let (Some(uuid), Some(instance)) = (uuid, instance) {
            activity.insert((uuid.clone(), instance), value.clamp(0.0, 1.0));
        }
    }
    activity
}

/// `key="value",…` with `\"` and `\\` escapes.
fn parse_labels(text: &str) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let key = key.trim_start_matches(',').trim().to_owned();
        let mut value = String::new();
        let mut characters = after.char_indices();
        let mut end = after.len();
        while let Some((index, character)) = characters.next() {
            match character {
                '\\' => {
                    if let Some((_, escaped)) = characters.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = index + 1;
                    break;
                }
                other => value.push(other),
            }
        }
        labels.insert(key, value);
        rest = &after[end..];
    }
    labels
}

/// Scrapes the first applied `DcgmExporter`'s endpoint; `None` when there is none or it does
/// not answer (MIG signals are then unknown, never idle).
pub async fn scrape(store: &tokio::sync::Mutex<SpecStore>) -> Option<MigActivity> {
    let endpoint = store.lock().await.all().find_map(|stored| {
        match (&stored.resource.kind(), &stored.resource.spec) {
            (Kind::DcgmExporter, SpecBody::DcgmExporter(spec)) => {
                Some((spec.bind_address, spec.port, spec.health.timeout.std()))
            }
            _ => None,
        }
    })?;
    let (address, port, timeout) = endpoint;
    match health::fetch(address, port, "/metrics", timeout).await {
        Ok(body) => Some(parse(&body)),
        Err(error) => {
            tracing::debug!(%error, "MIG activity unavailable from the DCGM exporter");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_samples_are_keyed_by_parent_uuid_and_instance_id() {
        let body = "\
# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.
# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu=\"0\",UUID=\"GPU-a\",pci_bus_id=\"00000000:07:00.0\",device=\"nvidia0\",modelName=\"NVIDIA A100-SXM4-40GB\",GPU_I_PROFILE=\"1g.5gb\",GPU_I_ID=\"7\",Hostname=\"lab\"} 0.000000
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu=\"0\",UUID=\"GPU-a\",GPU_I_PROFILE=\"3g.20gb\",GPU_I_ID=\"2\",Hostname=\"a \\\"quoted\\\" host\"} 0.734
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu=\"1\",UUID=\"GPU-b\",Hostname=\"lab\"} 0.5
DCGM_FI_PROF_GR_ENGINE_ACTIVE_OTHER{UUID=\"GPU-a\",GPU_I_ID=\"3\"} 1
DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-a\",GPU_I_ID=\"7\"} 99
DCGM_FI_PROF_GR_ENGINE_ACTIVE{UUID=\"GPU-a\",GPU_I_ID=\"9\"} NaN
";
        let activity = parse(body);
        assert_eq!(activity.len(), 2, "{activity:?}");
        assert_eq!(activity[&("GPU-a".to_owned(), 7)], 0.0);
        assert!((activity[&("GPU-a".to_owned(), 2)] - 0.734).abs() < 1e-9);
    }
}
