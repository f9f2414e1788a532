//! `ds01ctl import-legacy resource-limits.yaml [--exemptions F] [--groups-dir D]
//! [--user-overrides F]`: converts the incumbent's configuration into a
//! ContainerLifecyclePolicy (printed as YAML) and lists every key it could not carry over.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::{cli::ImportLegacyArgs, exit::ExitStatus, printer, yaml_out::to_yaml};

/// Incumbent limit key (without unit suffix) → our limits-block field.
const LIMIT_KEYS: [(&str, &str); 5] = [
    ("idle_timeout", "idleTimeout"),
    ("max_runtime", "maxRuntime"),
    ("gpu_hold_after_stop", "gpuHoldAfterStop"),
    ("container_hold_after_stop", "removeAfterStop"),
    ("sigterm_grace", "stopGracePeriod"),
];

struct Converter {
    skipped: Vec<String>,
}

fn read_yaml(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let stream = ds01_spec::yaml::parse_stream(&text);
    if let Some(problem) = stream.syntax_error {
        return Err(format!(
            "{}:{}: {}",
            path.display(),
            problem.position,
            problem.message
        ));
    }
    Ok(stream
        .documents
        .into_iter()
        .next()
        .map(|document| document.value)
        .unwrap_or(Value::Null))
}

/// `1.5` with unit `h` → `"1h 30m"`; `null` stays null (no limit).
fn duration(value: &Value, unit: &str) -> Option<Value> {
    if value.is_null() {
        return Some(Value::Null);
    }
    let number = value.as_f64()?;
    let seconds = match unit {
        "h" => number * 3600.0,
        "m" => number * 60.0,
        _ => number,
    };
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "configuration durations"
    )]
    let seconds = seconds.max(0.0).round() as u64;
    Some(json!(ds01_spec::Duration::from_secs(seconds).to_string()))
}

impl Converter {
    fn skip(&mut self, path: &str, why: &str) {
        self.skipped.push(format!("{path}: {why}"));
    }

    /// Converts one block of limits (`defaults`, a group, a container type, a user).
    fn limits(&mut self, path: &str, block: &Value, policies_allowed: bool) -> Map<String, Value> {
        let mut out = Map::new();
        let Some(fields) = block.as_object() else {
            return out;
        };
        for (key, value) in fields {
            let converted = ["_h", "_m", "_s"].iter().find_map(|suffix| {
                let base = key.strip_suffix(suffix)?;
                let (_, ours) = LIMIT_KEYS.iter().find(|(theirs, _)| *theirs == base)?;
                Some((*ours, duration(value, &suffix[1..])))
            });
            match (key.as_str(), converted) {
                (_, Some((ours, Some(duration)))) => {
                    out.insert(ours.to_owned(), duration);
                }
                (_, Some((_, None))) => self.skip(&format!("{path}.{key}"), "not a number"),
                ("policies", None) if policies_allowed => self.policies(&format!("{path}.policies"), value, &mut out),
                (_, None) => self.skip(&format!("{path}.{key}"), "not a lifecycle setting (quotas and resource limits stay with the incumbent's tools)"),
            }
        }
        out
    }

    fn policies(&mut self, path: &str, policies: &Value, out: &mut Map<String, Value>) {
        let Some(fields) = policies.as_object() else {
            return;
        };
        let mut idle = Map::new();
        for (key, value) in fields {
            match key.as_str() {
                "gpu_idle_threshold" => drop(idle.insert("gpuUtilBelow".to_owned(), value.clone())),
                "cpu_idle_threshold" => drop(idle.insert("cpuBelow".to_owned(), value.clone())),
                "network_idle_threshold" => drop(idle.insert(
                    "networkBelow".to_owned(),
                    json!(format!("{}B", value.as_u64().unwrap_or(1 << 20))),
                )),
                "grace_period_m" => drop(out.insert(
                    "startupGrace".to_owned(),
                    duration(value, "m").unwrap_or(Value::Null),
                )),
                "sigterm_grace_s" => drop(out.insert(
                    "stopGracePeriod".to_owned(),
                    duration(value, "s").unwrap_or(Value::Null),
                )),
                "created_container_timeout_m" => drop(out.insert(
                    "createdTimeout".to_owned(),
                    duration(value, "m").unwrap_or(Value::Null),
                )),
                "idle_detection_window" => self.skip(
                    &format!("{path}.{key}"),
                    "not needed: idleness is measured continuously every sampleInterval",
                ),
                _ => self.skip(&format!("{path}.{key}"), "no equivalent in a limits block"),
            }
        }
        if !idle.is_empty() {
            out.insert("idle".to_owned(), Value::Object(idle));
        }
    }
}

