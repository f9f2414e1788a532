//! Small validated values used inside specs: label selectors, command templates, bind-mount
//! volumes and GPU selections.

use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::newtype::string_value_type;

/// `key=value` (the label must have that value) or `key` (the label must be present).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    /// Label key, e.g. `ds01.protected`.
    pub key: String,
    /// Required value; `None` matches any value.
    pub value: Option<String>,
}

impl LabelSelector {
    /// Whether a container with these labels matches.
    #[must_use]
    pub fn matches<'a>(&self, mut labels: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        labels.any(|(key, value)| {
            key == self.key && self.value.as_deref().is_none_or(|wanted| wanted == value)
        })
    }
}

impl FromStr for LabelSelector {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (key, value) = match text.split_once('=') {
            Some((key, value)) => (key, Some(value.to_owned())),
            None => (text, None),
        };
        let valid_key = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'));
        if !valid_key {
            return Err(format!(
                "invalid label selector \"{text}\": write `key=value` or `key`, where the key uses letters, digits, `.`, `-`, `_` or `/`"
            ));
        }
        if value
            .as_deref()
            .is_some_and(|value| value.contains(['\n', '\r']))
        {
            return Err(format!(
                "invalid label selector \"{text}\": the value has a line break"
            ));
        }
        Ok(LabelSelector {
            key: key.to_owned(),
            value,
        })
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={value}", self.key),
            None => f.write_str(&self.key),
        }
    }
}

string_value_type!(
    LabelSelector,
    "LabelSelector",
    "a label selector: `key=value` or `key`",
    Some(r"^[A-Za-z0-9._/-]+(=.*)?$")
);

/// The placeholders a command template may use.
pub const COMMAND_PLACEHOLDERS: [&str; 2] = ["{uuid}", "{index}"];

/// An argv list whose arguments may contain `{uuid}` and `{index}`, filled in per GPU.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct CommandTemplate(#[schemars(length(min = 1))] Vec<String>);

impl CommandTemplate {
    /// The arguments with the placeholders replaced.
    #[must_use]
    pub fn render(&self, uuid: &str, index: u32) -> Vec<String> {
        let index = index.to_string();
        self.0
            .iter()
            .map(|arg| arg.replace("{uuid}", uuid).replace("{index}", &index))
            .collect()
    }

    /// The template as written.
    #[must_use]
    pub fn args(&self) -> &[String] {
        &self.0
    }
}

impl TryFrom<Vec<String>> for CommandTemplate {
    type Error = String;

    fn try_from(args: Vec<String>) -> Result<Self, String> {
        if args.first().is_none_or(|program| program.trim().is_empty()) {
            return Err("the command needs at least a program name".to_owned());
        }
        for arg in &args {
            let mut rest = arg.as_str();
            while let Some(open) = rest.find('{') {
                let tail = &rest[open..];
                let Some(close) = tail.find('}') else {
                    return Err(format!("unclosed `{{` in argument \"{arg}\""));
                };
                let placeholder = &tail[..=close];
                if !COMMAND_PLACEHOLDERS.contains(&placeholder) {
                    return Err(format!(
                        "unknown placeholder `{placeholder}` in argument \"{arg}\" (use {{uuid}} or {{index}})"
                    ));
                }
                rest = &tail[close + 1..];
            }
        }
        Ok(CommandTemplate(args))
    }
}

impl From<CommandTemplate> for Vec<String> {
    fn from(value: CommandTemplate) -> Self {
        value.0
    }
}

/// A bind mount `host:container[:ro|:rw]`; both paths absolute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Volume {
    /// Absolute path on the host.
    pub host: String,
    /// Absolute path in the container.
    pub container: String,
    /// Mounted read-only.
    pub read_only: bool,
}

impl FromStr for Volume {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, read_only) = match parts.as_slice() {
            [host, container] => (*host, *container, false),
            [host, container, "ro"] => (*host, *container, true),
            [host, container, "rw"] => (*host, *container, false),
            _ => {
                return Err(format!(
                    "invalid volume \"{text}\": write `/host/path:/container/path` with an optional `:ro`"
                ));
            }
        };
        if !host.starts_with('/') || !container.starts_with('/') {
            return Err(format!(
                "invalid volume \"{text}\": both paths must be absolute"
            ));
        }
        Ok(Volume {
            host: host.to_owned(),
            container: container.to_owned(),
            read_only,
        })
    }
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}{}",
            self.host,
            self.container,
            if self.read_only { ":ro" } else { "" }
        )
    }
}

