//! The API's timestamps: RFC 3339 UTC with milliseconds (`2026-11-22T10:00:00.500Z`), the
//! format the event log uses too.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time as the API writes it: RFC 3339 UTC, exactly three fractional digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiTime(pub jiff::Timestamp);

impl ApiTime {
    /// The current time.
    #[must_use]
    pub fn now() -> Self {
        ApiTime(jiff::Timestamp::now())
    }
}

impl From<jiff::Timestamp> for ApiTime {
    fn from(at: jiff::Timestamp) -> Self {
        ApiTime(at)
    }
}

impl fmt::Display for ApiTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}", self.0)
    }
}

impl Serialize for ApiTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ApiTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<jiff::Timestamp>()
            .map(ApiTime)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_milliseconds_and_reads_any_rfc3339() {
        let at: jiff::Timestamp = "2026-11-22T10:00:00.5Z".parse().expect("timestamp");
        let text = serde_json::to_string(&ApiTime(at)).expect("json");
        assert_eq!(text, "\"2026-11-22T10:00:00.500Z\"");
        let back: ApiTime = serde_json::from_str(&text).expect("parse");
        assert_eq!(back.0, at);
    }
}
