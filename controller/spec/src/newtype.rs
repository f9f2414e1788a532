//! Serde and JSON Schema glue shared by the string-shaped value types (durations, sizes, labels).

/// Implements `Deserialize` (from a string, with a helpful message for numbers and other
/// types), `Serialize` (through `Display`) and `JsonSchema` (a string with a description and
/// optional pattern) for a type that implements `FromStr<Err = String>` and `Display`.
macro_rules! string_value_type {
    ($type:ty, $name:literal, $expecting:literal, $pattern:expr) => {
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $type;
                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        formatter.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$type, E> {
                        text.parse::<$type>().map_err(E::custom)
                    }
                    fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<$type, E> {
                        Err(E::custom(format!(
                            "expected {}, got the bare number {number}",
                            $expecting
                        )))
                    }
                    fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<$type, E> {
                        Err(E::custom(format!(
                            "expected {}, got the bare number {number}",
                            $expecting
                        )))
                    }
                    fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<$type, E> {
                        Err(E::custom(format!(
                            "expected {}, got the bare number {number}",
                            $expecting
                        )))
                    }
                }
                deserializer.deserialize_any(Visitor)
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl schemars::JsonSchema for $type {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let pattern: Option<&str> = $pattern;
                match pattern {
                    Some(pattern) => schemars::json_schema!({
                        "type": "string",
                        "description": $expecting,
                        "pattern": pattern,
                    }),
                    None => schemars::json_schema!({
                        "type": "string",
                        "description": $expecting,
                    }),
                }
            }
        }
    };
}

pub(crate) use string_value_type;