string_value_type!(
    Volume,
    "Volume",
    "a bind mount `/host/path:/container/path` with an optional `:ro`",
    Some(r"^/[^:]*:/[^:]*(:(ro|rw))?$")
);

/// Which GPUs a container gets: `all`, `none`, or a list of GPU or MIG UUIDs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum GpuSelection {
    /// Every GPU (`--gpus all`).
    #[default]
    All,
    /// No GPU at all (tests, hosts without the NVIDIA runtime).
    None,
    /// These devices, by UUID (`GPU-…` or `MIG-…`).
    Devices(Vec<String>),
}

impl Serialize for GpuSelection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            GpuSelection::All => serializer.serialize_str("all"),
            GpuSelection::None => serializer.serialize_str("none"),
            GpuSelection::Devices(uuids) => uuids.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for GpuSelection {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = GpuSelection;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`all`, `none` or a list of GPU UUIDs")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<GpuSelection, E> {
                match text {
                    "all" => Ok(GpuSelection::All),
                    "none" => Ok(GpuSelection::None),
                    other => Err(E::custom(format!(
                        "invalid gpus \"{other}\": use `all`, `none` or a list of GPU UUIDs"
                    ))),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<GpuSelection, A::Error> {
                let mut uuids = Vec::new();
                while let Some(uuid) = seq.next_element::<String>()? {
                    if !(uuid.starts_with("GPU-") || uuid.starts_with("MIG-")) {
                        return Err(serde::de::Error::custom(format!(
                            "invalid GPU UUID \"{uuid}\": it must start with `GPU-` or `MIG-`"
                        )));
                    }
                    uuids.push(uuid);
                }
                if uuids.is_empty() {
                    return Err(serde::de::Error::custom(
                        "an empty GPU list: write `none` instead",
                    ));
                }
                Ok(GpuSelection::Devices(uuids))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for GpuSelection {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GpuSelection".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`all`, `none` or a list of GPU/MIG UUIDs",
            "oneOf": [
                { "type": "string", "enum": ["all", "none"] },
                { "type": "array", "minItems": 1,
                  "items": { "type": "string", "pattern": "^(GPU|MIG)-" } }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_match_key_and_optional_value() {
        let protected: LabelSelector = "ds01.protected=true".parse().expect("parse");
        let any: LabelSelector = "ds01.monitoring".parse().expect("parse");
        let labels = [("ds01.protected", "true"), ("ds01.monitoring", "false")];
        assert!(protected.matches(labels.iter().copied()));
        assert!(any.matches(labels.iter().copied()));
        assert!(!protected.matches([("ds01.protected", "false")].iter().copied()));
        assert!("=x".parse::<LabelSelector>().is_err());
        assert!("a b=c".parse::<LabelSelector>().is_err());
    }

    #[test]
    fn command_templates_accept_only_known_placeholders() {
        let template =
            CommandTemplate::try_from(vec!["nvidia-smi".into(), "-i".into(), "{uuid}".into()])
                .expect("valid");
        assert_eq!(template.render("GPU-1", 0), ["nvidia-smi", "-i", "GPU-1"]);
        let error =
            CommandTemplate::try_from(vec!["reset".into(), "{gpu}".into()]).expect_err("unknown");
        assert!(error.contains("{gpu}"), "{error}");
        assert!(CommandTemplate::try_from(vec![]).is_err());
        assert!(CommandTemplate::try_from(vec!["x".into(), "{uuid".into()]).is_err());
    }

    #[test]
    fn volumes_need_absolute_paths() {
        let volume: Volume = "/etc/dcgm/collectors.csv:/etc/collectors.csv:ro"
            .parse()
            .expect("parse");
        assert!(volume.read_only);
        assert!("relative:/x".parse::<Volume>().is_err());
        assert!("/a:/b:rx".parse::<Volume>().is_err());
    }

    #[test]
    fn gpu_selection_reads_all_none_and_uuid_lists() {
        let parse = |json: serde_json::Value| serde_json::from_value::<GpuSelection>(json);
        assert_eq!(
            parse(serde_json::json!("all")).ok(),
            Some(GpuSelection::All)
        );
        assert_eq!(
            parse(serde_json::json!("none")).ok(),
            Some(GpuSelection::None)
        );
        assert_eq!(
            parse(serde_json::json!(["GPU-a"])).ok(),
            Some(GpuSelection::Devices(vec!["GPU-a".into()]))
        );
        assert!(parse(serde_json::json!("some")).is_err());
        assert!(parse(serde_json::json!(["0"])).is_err());
    }
}
