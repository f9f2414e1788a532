//! `bare_metal_access` → a `GpuOrphanPolicy` in `dryRun` whose `allowedHostUsers` are the
//! users the incumbent exempts from its bare-metal GPU block.

use serde_json::{Map, Value, json};

use super::notices::Notices;

/// The policy's `spec`, or `None` when the configuration has no `bare_metal_access`.
pub fn spec(limits: &Map<String, Value>, notices: &mut Notices) -> Option<Map<String, Value>> {
    let access = limits.get("bare_metal_access")?.as_object()?;
    let mut users: Vec<Value> = Vec::new();
    for user in access
        .get("exempt_users")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match user.as_str().filter(|user| !user.trim().is_empty()) {
            Some(name) if !users.contains(&json!(name)) => users.push(json!(name)),
            Some(_) => {}
            None => notices.dropped(
                &format!("bare_metal_access.exempt_users: {user}"),
                "not a user name",
            ),
        }
    }
    for key in access.keys().filter(|key| *key != "exempt_users") {
        notices.dropped(
            &format!("bare_metal_access.{key}"),
            "temporary grants (bare-metal-access grant, its state files) stay with the incumbent's tool; add a granted user to allowedHostUsers by hand if they must keep GPU processes outside containers",
        );
    }
    notices.changed(
        "bare_metal_access.exempt_users (exempt from the CUDA_VISIBLE_DEVICES block at login)",
        "GpuOrphanPolicy allowedHostUsers (mode dryRun, hostProcesses report)",
        "the incumbent never killed host GPU processes; allowedHostUsers only matters once hostProcesses is kill, and the policy only records what it would do until mode is enforce",
    );
    let mut spec = Map::new();
    spec.insert("mode".to_owned(), json!("dryRun"));
    spec.insert("hostProcesses".to_owned(), json!("report"));
    spec.insert("allowedHostUsers".to_owned(), Value::Array(users));
    Some(spec)
}
