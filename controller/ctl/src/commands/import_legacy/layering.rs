//! `--layer-overrides`: the users whose limits would change if their own block layered on
//! their group instead of replacing it, with old → new values, per container type.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use ds01_spec::{
    ContainerLifecyclePolicySpec,
    limits_view::{DEFAULT_CONTAINER_TYPE, limits_view},
    names::read_members_files,
};

use crate::printer;

fn parsed(spec: &Map<String, Value>) -> Option<ContainerLifecyclePolicySpec> {
    serde_json::from_value(Value::Object(spec.clone())).ok()
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "none".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Prints, on standard error, every (user, field) whose value differs between `replacing`
/// (the incumbent's rule) and `layering`, with the container types it differs for.
pub fn report(replacing: &Map<String, Value>, layering: &Map<String, Value>) {
    let (Some(old), Some(new)) = (parsed(replacing), parsed(layering)) else {
        return;
    };
    let (members, _) = read_members_files(&new);
    let at = jiff::Timestamp::now();
    let mut types: Vec<&str> = vec![DEFAULT_CONTAINER_TYPE, "atomic"];
    for name in new.container_types.keys() {
        if !types.contains(&name.as_str()) {
            types.push(name);
        }
    }
    // (user, field, old, new) → types
    let mut changes: IndexMap<(String, String, String, String), Vec<&str>> = IndexMap::new();
    for user in new.users.keys() {
        for container_type in &types {
            let before = limits_view(&old, user, container_type, at, &members);
            let after = limits_view(&new, user, container_type, at, &members);
            for (field, limit) in &after.limits {
                let previous = &before.limits[field];
                if previous.value != limit.value {
                    changes
                        .entry((
                            user.clone(),
                            field.clone(),
                            shown(&previous.value),
                            format!("{} ({})", shown(&limit.value), limit.source),
                        ))
                        .or_default()
                        .push(container_type);
                }
            }
        }
    }
    if changes.is_empty() {
        printer::hint("--layer-overrides: no user's limits change");
        return;
    }
    printer::hint(
        "--layer-overrides: these users' limits change (old → new, for the container types listed):",
    );
    for ((user, field, old, new), types) in &changes {
        printer::hint(&format!(
            "  {user}: {field} {old} → {new} [{}]",
            types.join(", ")
        ));
    }
}
