//! `GET /v1/events` (one event envelope per line) and `GET /v1/events/summary`: the event log
//! on disk, rotated files included, filtered on the controller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Response header of `GET /v1/events`: how many matching events were left out because of
/// `limit` (the newest are kept). Absent when none were.
pub const OMITTED_HEADER: &str = "x-ds01-events-omitted";
/// Response header: why the answer is incomplete (`time`: the read took too long; the events
/// shown are the newest found in the files read).
pub const INCOMPLETE_HEADER: &str = "x-ds01-events-incomplete";
/// Default of `limit`.
pub const DEFAULT_EVENT_LIMIT: usize = 1000;
/// Largest `limit` the controller accepts.
pub const MAX_EVENT_LIMIT: usize = 10_000;

/// One line of the event log (schema version 1 envelope).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    /// e.g. `detection.container_discovered`.
    pub event_type: String,
    /// `"1"`.
    pub schema_version: String,
    /// The user the event concerns, if any.
    pub user: Option<String>,
    /// `ds01-controller`.
    pub source: String,
    /// Event-specific fields.
    #[serde(default)]
    pub details: Value,
}

/// Query parameters of `GET /v1/events` and `GET /v1/events/summary`; every filter must
/// match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Event type prefix (`lifecycle.`, `gpu.orphan`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Only events about this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Only events about this container: its name, or a prefix (4+ characters) of its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Only events at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<jiff::Timestamp>,
    /// Only events before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<jiff::Timestamp>,
    /// At most this many (the newest); default [`DEFAULT_EVENT_LIMIT`], at most
    /// [`MAX_EVENT_LIMIT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Keep the response open and stream new events.
    #[serde(default)]
    pub follow: bool,
}

impl EventQuery {
    /// Whether `event` passes every filter.
    #[must_use]
    pub fn matches(&self, event: &EventEnvelope) -> bool {
        let type_ok = self
            .event_type
            .as_deref()
            .is_none_or(|prefix| event.event_type.starts_with(prefix));
        let user_ok = self
            .user
            .as_deref()
            .is_none_or(|user| event.user.as_deref() == Some(user));
        let container_ok = self
            .container
            .as_deref()
            .is_none_or(|wanted| about_container(event, wanted));
        let time_ok = (self.since.is_none() && self.until.is_none())
            || event.timestamp.parse::<jiff::Timestamp>().is_ok_and(|at| {
                self.since.is_none_or(|since| at >= since)
                    && self.until.is_none_or(|until| at < until)
            });
        type_ok && user_ok && container_ok && time_ok
    }

    /// The limit in force.
    #[must_use]
    pub fn effective_limit(&self) -> usize {
        self.limit
            .unwrap_or(DEFAULT_EVENT_LIMIT)
            .clamp(1, MAX_EVENT_LIMIT)
    }
}

/// Whether an event is about the container named `wanted` (name, or id prefix of 4+).
fn about_container(event: &EventEnvelope, wanted: &str) -> bool {
    let wanted = wanted.trim_start_matches('/');
    let field = |key: &str| event.details.get(key).and_then(Value::as_str);
    if field("container") == Some(wanted) {
        return true;
    }
    field("container_id").is_some_and(|id| {
        !id.is_empty()
            && ((wanted.len() >= 4 && id.starts_with(wanted))
                || (wanted.len() > id.len() && wanted.starts_with(id)))
    })
}

/// Answer of `GET /v1/events/summary`: counts of the matching events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    /// Matching events.
    pub total: u64,
    /// Per event type.
    pub by_type: BTreeMap<String, u64>,
    /// Per user (`-` for events about no user); past 1000 users the rest count as `(other)`.
    pub by_user: BTreeMap<String, u64>,
    /// Time of the first matching event.
    pub first: Option<String>,
    /// Time of the last matching event.
    pub last: Option<String>,
    /// Set when the read stopped early (`time`): the counts cover the newest files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: &str, kind: &str, user: Option<&str>, details: Value) -> EventEnvelope {
        EventEnvelope {
            timestamp: at.to_owned(),
            event_type: kind.to_owned(),
            schema_version: "1".to_owned(),
            user: user.map(str::to_owned),
            source: "ds01-controller".to_owned(),
            details,
        }
    }

    #[test]
    fn every_filter_must_match() {
        let stop = event(
            "2026-01-01T10:00:00.000Z",
            "lifecycle.idle_stop",
            Some("alice"),
            serde_json::json!({"container": "train", "container_id": "0123456789ab"}),
        );
        let all = EventQuery::default();
        assert!(all.matches(&stop));
        let by = |query: EventQuery| query.matches(&stop);
        let prefix = Some("lifecycle.".to_owned());
        assert!(by(EventQuery {
            event_type: prefix.clone(),
            user: Some("alice".into()),
            ..EventQuery::default()
        }));
        assert!(!by(EventQuery {
            event_type: prefix,
            user: Some("bob".into()),
            ..EventQuery::default()
        }));
        for (wanted, expected) in [
            ("train", true),
            ("/train", true),
            ("0123", true),
            ("012", false),
            ("0123456789abcdef", true),
            ("trai", false),
        ] {
            let query = EventQuery {
                container: Some(wanted.into()),
                ..EventQuery::default()
            };
            assert_eq!(by(query), expected, "{wanted}");
        }
        let at = |text: &str| Some(text.parse::<jiff::Timestamp>().expect("time"));
        assert!(by(EventQuery {
            since: at("2026-01-01T10:00:00Z"),
            until: at("2026-01-01T10:00:01Z"),
            ..EventQuery::default()
        }));
        assert!(!by(EventQuery {
            until: at("2026-01-01T10:00:00Z"),
            ..EventQuery::default()
        }));
    }

    #[test]
    fn the_limit_is_clamped() {
        assert_eq!(EventQuery::default().effective_limit(), DEFAULT_EVENT_LIMIT);
        let huge = EventQuery {
            limit: Some(usize::MAX),
            ..EventQuery::default()
        };
        assert_eq!(huge.effective_limit(), MAX_EVENT_LIMIT);
    }
}
