//! The incumbent's `resource-limits.yaml` and companions → one `ContainerLifecyclePolicy`
//! that gives every user the limits the incumbent's scripts gave them (see
//! `docs/migration.md` for the rules, and `docs/decisions.md` for why).

use indexmap::IndexSet;
use serde_json::{Map, Value, json};

use super::{blocks, exemptions, inputs::Legacy, notices::Notices, types};

/// Choices the command line makes.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Users' blocks layer on their group instead of replacing it.
    pub layer_overrides: bool,
    /// Copy member files into `members` instead of naming them in `membersFile`.
    pub inline_members: bool,
}

const NOT_READ: &str =
    "the incumbent's stops read sigterm_grace_s only from container_types and the global policies";

/// Our `idle` thresholds plus the remaining `policies` keys reported.
fn policies_block(
    policies: &Map<String, Value>,
    path: &str,
    notices: &mut Notices,
) -> Map<String, Value> {
    let idle = blocks::thresholds(policies, path, notices);
    for (key, value) in policies {
        match key.as_str() {
            "gpu_idle_threshold" | "cpu_idle_threshold" | "network_idle_threshold" => {}
            "idle_detection_window" => idle_window_notice(notices),
            "sigterm_grace_s" => {
                notices.dropped(&format!("{path}.{}", blocks::shown(key, value)), NOT_READ)
            }
            _ => notices.dropped(
                &format!("{path}.{}", blocks::shown(key, value)),
                "no equivalent in a limits block",
            ),
        }
    }
    idle
}

fn idle_window_notice(notices: &mut Notices) {
    notices.changed(
        "policies.idle_detection_window (everywhere)",
        "idle time counted from the first sample measured idle",
        "the incumbent waited for that many consecutive hourly checks; here idleness is sampled every sampleInterval (60s)",
    );
}

/// A group, user or defaults block: its durations (less stop grace) and thresholds.
fn limits_block(
    block: &Value,
    path: &str,
    skip: &[&str],
    notices: &mut Notices,
) -> Map<String, Value> {
    let split = blocks::split(block, path, skip, notices);
    let mut out = Map::new();
    for (field, (original, value)) in &split.durations {
        if *field == "stopGracePeriod" {
            notices.dropped(&format!("{path}.{original}"), NOT_READ);
        } else {
            out.insert((*field).to_owned(), value.clone());
        }
    }
    if let Some(policies) = &split.policies {
        let idle = policies_block(policies, &format!("{path}.policies"), notices);
        if !idle.is_empty() {
            out.insert("idle".to_owned(), Value::Object(idle));
        }
    }
    out
}

