//! One block of the incumbent's limits (`defaults`, a group, a container type, a user
//! override) split into what a lifecycle policy carries — unit-suffixed durations and the
//! idle thresholds of its `policies` — and what stays with the incumbent's other tools.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::notices::Notices;

/// The incumbent's lifecycle duration keys (without unit suffix) → our limits-block fields.
pub const DURATION_KEYS: [(&str, &str); 5] = [
    ("idle_timeout", "idleTimeout"),
    ("max_runtime", "maxRuntime"),
    ("gpu_hold_after_stop", "gpuHoldAfterStop"),
    ("container_hold_after_stop", "removeAfterStop"),
    ("sigterm_grace", "stopGracePeriod"),
];

/// `1.5` in unit `h` → `"1h 30m"`; `null` → `null` (no limit); anything else → `None`.
#[must_use]
pub fn duration(value: &Value, unit: &str) -> Option<Value> {
    if value.is_null() {
        return Some(Value::Null);
    }
    let number = value.as_f64().filter(|number| *number >= 0.0)?;
    let seconds = match unit {
        "h" => number * 3600.0,
        "m" => number * 60.0,
        _ => number,
    };
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "non-negative configuration durations, rounded to the second"
    )]
    let seconds = seconds.round() as u64;
    Some(json!(ds01_spec::Duration::from_secs(seconds).to_string()))
}

/// A duration as the incumbent wrote it, for notices: `idle_timeout_h: 0.5`.
#[must_use]
pub fn shown(key: &str, value: &Value) -> String {
    format!("{key}: {value}")
}

/// A block, split.
#[derive(Debug, Default)]
pub struct Split {
    /// Our field → (their key and value, e.g. `idle_timeout_h: 0.5`; converted value).
    pub durations: IndexMap<&'static str, (String, Value)>,
    /// The block's `policies`, if any.
    pub policies: Option<Map<String, Value>>,
    /// Keys that belong to quotas, resources, aggregates: not lifecycle settings.
    pub other: Vec<String>,
}

/// Splits `block` (at `path`, for notices); keys in `skip` are left to the caller.
pub fn split(block: &Value, path: &str, skip: &[&str], notices: &mut Notices) -> Split {
    let mut out = Split::default();
    for (key, value) in block.as_object().into_iter().flatten() {
        if skip.contains(&key.as_str()) {
            continue;
        }
        if key == "policies" {
            out.policies = Some(value.as_object().cloned().unwrap_or_default());
            continue;
        }
        let converted = ["_h", "_m", "_s"].iter().find_map(|suffix| {
            let base = key.strip_suffix(suffix)?;
            let (_, ours) = DURATION_KEYS.iter().find(|(theirs, _)| *theirs == base)?;
            Some((*ours, duration(value, &suffix[1..])))
        });
        match converted {
            Some((ours, Some(duration))) => {
                out.durations.insert(ours, (shown(key, value), duration));
            }
            Some((_, None)) => notices.dropped(
                &format!("{path}.{}", shown(key, value)),
                "not a number of the key's unit, and not null",
            ),
            None => out.other.push(key.clone()),
        }
    }
    if !out.other.is_empty() {
        notices.dropped(
            &format!("{path}.{{{}}}", out.other.join(", ")),
            "GPU quotas, per-container resources and aggregate limits: the incumbent's wrapper and allocator keep enforcing them",
        );
    }
    out
}

/// The idle thresholds in a `policies` map, as an `idle` block; other keys are left to the
/// caller. A threshold out of range is reported and left out.
pub fn thresholds(
    policies: &Map<String, Value>,
    path: &str,
    notices: &mut Notices,
) -> Map<String, Value> {
    let mut idle = Map::new();
    for (key, field) in [
        ("gpu_idle_threshold", "gpuUtilBelow"),
        ("cpu_idle_threshold", "cpuBelow"),
    ] {
        if let Some(value) = policies.get(key) {
            match value
                .as_f64()
                .filter(|percent| (0.0..=100.0).contains(percent))
            {
                Some(_) => drop(idle.insert(field.to_owned(), value.clone())),
                None => notices.dropped(
                    &format!("{path}.{}", shown(key, value)),
                    "not a percentage from 0 to 100",
                ),
            }
        }
    }
    if let Some(value) = policies.get("network_idle_threshold") {
        match value.as_u64() {
            Some(bytes) => {
                idle.insert(
                    "networkBelow".to_owned(),
                    json!(ds01_spec::ByteSize(bytes).to_string()),
                );
                notices.changed(
                    "policies.network_idle_threshold (everywhere)",
                    "idle.networkBelow",
                    "the incumbent compared the bytes a container had received since it started, so a container that ever received that much never counted as idle; here it is bytes received plus sent per sampleInterval",
                );
            }
            None => notices.dropped(
                &format!("{path}.{}", shown("network_idle_threshold", value)),
                "not a whole number of bytes",
            ),
        }
    }
    idle
}
