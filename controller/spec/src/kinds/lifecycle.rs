//! `ContainerLifecyclePolicy`: "containers must respect idle and runtime limits" — layers of
//! limits, exemptions, protection and notification settings.

use std::collections::HashMap;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    ContainerTypePrecedence, Duration, GroupSpec, LabelSelector, LimitsBlock, NameMatching,
    Percent, PolicyMode, UserOverrides, validate::Report,
};

/// Which containers the policy looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// Only containers with GPU access.
    #[default]
    Gpu,
    /// Every container.
    All,
}

/// What an exemption lifts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ExemptFrom {
    /// Idle stops.
    Idle,
    /// Runtime stops.
    Runtime,
    /// Removal of exited and never-started containers.
    Cleanup,
}

/// A time-bounded exemption for one user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exemption {
    /// The user exempted.
    pub user: String,
    /// What is lifted.
    pub exempt_from: Vec<ExemptFrom>,
    /// Why (shown to the user and in events).
    pub reason: String,
    /// When it ends (RFC 3339); `null` or absent = never. Expired entries stay listed.
    #[serde(default)]
    pub expires: Option<jiff::Timestamp>,
}

impl Exemption {
    /// Whether the exemption is in force at `now`.
    #[must_use]
    pub fn active_at(&self, now: jiff::Timestamp) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }
}

/// The keep-alive file users touch to hold off idle stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KeepAliveSpec {
    /// Path inside the container.
    pub file: String,
    /// A keep-alive file older than this no longer counts.
    pub max_age: Duration,
}

impl Default for KeepAliveSpec {
    fn default() -> Self {
        KeepAliveSpec {
            file: "/workspace/.keep-alive".to_owned(),
            max_age: Duration::from_hours(24),
        }
    }
}

/// Shorter idle timeouts when most GPUs are held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HighDemandSpec {
    /// Share of GPUs held, in percent, from which the factor applies.
    pub threshold: Percent,
    /// Idle timeouts are multiplied by this (0 < factor ≤ 1).
    pub idle_timeout_factor: f64,
}

impl Default for HighDemandSpec {
    fn default() -> Self {
        HighDemandSpec {
            threshold: Percent::new(80.0).unwrap_or_default(),
            idle_timeout_factor: 0.5,
        }
    }
}

/// Where warnings are delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NotifySpec {
    /// Write to every terminal the owner is logged into.
    pub tty: bool,
    /// File inside the container the warnings are appended to.
    pub container_file: String,
}

impl Default for NotifySpec {
    fn default() -> Self {
        NotifySpec {
            tty: true,
            container_file: "/workspace/.ds01-alerts".to_owned(),
        }
    }
}

/// Desired state: containers within their idle and runtime limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ContainerLifecyclePolicySpec {
    /// `enforce` or `dryRun`.
    pub mode: PolicyMode,
    /// How often signals are sampled.
    pub sample_interval: Duration,
    /// `gpu` (containers with GPU access) or `all`.
    pub scope: Scope,
    /// Lowest-precedence limits.
    pub defaults: LimitsBlock,
    /// Groups in order: a user belongs to the first group that lists them.
    pub groups: IndexMap<String, GroupSpec>,
    /// Group of users no group lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_group: Option<String>,
    /// Limits per container origin (`devcontainer`, `compose`, `api`, `docker`, `unknown`, …).
    pub container_types: IndexMap<String, LimitsBlock>,
    /// Limits per user, highest precedence.
    pub users: IndexMap<String, LimitsBlock>,
    /// `layer` (a user's block layers on their group) or `replaceGroup` (it replaces it).
    pub user_overrides: UserOverrides,
    /// `belowUsers` (users win over container types) or `aboveUsers`.
    pub container_type_precedence: ContainerTypePrecedence,
    /// `exact` or `sanitized` (also match the incumbent's sanitised user names).
    pub name_matching: NameMatching,
    /// Time-bounded exemptions.
    pub exemptions: Vec<Exemption>,
    /// Containers with any of these labels are never touched.
    pub protected_labels: Vec<LabelSelector>,
    /// Keep-alive file settings.
    pub keep_alive: KeepAliveSpec,
    /// High-demand idle factor.
    pub high_demand: HighDemandSpec,
    /// Warning delivery.
    pub notify: NotifySpec,
    /// Remove a container's anonymous volumes with it (kept by default: they may hold work).
    pub remove_volumes: bool,
}

