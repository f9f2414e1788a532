//! The limits block of `ContainerLifecyclePolicy`: the layerable settings that `defaults`,
//! `groups.<g>`, `containerTypes.<t>` and `users.<u>` each carry.
//!
//! Every field is optional so that a layer only overrides what it names. Fields where `null`
//! means "no limit" are `Option<Option<_>>`: absent (`None`) inherits, `null` (`Some(None)`)
//! switches the limit off, a value (`Some(Some(v))`) sets it.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{ByteSize, Duration, Percent, validate::Report};

/// Reads a present field as `Some(value-or-null)`, so absence and `null` stay distinct.
#[expect(
    clippy::option_option,
    reason = "absent, null and value are three different things here"
)]
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// What an idle stop does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OnIdle {
    /// Stop the container; it is removed later by `removeAfterStop`.
    Stop,
    /// Stop and remove at once (frees its GPU).
    StopAndRemove,
}

/// Thresholds below which a signal counts as idle.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdleThresholds {
    /// GPU utilisation, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_util_below: Option<Percent>,
    /// CPU use, percent of one core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_below: Option<Percent>,
    /// Network bytes (received plus sent) per sample interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_below: Option<ByteSize>,
}

/// Fractions of a limit, in percent, at which warnings go out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarnAt {
    /// For the idle timeout (each once per idle episode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Vec<Percent>>,
    /// For the maximum runtime (each once per run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Vec<Percent>>,
}

/// Fixed lead times before an action at which warnings go out (beside `warnAt`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarnBefore {
    /// Before an idle stop (each once per idle episode), e.g. `[15m, 2m]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Vec<Duration>>,
    /// Before a runtime stop (each once per run), e.g. `[1h, 10m]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Vec<Duration>>,
}

/// Declares a struct holding every layerable limit plus `$extra` fields.
macro_rules! limits_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident : $type:ty,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $type,)*
            /// Stop a container idle this long; `null` = never.
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            pub idle_timeout: Option<Option<Duration>>,
            /// Stop a container running this long; `null` = never.
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            pub max_runtime: Option<Option<Duration>>,
            /// Grace between SIGTERM and SIGKILL when stopping.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub stop_grace_period: Option<Duration>,
            /// `stop` or `stopAndRemove` on idle.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub on_idle: Option<OnIdle>,
            /// Remove exited containers after this long; `null` = never.
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            pub remove_after_stop: Option<Option<Duration>>,
            /// Remove exited containers that hold a GPU after this long; `null` = never.
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            pub gpu_hold_after_stop: Option<Option<Duration>>,
            /// Remove created, never-started containers after this long; `null` = never.
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            pub created_timeout: Option<Option<Duration>>,
            /// No idle accounting this long after a start.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub startup_grace: Option<Duration>,
            /// Idle thresholds.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub idle: Option<IdleThresholds>,
            /// Warning fractions.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub warn_at: Option<WarnAt>,
            /// Warning lead times.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub warn_before: Option<WarnBefore>,
        }
    };
}

limits_struct!(
    /// Limits that `defaults`, `containerTypes.<t>` and `users.<u>` set.
    LimitsBlock {}
);

limits_struct!(
    /// A group: its members and the limits it sets for them.
    GroupSpec {
        /// Users in this group.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        members: Vec<String>,
        /// A file listing more members, one user a line, `#` comments.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        members_file: Option<String>,
    }
);

impl GroupSpec {
    /// The limits part of the group, without its membership.
    #[must_use]
    pub fn limits(&self) -> LimitsBlock {
        LimitsBlock {
            idle_timeout: self.idle_timeout,
            max_runtime: self.max_runtime,
            stop_grace_period: self.stop_grace_period,
            on_idle: self.on_idle,
            remove_after_stop: self.remove_after_stop,
            gpu_hold_after_stop: self.gpu_hold_after_stop,
            created_timeout: self.created_timeout,
            startup_grace: self.startup_grace,
            idle: self.idle.clone(),
            warn_at: self.warn_at.clone(),
            warn_before: self.warn_before.clone(),
        }
    }
}

impl LimitsBlock {
    /// Semantic rules for one block at `path` (e.g. `spec.groups.student`).
    pub fn validate(&self, path: &str, report: &mut Report) {
        let nonzero = [
            (
                "idleTimeout",
                self.idle_timeout,
                "use `null` for no idle timeout",
            ),
            (
                "maxRuntime",
                self.max_runtime,
                "use `null` for no runtime limit",
            ),
            (
                "createdTimeout",
                self.created_timeout,
                "use `null` to keep never-started containers",
            ),
        ];
        for (field, value, hint) in nonzero {
            if value.flatten().is_some_and(Duration::is_zero) {
                report.error(
                    format!("{path}.{field}"),
                    format!("must be above zero ({hint})"),
                );
            }
        }
        if let Some(warn_before) = &self.warn_before {
            for (field, leads) in [
                ("idle", &warn_before.idle),
                ("runtime", &warn_before.runtime),
            ] {
                for (index, lead) in leads.iter().flatten().enumerate() {
                    let at = format!("{path}.warnBefore.{field}[{index}]");
                    if lead.is_zero() {
                        report.error(at, "must be above zero (the action itself happens at 0)");
                    } else if leads
                        .iter()
                        .flatten()
                        .take(index)
                        .any(|earlier| earlier == lead)
                    {
                        report.error(at, format!("{lead} is listed twice"));
                    }
                }
            }
        }
        if let Some(warn_at) = &self.warn_at {
            for (field, fractions) in [("idle", &warn_at.idle), ("runtime", &warn_at.runtime)] {
                if let Some(fractions) = fractions {
                    validate_warn_at(&format!("{path}.warnAt.{field}"), fractions, report);
                }
            }
        }
    }
}

fn validate_warn_at(path: &str, fractions: &[Percent], report: &mut Report) {
    for (index, fraction) in fractions.iter().enumerate() {
        let value = fraction.value();
        if value <= 0.0 || value >= 100.0 {
            report.error(
                format!("{path}[{index}]"),
                format!("{value} must be above 0 and below 100 (at 100 the action itself happens)"),
            );
        }
        if index > 0 && value <= fractions[index - 1].value() {
            report.error(
                format!("{path}[{index}]"),
                format!(
                    "warnings must be in ascending order: {value} follows {}",
                    fractions[index - 1].value()
                ),
            );
        }
    }
}