fn defaults(legacy: &Legacy, notices: &mut Notices, spec: &mut Map<String, Value>) {
    let block = legacy
        .limits
        .get("defaults")
        .cloned()
        .unwrap_or(Value::Null);
    let mut out = limits_block(&block, "defaults", &["policies"], notices);
    if block.get("policies").is_some() {
        notices.dropped(
            "defaults.policies",
            "the incumbent reads policies only at the top level, in groups and in user overrides",
        );
    }
    // Absent here and in a group, the incumbent never removes: hold forever.
    for field in ["gpuHoldAfterStop", "removeAfterStop"] {
        out.entry(field).or_insert(Value::Null);
    }
    out.insert("onIdle".to_owned(), json!("stopAndRemove"));
    let Some(policies) = legacy.limits.get("policies").and_then(Value::as_object) else {
        spec.insert("defaults".to_owned(), Value::Object(out));
        return;
    };
    let idle = blocks::thresholds(policies, "policies", notices);
    if !idle.is_empty() {
        out.insert("idle".to_owned(), Value::Object(idle));
    }
    let mut high_demand = Map::new();
    for (key, value) in policies {
        let place = format!("policies.{}", blocks::shown(key, value));
        let minutes = |field: &str, out: &mut Map<String, Value>, notices: &mut Notices| {
            match blocks::duration(value, &key[key.len() - 1..]) {
                Some(duration) if !duration.is_null() => {
                    drop(out.insert(field.to_owned(), duration))
                }
                _ => notices.dropped(&place, "not a number of the key's unit"),
            }
        };
        match key.as_str() {
            "gpu_idle_threshold" | "cpu_idle_threshold" | "network_idle_threshold" => {}
            "grace_period_m" => minutes("startupGrace", &mut out, notices),
            "sigterm_grace_s" => minutes("stopGracePeriod", &mut out, notices),
            "created_container_timeout_m" => minutes("createdTimeout", &mut out, notices),
            "idle_detection_window" => idle_window_notice(notices),
            "high_demand_threshold" => {
                match value.as_f64().filter(|share| (0.0..=1.0).contains(share)) {
                    Some(share) => {
                        #[expect(clippy::cast_possible_truncation, reason = "0 to 100")]
                        let percent = (share * 100.0).round() as i64;
                        high_demand.insert("threshold".to_owned(), json!(percent));
                        notices.changed(&place, &format!("highDemand.threshold: {percent}"), "the incumbent counted running containers labelled ds01.gpu.allocated (only its own tools set it) over the lines of nvidia-smi -L; here it is the share of GPUs any container holds");
                    }
                    None => notices.dropped(&place, "not a share from 0 to 1"),
                }
            }
            "high_demand_idle_reduction" => match value
                .as_f64()
                .filter(|factor| *factor > 0.0 && *factor <= 1.0)
            {
                Some(_) => drop(high_demand.insert("idleTimeoutFactor".to_owned(), value.clone())),
                None => notices.dropped(&place, "not a factor above 0 and at most 1"),
            },
            "keepalive_max_duration_h" => {
                if value.as_f64() != Some(24.0) {
                    notices.changed(&place, "keepAlive.maxAge: 1d", "the incumbent ignored this key and always honoured keep-alive files for 24 h");
                }
            }
            "gpu_hold_after_manual_stop_m" => {
                notices.dropped(&place, "the incumbent never read it")
            }
            _ => notices.dropped(&place, "no equivalent in a lifecycle policy"),
        }
    }
    spec.insert("defaults".to_owned(), Value::Object(out));
    spec.insert("keepAlive".to_owned(), json!({ "maxAge": "1d" }));
    if !high_demand.is_empty() {
        spec.insert("highDemand".to_owned(), Value::Object(high_demand));
    }
}

fn groups(legacy: &Legacy, options: Options, notices: &mut Notices, spec: &mut Map<String, Value>) {
    let mut listed: IndexSet<String> = IndexSet::new();
    let mut out = Map::new();
    for (name, group) in legacy
        .limits
        .get("groups")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let path = format!("groups.{name}");
        let mut block = limits_block(group, &path, &["members"], notices);
        let inline = group
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        let from_file = legacy
            .member_files
            .get(name)
            .filter(|_| options.inline_members)
            .into_iter()
            .flat_map(|file| file.members.iter().map(String::as_str));
        let mut members = Vec::new();
        for member in inline.chain(from_file) {
            if listed.insert(member.to_owned()) {
                members.push(json!(member));
            } else if !members.contains(&json!(member)) {
                notices.note(&format!("{path}: `{member}` is also listed by an earlier group, which wins here as it did in the incumbent"));
            }
        }
        if !members.is_empty() {
            block.insert("members".to_owned(), Value::Array(members));
        }
        if let Some(file) = legacy
            .member_files
            .get(name)
            .filter(|_| !options.inline_members)
        {
            block.insert(
                "membersFile".to_owned(),
                json!(file.path.display().to_string()),
            );
        }
        out.insert(name.clone(), Value::Object(block));
    }
    let default_group = match legacy.limits.get("default_group") {
        Some(Value::String(group)) => group.clone(),
        _ => "student".to_owned(),
    };
    let defined = out.contains_key(&default_group);
    spec.insert("groups".to_owned(), Value::Object(out));
    if defined {
        spec.insert("defaultGroup".to_owned(), json!(default_group));
    }
}

