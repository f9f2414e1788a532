//! Kubernetes-style conditions of a resource (`Ready`, `Degraded`, …), as the controllers
//! report them and `ds01ctl status` / `wait --for=condition=…` read them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ApiTime;

/// Whether a condition holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not hold.
    False,
    /// Nobody can tell yet.
    #[serde(other)]
    Unknown,
}

impl ConditionStatus {
    /// `True`, `False` or `Unknown`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }

    /// Reads `True`/`False`/`Unknown` (any case); anything else is `Unknown`.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        if text.eq_ignore_ascii_case("true") {
            ConditionStatus::True
        } else if text.eq_ignore_ascii_case("false") {
            ConditionStatus::False
        } else {
            ConditionStatus::Unknown
        }
    }
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition of a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Degraded`, `OrphansUnkillable`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// CamelCase reason (`Enforcing`, `CrashLoop`).
    pub reason: String,
    /// A sentence for people; may be empty.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: ApiTime,
}

impl Condition {
    /// A condition whose status changed at `at`.
    #[must_use]
    pub fn new(
        kind: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        at: ApiTime,
    ) -> Self {
        Condition {
            kind: kind.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.into(),
            last_transition_time: at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_the_kubernetes_field_names() {
        let at = ApiTime("2026-01-02T03:04:05Z".parse().expect("time"));
        let condition = Condition::new("Ready", ConditionStatus::True, "Enforcing", "", at);
        let json = serde_json::to_value(&condition).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"type": "Ready", "status": "True", "reason": "Enforcing",
                "message": "", "lastTransitionTime": "2026-01-02T03:04:05.000Z"})
        );
        let back: Condition = serde_json::from_value(json).expect("back");
        assert_eq!(back, condition);
        let odd: ConditionStatus = serde_json::from_str("\"Maybe\"").expect("other");
        assert_eq!(odd, ConditionStatus::Unknown);
    }
}
