//! Sizes (`512MiB`, `1GB`) and percentages (0–100) as validated value types.

use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::newtype::string_value_type;

/// A number of bytes written with an optional unit: `B`, `KB`/`MB`/`GB`/`TB` (powers of
/// 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024). Fractions are allowed (`1.5GiB`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const SIZE_UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

impl ByteSize {
    /// The number of bytes.
    #[must_use]
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = |why: &str| format!("invalid size \"{text}\": {why}");
        let trimmed = text.trim();
        let number_len = trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(trimmed.len());
        if number_len == 0 {
            return Err(invalid(
                "expected a number followed by a unit, e.g. `512MiB`",
            ));
        }
        let number: f64 = trimmed[..number_len]
            .parse()
            .map_err(|_| invalid("the number is malformed"))?;
        let unit = trimmed[number_len..].trim();
        let multiplier = if unit.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, multiplier)| *multiplier)
                .ok_or_else(|| {
                    invalid(&format!(
                        "unknown unit `{unit}` (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
                    ))
                })?
        };
        #[expect(clippy::cast_precision_loss, reason = "unit sizes are far below 2^52")]
        let bytes = number * multiplier as f64;
        if !bytes.is_finite() || bytes > 9.0e18 {
            return Err(invalid("too large"));
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked finite, non-negative and bounded"
        )]
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut units = SIZE_UNITS;
        units.sort_by_key(|(_, multiplier)| std::cmp::Reverse(*multiplier));
        for (name, multiplier) in &units {
            if *multiplier > 1 && self.0 >= *multiplier && self.0.is_multiple_of(*multiplier) {
                return write!(f, "{}{name}", self.0 / multiplier);
            }
        }
        write!(f, "{}B", self.0)
    }
}

string_value_type!(
    ByteSize,
    "ByteSize",
    "a size such as `1MiB`, `512MiB`, `2GB` or a number of bytes written as `1024B`",
    Some(r"^\s*[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
);

/// A percentage from 0 to 100 inclusive, written as a plain number (`5`, `2.5`).
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Percent(f64);

impl JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "description": "a percentage from 0 to 100",
        })
    }
}

impl Percent {
    /// A percentage; `None` outside 0–100 or not a number.
    #[must_use]
    pub fn new(value: f64) -> Option<Self> {
        (0.0..=100.0).contains(&value).then_some(Percent(value))
    }

    /// The value, 0–100.
    #[must_use]
    pub const fn value(self) -> f64 {
        self.0
    }

    /// The value as a fraction, 0–1.
    #[must_use]
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }
}

impl TryFrom<f64> for Percent {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        Percent::new(value)
            .ok_or_else(|| format!("{value} is not a percentage: use a number from 0 to 100"))
    }
}

impl From<Percent> for f64 {
    fn from(value: Percent) -> f64 {
        value.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        let cases = [
            ("1MiB", 1 << 20),
            ("512MiB", 512 << 20),
            ("1.5GiB", 3 << 29),
            ("2GB", 2_000_000_000),
            ("1024", 1024),
            ("10 KB", 10_000),
        ];
        for (text, bytes) in cases {
            assert_eq!(
                text.parse::<ByteSize>().map(ByteSize::bytes),
                Ok(bytes),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_sizes_say_why() {
        for (text, why) in [
            ("MiB", "expected a number"),
            ("1ZB", "unknown unit"),
            ("-1MiB", "expected a number"),
        ] {
            let error = text.parse::<ByteSize>().expect_err(text);
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn sizes_display_in_the_largest_exact_unit() {
        assert_eq!(ByteSize(512 << 20).to_string(), "512MiB");
        assert_eq!(ByteSize(2_000_000_000).to_string(), "2GB");
        assert_eq!(ByteSize(1000 + 1).to_string(), "1001B");
    }

    #[test]
    fn percentages_are_bounded() {
        assert!(Percent::new(0.0).is_some());
        assert!(Percent::new(100.0).is_some());
        assert!(Percent::new(100.5).is_none());
        assert!(Percent::new(-1.0).is_none());
        assert!(Percent::new(f64::NAN).is_none());
    }
}