/// The group the incumbent gives `user` (inline and file members, sanitised names).
fn incumbent_group<'a>(legacy: &'a Legacy, user: &str) -> Option<&'a Value> {
    let sanitized = ds01_spec::names::sanitize_user_name(user);
    let groups = legacy.limits.get("groups").and_then(Value::as_object)?;
    let listed = |name: &str, group: &Value| {
        let inline = group
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        let file = legacy
            .member_files
            .get(name)
            .into_iter()
            .flat_map(|file| file.members.iter().map(String::as_str));
        inline
            .chain(file)
            .any(|member| member == user || member == sanitized)
    };
    groups
        .iter()
        .find(|(name, group)| listed(name, group))
        .map(|(_, group)| group)
        .or_else(|| {
            groups.get(
                legacy
                    .limits
                    .get("default_group")
                    .and_then(Value::as_str)
                    .unwrap_or("student"),
            )
        })
}

fn users(legacy: &Legacy, options: Options, notices: &mut Notices, spec: &mut Map<String, Value>) {
    let mut out = Map::new();
    for (user, block) in &legacy.overrides {
        let path = format!("user_overrides.{user}");
        let mut converted = limits_block(block, &path, &[], notices);
        // Without its own `policies`, the incumbent gives an override user the idle thresholds
        // of the group they are listed in; a replaced group must hand them over.
        if block.get("policies").is_none() && !options.layer_overrides {
            let group_thresholds = incumbent_group(legacy, user)
                .and_then(|group| group.get("policies"))
                .and_then(Value::as_object)
                .map(|policies| blocks::thresholds(policies, &path, &mut Notices::default()))
                .unwrap_or_default();
            if !group_thresholds.is_empty() {
                converted.insert("idle".to_owned(), Value::Object(group_thresholds));
            }
        }
        out.insert(user.clone(), Value::Object(converted));
    }
    if !out.is_empty() {
        spec.insert("users".to_owned(), Value::Object(out));
    }
}

/// The policy's `spec`.
pub fn spec(legacy: &Legacy, options: Options, notices: &mut Notices) -> Map<String, Value> {
    let mut spec = Map::new();
    spec.insert("mode".to_owned(), json!("dryRun"));
    spec.insert("scope".to_owned(), json!("gpu"));
    spec.insert(
        "userOverrides".to_owned(),
        json!(if options.layer_overrides {
            "layer"
        } else {
            "replaceGroup"
        }),
    );
    spec.insert("containerTypePrecedence".to_owned(), json!("aboveUsers"));
    spec.insert("nameMatching".to_owned(), json!("sanitized"));
    defaults(legacy, notices, &mut spec);
    groups(legacy, options, notices, &mut spec);
    spec.insert(
        "containerTypes".to_owned(),
        Value::Object(types::container_types(legacy, notices)),
    );
    users(legacy, options, notices, &mut spec);
    let exemptions = exemptions::convert(&legacy.exemptions, notices);
    if !exemptions.is_empty() {
        spec.insert("exemptions".to_owned(), Value::Array(exemptions));
    }
    notices.changed(
        "container_hold_after_stop_h, policies.created_container_timeout_m (every stopped or never-started container)",
        "removeAfterStop, createdTimeout (containers in scope: those with GPU access)",
        "the import keeps scope: gpu because the incumbent's idle and runtime limits applied only to GPU containers; scope: all would clean up the others too but also put them under idle and runtime limits",
    );
    notices.changed(
        "idle = GPU, CPU and network idle and at most 2 processes, one sample an hour",
        "idle = every available signal below its threshold, sampled every sampleInterval",
        "the process count is not a signal here, and warnings now come before the stop instead of in the same run",
    );
    spec
}
