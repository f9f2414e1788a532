//! Human durations in specs: `30s`, `15m`, `2h`, `7d`, `1h 30m`, `1.5h`, `500ms`.

use std::{fmt, str::FromStr};

use crate::newtype::string_value_type;

/// A non-negative span of time written as one or more `<number><unit>` parts.
///
/// Units: `ms`, `s`, `m`, `h`, `d` (24 h), `w` (7 d). Parts may be separated by spaces
/// (`1h 30m`) or not (`1h30m`); numbers may have a fraction (`1.5h`). A bare number is
/// refused because `30` could mean seconds or minutes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

const UNITS: [(&str, u64); 6] = [
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// The longest duration a spec may hold: 100 years of 365.25 days. Deadlines computed from a
/// valid spec therefore never overflow a timestamp.
pub const MAX_MILLIS: u64 = 36_525 * 24 * 3_600_000;

impl Duration {
    /// A duration of whole seconds.
    #[must_use]
    pub const fn from_secs(seconds: u64) -> Self {
        Duration(std::time::Duration::from_secs(seconds))
    }

    /// A duration of whole minutes.
    #[must_use]
    pub const fn from_mins(minutes: u64) -> Self {
        Duration::from_secs(minutes * 60)
    }

    /// A duration of whole hours.
    #[must_use]
    pub const fn from_hours(hours: u64) -> Self {
        Duration::from_secs(hours * 3600)
    }

    /// The standard-library value.
    #[must_use]
    pub const fn std(self) -> std::time::Duration {
        self.0
    }

    /// Whether this is zero.
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// This duration scaled by `factor` (used by the high-demand idle factor).
    #[must_use]
    pub fn mul_f64(self, factor: f64) -> Self {
        Duration(self.0.mul_f64(factor.max(0.0)))
    }
}

impl From<std::time::Duration> for Duration {
    fn from(value: std::time::Duration) -> Self {
        Duration(value)
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = |why: &str| format!("invalid duration \"{text}\": {why}");
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid(
                "it is empty (write e.g. `30s`, `15m`, `2h`, `7d` or `1h 30m`)",
            ));
        }
        if trimmed.starts_with('-') {
            return Err(invalid("durations cannot be negative"));
        }
        let mut rest = trimmed;
        let mut total_ms: f64 = 0.0;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if number_len == 0 {
                return Err(invalid(
                    "expected a number followed by a unit (ms, s, m, h, d or w), e.g. `30s` or `1h 30m`",
                ));
            }
            let number: f64 = rest[..number_len]
                .parse()
                .map_err(|_| invalid(&format!("`{}` is not a number", &rest[..number_len])))?;
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            if unit.is_empty() {
                return Err(invalid(
                    "a number needs a unit: ms, s, m, h, d or w (e.g. `30s`)",
                ));
            }
            let Some((_, unit_ms)) = UNITS.iter().find(|(name, _)| *name == unit) else {
                return Err(invalid(&format!(
                    "unknown unit `{unit}` (use ms, s, m, h, d or w)"
                )));
            };
            #[expect(clippy::cast_precision_loss, reason = "unit sizes are far below 2^52")]
            let part = number * (*unit_ms as f64);
            total_ms += part;
            rest = rest[unit_len..].trim_start();
        }
        #[expect(clippy::cast_precision_loss, reason = "the cap is far below 2^52")]
        if !total_ms.is_finite() || total_ms > MAX_MILLIS as f64 {
            return Err(invalid(
                "longer than 100 years (36525d), the longest a limit may be; write `null` for no limit",
            ));
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked finite, non-negative and bounded above"
        )]
        let millis = total_ms.round() as u64;
        Ok(Duration(std::time::Duration::from_millis(millis)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut remaining = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if remaining == 0 {
            return f.write_str("0s");
        }
        let mut first = true;
        // Weeks are written as days: `14d` reads better than `2w` in status output.
        for (name, unit_ms) in UNITS.iter().skip(1) {
            let count = remaining / unit_ms;
            if count > 0 {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{count}{name}")?;
                remaining -= count * unit_ms;
                first = false;
            }
        }
        Ok(())
    }
}

string_value_type!(
    Duration,
    "Duration",
    "a duration such as `30s`, `15m`, `2h`, `7d` or `1h 30m`",
    Some(r"^\s*([0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d|w)\s*)+$")
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        let cases = [
            ("30s", 30_000),
            ("15m", 900_000),
            ("2h", 7_200_000),
            ("7d", 604_800_000),
            ("1h 30m", 5_400_000),
            ("1h30m", 5_400_000),
            ("1.5h", 5_400_000),
            ("500ms", 500),
            ("1w", 604_800_000),
            ("0s", 0),
            ("36525d", 3_155_760_000_000),
        ];
        for (text, millis) in cases {
            let parsed: Duration = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.std().as_millis(), millis, "{text}");
        }
    }

    #[test]
    fn refuses_bad_values_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("30", "needs a unit"),
            ("3x", "unknown unit `x`"),
            ("-5m", "negative"),
            ("h", "expected a number followed by a unit"),
            ("1..5h", "not a number"),
            ("1000000w", "longer than 100 years"),
            ("36526d", "longer than 100 years"),
        ];
        for (text, why) in cases {
            let error = text.parse::<Duration>().expect_err(text);
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn displays_in_a_compact_canonical_form_that_parses_back() {
        for text in ["30s", "1h 30m", "7d", "2h 0m 5s", "1d 1h", "750ms"] {
            let parsed: Duration = text.parse().expect("parse");
            let again: Duration = parsed.to_string().parse().expect("reparse");
            assert_eq!(parsed, again, "{text}");
        }
        assert_eq!(Duration::from_secs(5400).to_string(), "1h 30m");
        assert_eq!(Duration::from_hours(24 * 14).to_string(), "14d");
    }
}
