//! The Kubernetes-shaped envelope (`apiVersion`, `kind`, `metadata`, `spec`) and the typed
//! resource it carries.

use std::{collections::BTreeMap, fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    ContainerLifecyclePolicySpec, DcgmExporterSpec, GpuOrphanPolicySpec, validate::Report,
};

/// The only API version this build understands.
pub const API_VERSION: &str = "ds01.io/v1alpha1";

/// The kinds of desired state.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Kind {
    /// "The DCGM exporter must run".
    DcgmExporter,
    /// "GPUs must be orphan-free".
    GpuOrphanPolicy,
    /// "Containers must respect idle and runtime limits".
    ContainerLifecyclePolicy,
}

impl Kind {
    /// Every kind, in the order they are documented.
    pub const ALL: [Kind; 3] = [
        Kind::DcgmExporter,
        Kind::GpuOrphanPolicy,
        Kind::ContainerLifecyclePolicy,
    ];

    /// The kind as written in `kind:`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::DcgmExporter => "DcgmExporter",
            Kind::GpuOrphanPolicy => "GpuOrphanPolicy",
            Kind::ContainerLifecyclePolicy => "ContainerLifecyclePolicy",
        }
    }

    /// The lowercase form used in `kind/name` references (`dcgmexporter/dcgm-exporter`).
    #[must_use]
    pub fn lowercase(self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    /// Accepts `DcgmExporter`, `dcgmexporter`, plurals (`dcgmexporters`) and short names
    /// (`dcgm`, `orphans`, `lifecycle`), as kubectl does.
    fn from_str(text: &str) -> Result<Self, String> {
        let folded = text.to_ascii_lowercase();
        let folded = folded
            .strip_suffix('s')
            .filter(|_| folded.len() > 4)
            .unwrap_or(&folded);
        match folded {
            "dcgmexporter" | "dcgm" => Ok(Kind::DcgmExporter),
            "gpuorphanpolicy" | "gpuorphanpolicie" | "orphan" | "gpuorphan" => {
                Ok(Kind::GpuOrphanPolicy)
            }
            "containerlifecyclepolicy" | "containerlifecyclepolicie" | "lifecycle" => {
                Ok(Kind::ContainerLifecyclePolicy)
            }
            _ => Err(format!(
                "unknown kind `{text}`: use DcgmExporter, GpuOrphanPolicy or ContainerLifecyclePolicy"
            )),
        }
    }
}

/// `metadata` of a resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Unique per kind; a DNS label (lowercase letters, digits, `-`, at most 63).
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub name: String,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Metadata {
    /// Checks the name is a DNS label.
    pub fn validate(&self, report: &mut Report) {
        let name = &self.name;
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            report.error(
                "metadata.name",
                format!("\"{name}\" is not a DNS label: use lowercase letters, digits and `-`, at most 63 characters, starting and ending with a letter or digit"),
            );
        }
    }
}

/// The typed spec of one resource.
#[derive(Clone, Debug, PartialEq)]
pub enum SpecBody {
    /// A `DcgmExporter` spec.
    DcgmExporter(Box<DcgmExporterSpec>),
    /// A `GpuOrphanPolicy` spec.
    GpuOrphanPolicy(GpuOrphanPolicySpec),
    /// A `ContainerLifecyclePolicy` spec.
    ContainerLifecyclePolicy(Box<ContainerLifecyclePolicySpec>),
}

impl SpecBody {
    /// The kind of this spec.
    #[must_use]
    pub const fn kind(&self) -> Kind {
        match self {
            SpecBody::DcgmExporter(_) => Kind::DcgmExporter,
            SpecBody::GpuOrphanPolicy(_) => Kind::GpuOrphanPolicy,
            SpecBody::ContainerLifecyclePolicy(_) => Kind::ContainerLifecyclePolicy,
        }
    }

    /// Runs the kind's semantic rules.
    pub fn validate(&self, report: &mut Report) {
        match self {
            SpecBody::DcgmExporter(spec) => spec.validate(report),
            SpecBody::GpuOrphanPolicy(spec) => spec.validate(report),
            SpecBody::ContainerLifecyclePolicy(spec) => spec.validate(report),
        }
    }
}

/// A parsed, typed resource: metadata plus spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// Name and labels.
    pub metadata: Metadata,
    /// The desired state.
    pub spec: SpecBody,
}

impl Resource {
    /// The resource's kind.
    #[must_use]
    pub const fn kind(&self) -> Kind {
        self.spec.kind()
    }

    /// `kind/name` in lowercase, as the CLI prints it.
    #[must_use]
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind().lowercase(), self.metadata.name)
    }

    /// The resource as a JSON envelope, with every default filled in.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let spec = match &self.spec {
            SpecBody::DcgmExporter(spec) => serde_json::to_value(spec),
            SpecBody::GpuOrphanPolicy(spec) => serde_json::to_value(spec),
            SpecBody::ContainerLifecyclePolicy(spec) => serde_json::to_value(spec),
        };
        serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": self.kind().as_str(),
            "metadata": serde_json::to_value(&self.metadata).unwrap_or_default(),
            "spec": spec.unwrap_or_default(),
        })
    }
}

/// The envelope as it is deserialised, generic over the spec type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Envelope<S> {
    #[serde(rename = "apiVersion")]
    pub(crate) _api_version: String,
    #[serde(rename = "kind")]
    pub(crate) _kind: String,
    pub(crate) metadata: Metadata,
    #[serde(default)]
    pub(crate) spec: S,
}
