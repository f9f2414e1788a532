//! `lifecycle-exemptions.yaml` → `spec.exemptions`. The incumbent matches the user name
//! exactly, checks only `idle_timeout_h` and `max_runtime_h`, and compares `expires_on` with
//! the current UTC time; the approval metadata it keeps goes into the reason text.

use serde_json::{Map, Value, json};

use super::notices::Notices;

/// What an `exempt_from` entry lifts here, and whether the incumbent honoured that spelling.
fn lifted(entry: &str) -> Option<(&'static str, bool)> {
    match entry {
        "idle_timeout_h" => Some(("idle", true)),
        "max_runtime_h" => Some(("runtime", true)),
        "idle_timeout" | "idle" => Some(("idle", false)),
        "max_runtime" | "runtime" => Some(("runtime", false)),
        _ => None,
    }
}

/// `reason (category X, approved by Y on Z)`.
fn reason(entry: &Map<String, Value>) -> String {
    let text = |key: &str| {
        entry.get(key).and_then(|value| match value {
            Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
    };
    let base = text("reason").unwrap_or_else(|| "No reason provided".to_owned());
    let mut parts = Vec::new();
    if let Some(category) = text("category") {
        parts.push(format!("category {category}"));
    }
    match (text("approved_by"), text("approved_on")) {
        (Some(by), Some(on)) => parts.push(format!("approved by {by} on {on}")),
        (Some(by), None) => parts.push(format!("approved by {by}")),
        (None, Some(on)) => parts.push(format!("approved on {on}")),
        (None, None) => {}
    }
    if parts.is_empty() {
        base
    } else {
        format!("{base} ({})", parts.join(", "))
    }
}

/// `expires_on` → an RFC 3339 time, `null`, or `Err(why)` when it cannot be read.
fn expiry(value: &Value, path: &str, notices: &mut Notices) -> Result<Value, String> {
    let text = match value {
        Value::Null => return Ok(Value::Null),
        Value::String(text) => text.trim(),
        other => return Err(format!("`{other}` is not a date or time")),
    };
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Ok(json!(at.to_string()));
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        let end = date
            .tomorrow()
            .and_then(|next| next.to_zoned(jiff::tz::TimeZone::UTC))
            .map_err(|error| error.to_string())?
            .timestamp();
        notices.changed(
            &format!("{path}.expires_on: \"{text}\""),
            &format!("expires: {end}"),
            "a date means through the end of that day, UTC; the incumbent's check could not compare a date without a time and treated the user as not exempt",
        );
        return Ok(json!(end.to_string()));
    }
    if let Ok(civil) = text.parse::<jiff::civil::DateTime>() {
        let at = civil
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|error| error.to_string())?
            .timestamp();
        notices.changed(
            &format!("{path}.expires_on: \"{text}\""),
            &format!("expires: {at}"),
            "a time without offset is read as UTC; the incumbent's check could not compare it and treated the user as not exempt",
        );
        return Ok(json!(at.to_string()));
    }
    Err(format!("`{text}` is not a date or an RFC 3339 time"))
}

/// Converts every entry; entries that cannot be carried over are reported.
pub fn convert(entries: &[Value], notices: &mut Notices) -> Vec<Value> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let path = format!("lifecycle-exemptions.yaml exemptions[{index}]");
        let Some(entry) = entry.as_object() else {
            notices.dropped(&path, "not a mapping");
            continue;
        };
        let Some(user) = entry
            .get("username")
            .or_else(|| entry.get("user"))
            .and_then(Value::as_str)
            .filter(|user| !user.trim().is_empty())
        else {
            notices.dropped(&path, "no username");
            continue;
        };
        let mut from: Vec<&str> = Vec::new();
        for item in entry
            .get("exempt_from")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let spelled = item.as_str().unwrap_or_default();
            match lifted(spelled) {
                Some((ours, honoured)) => {
                    if !honoured {
                        notices.changed(
                            &format!("{path}.exempt_from: {spelled}"),
                            &format!("exemptFrom: {ours}"),
                            "the incumbent's scripts look for idle_timeout_h and max_runtime_h, so this spelling never exempted anyone there",
                        );
                    }
                    if !from.contains(&ours) {
                        from.push(ours);
                    }
                }
                None => notices.dropped(
                    &format!("{path}.exempt_from: {item}"),
                    "the incumbent only ever checked idle_timeout_h and max_runtime_h exemptions (its cleanup jobs read none)",
                ),
            }
        }
        if from.is_empty() {
            notices.dropped(&path, "it exempts from nothing the incumbent checked");
            continue;
        }
        let expires = match expiry(
            entry.get("expires_on").unwrap_or(&Value::Null),
            &path,
            notices,
        ) {
            Ok(expires) => expires,
            Err(why) => {
                notices.dropped(
                    &path,
                    &format!("expires_on {why}; the incumbent skipped it too"),
                );
                continue;
            }
        };
        out.push(json!({
            "user": user,
            "exemptFrom": from,
            "reason": reason(entry),
            "expires": expires,
        }));
    }
    out
}