/// Runs the conversion.
pub fn import_legacy(args: &ImportLegacyArgs) -> anyhow::Result<ExitStatus> {
    let mut converter = Converter {
        skipped: Vec::new(),
    };
    let limits = match read_yaml(&args.resource_limits) {
        Ok(value) => value,
        Err(message) => {
            printer::error(&message);
            return Ok(ExitStatus::UserError);
        }
    };
    let mut spec = Map::new();
    spec.insert("defaults".to_owned(), json!({}));
    let global_policies = limits.get("policies").cloned().unwrap_or(Value::Null);
    for (key, value) in limits.as_object().into_iter().flatten() {
        match key.as_str() {
            "defaults" => {
                let mut defaults = converter.limits("defaults", value, false);
                converter.policies("policies", &global_policies, &mut defaults);
                spec.insert("defaults".to_owned(), Value::Object(defaults));
            }
            "policies" => {
                let mut high_demand = Map::new();
                if let Some(threshold) = value.get("high_demand_threshold").and_then(Value::as_f64)
                {
                    high_demand.insert("threshold".to_owned(), json!((threshold * 100.0).round()));
                }
                if let Some(factor) = value.get("high_demand_idle_reduction") {
                    high_demand.insert("idleTimeoutFactor".to_owned(), factor.clone());
                }
                if !high_demand.is_empty() {
                    spec.insert("highDemand".to_owned(), Value::Object(high_demand));
                }
                if let Some(max_age) = value
                    .get("keepalive_max_duration_h")
                    .and_then(|hours| duration(hours, "h"))
                    .filter(|age| !age.is_null())
                {
                    spec.insert("keepAlive".to_owned(), json!({ "maxAge": max_age }));
                }
            }
            "default_group" => drop(spec.insert("defaultGroup".to_owned(), value.clone())),
            "groups" => {
                let mut groups = Map::new();
                for (name, group) in value.as_object().into_iter().flatten() {
                    let mut converted = converter.limits(&format!("groups.{name}"), group, true);
                    if let Some(directory) = &args.groups_dir {
                        let file = directory.join(format!("{name}.members"));
                        if file.is_file() {
                            let absolute = std::fs::canonicalize(&file).unwrap_or(file);
                            converted.insert(
                                "membersFile".to_owned(),
                                json!(absolute.display().to_string()),
                            );
                        }
                    }
                    groups.insert(name.clone(), Value::Object(converted));
                }
                spec.insert("groups".to_owned(), Value::Object(groups));
            }
            "container_types" => {
                let types: Map<String, Value> = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, block)| {
                        (
                            name.clone(),
                            Value::Object(converter.limits(
                                &format!("container_types.{name}"),
                                block,
                                false,
                            )),
                        )
                    })
                    .collect();
                spec.insert("containerTypes".to_owned(), Value::Object(types));
            }
            other => converter.skip(other, "not part of the lifecycle policy"),
        }
    }
    if let Some(path) = &args.user_overrides {
        match read_yaml(path) {
            Ok(overrides) => {
                let users: Map<String, Value> = overrides
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(user, block)| {
                        (
                            user.clone(),
                            Value::Object(converter.limits(&format!("users.{user}"), block, true)),
                        )
                    })
                    .collect();
                spec.insert("users".to_owned(), Value::Object(users));
                converter.skip(
                    "users",
                    "note: a user override now layers on the user's group instead of replacing it",
                );
            }
            Err(message) => {
                printer::error(&message);
                return Ok(ExitStatus::UserError);
            }
        }
    }
    if let Some(path) = &args.exemptions {
        match read_yaml(path) {
            Ok(file) => {
                let mut exemptions = Vec::new();
                for (index, entry) in file
                    .get("exemptions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let from: Vec<&str> = entry
                        .get("exempt_from")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter_map(
                            |key| match key.trim_end_matches("_h").trim_end_matches("_m") {
                                "idle_timeout" => Some("idle"),
                                "max_runtime" => Some("runtime"),
                                "container_hold_after_stop" | "gpu_hold_after_stop" => {
                                    Some("cleanup")
                                }
                                _ => None,
                            },
                        )
                        .collect();
                    for dropped in ["category", "approved_by", "approved_on"] {
                        if entry.get(dropped).is_some() {
                            converter.skip(
                                &format!("exemptions[{index}].{dropped}"),
                                "kept only in the incumbent's file (not part of a ds01 exemption)",
                            );
                        }
                    }
                    exemptions.push(json!({
                        "user": entry.get("username").or_else(|| entry.get("user")).cloned().unwrap_or(Value::Null),
                        "exemptFrom": from,
                        "reason": entry.get("reason").cloned().unwrap_or(json!("imported from lifecycle-exemptions.yaml")),
                        "expires": entry.get("expires_on").cloned().unwrap_or(Value::Null),
                    }));
                }
                spec.insert("exemptions".to_owned(), Value::Array(exemptions));
            }
            Err(message) => {
                printer::error(&message);
                return Ok(ExitStatus::UserError);
            }
        }
    }
    let document = json!({ "apiVersion": ds01_spec::API_VERSION, "kind": "ContainerLifecyclePolicy", "metadata": { "name": args.name }, "spec": spec });
    let text = format!(
        "# yaml-language-server: $schema=../schemas/ds01.schema.json\n# Imported from {} by ds01ctl import-legacy; review before applying.\n{}",
        args.resource_limits.display(),
        to_yaml(&document)
    );
    // The result goes through the same checks as any spec.
    if let Err(diagnostics) = ds01_spec::parse_sources(&[ds01_spec::Source {
        name: "<imported>".to_owned(),
        text: text.clone(),
    }]) {
        for diagnostic in &diagnostics.0 {
            printer::error(&diagnostic.to_string());
        }
        printer::hint(
            "the converted policy is not valid; fix the values above in the incumbent's files or in the output",
        );
        printer::data(&text);
        return Ok(ExitStatus::UserError);
    }
    printer::data(&text);
    for skipped in &converter.skipped {
        printer::hint(&format!("not carried over: {skipped}"));
    }
    Ok(ExitStatus::Success)
}
