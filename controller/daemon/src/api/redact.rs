//! What a non-admin may not see in kind-specific details and event details: other users'
//! container names. Lists of `{container, user, …}` entries keep the viewer's own entries and
//! count the rest (`<list>OfOtherUsers`); `holders` lists (container names of unknown owners)
//! become a count (`holdersCount`).

use serde_json::{Map, Value, json};

/// Redacts `value` in place for `viewer` (a non-admin's user name).
pub fn for_viewer(value: &mut Value, viewer: &str) {
    match value {
        Value::Object(map) => redact_map(map, viewer),
        Value::Array(items) => {
            for item in items {
                for_viewer(item, viewer);
            }
        }
        _ => {}
    }
}

fn is_owned_entry(item: &Value) -> bool {
    item.get("container").is_some() && item.get("user").is_some_and(Value::is_string)
}

fn redact_map(map: &mut Map<String, Value>, viewer: &str) {
    let mut added = Vec::new();
    for (key, item) in map.iter_mut() {
        match item {
            Value::Array(items) if key == "holders" => {
                let count = items.len();
                items.clear();
                added.push(("holdersCount".to_owned(), json!(count)));
            }
            Value::Array(items) if items.iter().any(is_owned_entry) => {
                let before = items.len();
                items.retain(|entry| {
                    !is_owned_entry(entry)
                        || entry.get("user").and_then(Value::as_str) == Some(viewer)
                });
                added.push((format!("{key}OfOtherUsers"), json!(before - items.len())));
                for entry in items {
                    for_viewer(entry, viewer);
                }
            }
            other => for_viewer(other, viewer),
        }
    }
    map.extend(added);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_users_containers_are_counted_not_named() {
        let mut details = json!({
            "mode": "enforce",
            "stoppedContainersHoldingGpus": [
                {"container": "alice-train", "user": "alice", "gpus": ["GPU-1"]},
                {"container": "bob-train", "user": "bob", "gpus": ["GPU-2"]},
            ],
            "lastReset": {"details": {"gpu": "GPU-1", "holders": ["carol-job", "dave-job"]}},
        });
        for_viewer(&mut details, "bob");
        assert_eq!(
            details["stoppedContainersHoldingGpus"],
            json!([{"container": "bob-train", "user": "bob", "gpus": ["GPU-2"]}])
        );
        assert_eq!(details["stoppedContainersHoldingGpusOfOtherUsers"], 1);
        assert_eq!(details["lastReset"]["details"]["holders"], json!([]));
        assert_eq!(details["lastReset"]["details"]["holdersCount"], 2);
        assert!(!details.to_string().contains("alice"));
        assert_eq!(details["mode"], "enforce");
    }
}
