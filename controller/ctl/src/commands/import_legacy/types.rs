//! `container_types` → `containerTypes`, as the incumbent's scripts actually applied them:
//! its idle and runtime checks give the lab tools' containers (`orchestration`, `atomic`) the
//! user's limits, `devcontainer`, `compose`, `docker` and `unknown` their type's (0.5 h and 48 h
//! when not set; devcontainers never idle-stopped), and any other type 0.25 h idle and no
//! runtime limit; `orchestration` and `api` containers give their GPU back as soon as they
//! stop. The import writes each type's configured values (and the fallbacks where none is
//! set) and prints where the incumbent did something else.

use indexmap::IndexSet;
use serde_json::{Map, Value, json};

use super::{blocks, inputs::Legacy, notices::Notices};

/// Types the incumbent's idle and runtime checks read from `container_types`.
const LISTED: [&str; 4] = ["devcontainer", "compose", "docker", "unknown"];
/// The lab tools' own containers: the user's limits apply.
const NATIVE: [&str; 2] = ["orchestration", "atomic"];
/// Types whose stopped containers are removed at once ("binary state").
const RELEASE_AT_STOP: [&str; 2] = ["orchestration", "api"];

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Idle timeout or max runtime of type `name`: what to write, given what is configured.
fn limit(
    name: &str,
    field: &str,
    configured: Option<&(String, Value)>,
    notices: &mut Notices,
) -> Option<Value> {
    let (listed_fallback, unlisted_effect, unlisted_fallback) = if field == "idleTimeout" {
        ("30m", "a 0.25 h idle timeout", json!("15m"))
    } else {
        ("2d", "no runtime limit", Value::Null)
    };
    let place = |original: &str| format!("container_types.{name}.{original}");
    if NATIVE.contains(&name) {
        if let Some((original, _)) = configured {
            notices.dropped(
                &place(original),
                "the incumbent gives the lab tools' containers the user's own limit",
            );
        }
        return None;
    }
    if name == "devcontainer" && field == "idleTimeout" {
        if let Some((original, _)) = configured.filter(|(_, value)| !value.is_null()) {
            notices.changed(
                &place(original),
                "idleTimeout: null",
                "the incumbent's idle check skips devcontainers whatever this says",
            );
        }
        return Some(Value::Null);
    }
    if LISTED.contains(&name) {
        return Some(match configured {
            None => json!(listed_fallback),
            Some((original, Value::Null)) => {
                notices.changed(
                    &place(original),
                    &format!("{field}: null (no limit)"),
                    &format!("the incumbent's check read null here as {listed_fallback}"),
                );
                Value::Null
            }
            Some((_, value)) => value.clone(),
        });
    }
    Some(match configured {
        None => unlisted_fallback,
        Some((original, value)) => {
            notices.changed(&place(original), &format!("{field}: {}", shown(value)), &format!("the incumbent's check gave `{name}` containers {unlisted_effect} whatever this says (it only knows orchestration, atomic, devcontainer, compose, docker, unknown)"));
            value.clone()
        }
    })
}

/// The `containerTypes` map.
pub fn container_types(legacy: &Legacy, notices: &mut Notices) -> Map<String, Value> {
    let configured = legacy
        .limits
        .get("container_types")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let names: IndexSet<&str> = configured
        .keys()
        .map(String::as_str)
        .chain(LISTED)
        .chain(RELEASE_AT_STOP)
        .collect();
    let mut out = Map::new();
    for name in names {
        let path = format!("container_types.{name}");
        let split = blocks::split(
            configured.get(name).unwrap_or(&Value::Null),
            &path,
            &[],
            notices,
        );
        if let Some(policies) = &split.policies {
            notices.dropped(
                &format!("{path}.policies ({} keys)", policies.len()),
                "the incumbent reads no policies per container type",
            );
        }
        let mut block = Map::new();
        for field in ["idleTimeout", "maxRuntime"] {
            if let Some(value) = limit(name, field, split.durations.get(field), notices) {
                block.insert(field.to_owned(), value);
            }
        }
        match split.durations.get("stopGracePeriod") {
            Some((_, value)) if !value.is_null() => {
                drop(block.insert("stopGracePeriod".to_owned(), value.clone()))
            }
            _ => {}
        }
        if let Some((original, _)) = split.durations.get("gpuHoldAfterStop") {
            notices.dropped(
                &format!("{path}.{original}"),
                "the incumbent takes the GPU hold from the user's limits",
            );
        }
        if let Some((original, _)) = split.durations.get("removeAfterStop") {
            notices.dropped(&format!("{path}.{original}"), "the incumbent used a type's container hold only for containers of unknown owners; here those get containerTypes.unknown, then defaults");
        }
        if RELEASE_AT_STOP.contains(&name) {
            block.insert("gpuHoldAfterStop".to_owned(), json!("0s"));
        }
        if !block.is_empty() {
            out.insert(name.to_owned(), Value::Object(block));
        }
    }
    if out.contains_key("unknown") {
        notices.changed(
            "container_types.unknown (containers labelled type `unknown`)",
            "containerTypes.unknown (also applied, last, to every container whose owner cannot be determined)",
            "the controller gives containers of unknown owners the strictest limits",
        );
    }
    out
}