impl Default for ContainerLifecyclePolicySpec {
    fn default() -> Self {
        ContainerLifecyclePolicySpec {
            mode: PolicyMode::Enforce,
            sample_interval: Duration::from_secs(60),
            scope: Scope::Gpu,
            defaults: LimitsBlock::default(),
            groups: IndexMap::new(),
            default_group: None,
            container_types: IndexMap::new(),
            users: IndexMap::new(),
            user_overrides: UserOverrides::Layer,
            container_type_precedence: ContainerTypePrecedence::BelowUsers,
            name_matching: NameMatching::Exact,
            exemptions: Vec::new(),
            protected_labels: ["ds01.protected=true", "ds01.monitoring=true"]
                .iter()
                .filter_map(|text| text.parse().ok())
                .collect(),
            keep_alive: KeepAliveSpec::default(),
            high_demand: HighDemandSpec::default(),
            notify: NotifySpec::default(),
            remove_volumes: false,
        }
    }
}

impl ContainerLifecyclePolicySpec {
    /// Semantic rules that the types alone cannot express.
    pub fn validate(&self, report: &mut Report) {
        if self.sample_interval < Duration::from_secs(1) {
            report.error("spec.sampleInterval", "must be at least 1s");
        }
        self.defaults.validate("spec.defaults", report);
        let mut group_of: HashMap<&str, &str> = HashMap::new();
        for (group, spec) in &self.groups {
            let path = format!("spec.groups.{group}");
            spec.limits().validate(&path, report);
            if spec
                .members_file
                .as_ref()
                .is_some_and(|file| !file.starts_with('/'))
            {
                report.error(format!("{path}.membersFile"), "must be an absolute path");
            }
            for (index, member) in spec.members.iter().enumerate() {
                if member.trim().is_empty() {
                    report.error(format!("{path}.members[{index}]"), "must not be empty");
                } else if let Some(first) = group_of.insert(member, group) {
                    group_of.insert(member, first);
                    report.error(
                        format!("{path}.members[{index}]"),
                        format!("user `{member}` is already a member of group `{first}`"),
                    );
                }
            }
        }
        if let Some(default_group) = &self.default_group
            && !self.groups.contains_key(default_group)
        {
            {
                report.error(
                    "spec.defaultGroup",
                    format!("names group `{default_group}`, which `groups` does not define"),
                );
            }
        }
        for (origin, block) in &self.container_types {
            block.validate(&format!("spec.containerTypes.{origin}"), report);
        }
        for (user, block) in &self.users {
            block.validate(&format!("spec.users.{user}"), report);
        }
        for (index, exemption) in self.exemptions.iter().enumerate() {
            let path = format!("spec.exemptions[{index}]");
            if exemption.user.trim().is_empty() {
                report.error(format!("{path}.user"), "must not be empty");
            }
            if exemption.exempt_from.is_empty() {
                report.error(
                    format!("{path}.exemptFrom"),
                    "must list at least one of idle, runtime, cleanup",
                );
            }
            if exemption.reason.trim().is_empty() {
                report.error(
                    format!("{path}.reason"),
                    "must say why (users and events show it)",
                );
            }
        }
        report.positive("spec.keepAlive.maxAge", self.keep_alive.max_age);
        if !self.keep_alive.file.starts_with('/') {
            report.error(
                "spec.keepAlive.file",
                "must be an absolute path inside the container",
            );
        }
        if !self.notify.container_file.starts_with('/') {
            report.error(
                "spec.notify.containerFile",
                "must be an absolute path inside the container",
            );
        }
        let factor = self.high_demand.idle_timeout_factor;
        if !(factor > 0.0 && factor <= 1.0) {
            report.error(
                "spec.highDemand.idleTimeoutFactor",
                format!("{factor} must be above 0 and at most 1"),
            );
        }
    }
}
