//! `ds01ctl limits`: the resolved lifecycle limits of one user and container type under one
//! policy, each with the layer it came from. One builder serves the offline command and the
//! controller's `GET /v1/limits`, so both give the same answer for the same specs.

use std::collections::HashMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    ContainerLifecyclePolicySpec, Duration, Percent,
    resolve::{self, Sourced},
};

/// The container type asked about when none is given: what the lab's own tools (`container
/// deploy` and the other orchestrators) label their containers with (`ds01.interface`).
pub const DEFAULT_CONTAINER_TYPE: &str = "orchestration";

/// One resolved limit: its value as a spec would write it (`null` = no limit) and its source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LimitValue {
    /// `"30m"`, `5`, `"1MiB"`, `"stopAndRemove"`, `[80, 95]`, or `null` for no limit.
    pub value: Value,
    /// `defaults`, `groups.<g>`, `containerTypes.<t>`, `users.<u>`, `built-in default` or
    /// `exemption (<reason>)`.
    pub source: String,
}

/// The answer of `ds01ctl limits` (and of `GET /v1/limits`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsView {
    /// The user asked about.
    pub user: String,
    /// The group whose limits apply (`null` when none does, e.g. a user whose own block
    /// replaces their group).
    pub group: Option<String>,
    /// The container type asked about.
    pub container_type: String,
    /// Every resolved field, in spec order.
    pub limits: IndexMap<String, LimitValue>,
}

fn duration(limit: &Sourced<Option<Duration>>) -> LimitValue {
    LimitValue {
        value: limit
            .value
            .map_or(Value::Null, |duration| json!(duration.to_string())),
        source: limit.source.to_string(),
    }
}

fn shown<T>(limit: &Sourced<T>, value: Value) -> LimitValue {
    LimitValue {
        value,
        source: limit.source.to_string(),
    }
}

/// A percentage as a spec writes it: `5`, not `5.0`; `2.5` stays.
fn percent(value: Percent) -> Value {
    let number = value.value();
    if number.fract() == 0.0 {
        #[expect(clippy::cast_possible_truncation, reason = "0 to 100, whole")]
        let whole = number as i64;
        json!(whole)
    } else {
        json!(number)
    }
}

fn percents(values: &[Percent]) -> Value {
    Value::Array(values.iter().copied().map(percent).collect())
}

/// Resolves `user`'s limits for a container of `container_type` at `at`.
#[must_use]
pub fn limits_view(
    spec: &ContainerLifecyclePolicySpec,
    user: &str,
    container_type: &str,
    at: jiff::Timestamp,
    file_members: &HashMap<String, Vec<String>>,
) -> LimitsView {
    let resolved = resolve::resolve(
        spec,
        resolve::Subject {
            user,
            origin: container_type,
        },
        file_members,
        at,
    );
    let limits: IndexMap<String, LimitValue> = [
        ("idleTimeout", duration(&resolved.idle_timeout)),
        ("maxRuntime", duration(&resolved.max_runtime)),
        (
            "stopGracePeriod",
            shown(
                &resolved.stop_grace_period,
                json!(resolved.stop_grace_period.value.to_string()),
            ),
        ),
        (
            "onIdle",
            shown(
                &resolved.on_idle,
                serde_json::to_value(resolved.on_idle.value).unwrap_or(Value::Null),
            ),
        ),
        ("removeAfterStop", duration(&resolved.remove_after_stop)),
        ("gpuHoldAfterStop", duration(&resolved.gpu_hold_after_stop)),
        ("createdTimeout", duration(&resolved.created_timeout)),
        (
            "startupGrace",
            shown(
                &resolved.startup_grace,
                json!(resolved.startup_grace.value.to_string()),
            ),
        ),
        (
            "gpuUtilBelow",
            shown(
                &resolved.gpu_util_below,
                percent(resolved.gpu_util_below.value),
            ),
        ),
        (
            "cpuBelow",
            shown(&resolved.cpu_below, percent(resolved.cpu_below.value)),
        ),
        (
            "networkBelow",
            shown(
                &resolved.network_below,
                json!(resolved.network_below.value.to_string()),
            ),
        ),
        (
            "warnAtIdle",
            shown(
                &resolved.warn_at_idle,
                percents(&resolved.warn_at_idle.value),
            ),
        ),
        (
            "warnAtRuntime",
            shown(
                &resolved.warn_at_runtime,
                percents(&resolved.warn_at_runtime.value),
            ),
        ),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    LimitsView {
        user: user.to_owned(),
        group: resolved.group,
        container_type: container_type.to_owned(),
        limits,
    }
}

/// Why no single policy could answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyChoiceError {
    /// No ContainerLifecyclePolicy at all.
    #[error("no ContainerLifecyclePolicy is applied or given")]
    NoPolicy,
    /// The named one does not exist.
    #[error("no ContainerLifecyclePolicy named `{name}` (there are: {})", available.join(", "))]
    NotFound {
        /// Name asked for.
        name: String,
        /// Names there are.
        available: Vec<String>,
    },
    /// Several exist and none was named.
    #[error("several ContainerLifecyclePolicies ({}); name one with --policy", available.join(", "))]
    Ambiguous {
        /// Names there are.
        available: Vec<String>,
    },
}

/// The policy that answers: the one named `wanted`, else the only one there is.
///
/// # Errors
/// When there is none, the named one is missing, or several exist and none is named.
pub fn choose_policy<'a>(
    policies: impl IntoIterator<Item = (&'a str, &'a ContainerLifecyclePolicySpec)>,
    wanted: Option<&str>,
) -> Result<(&'a str, &'a ContainerLifecyclePolicySpec), PolicyChoiceError> {
    let all: Vec<(&str, &ContainerLifecyclePolicySpec)> = policies.into_iter().collect();
    let names = || all.iter().map(|(name, _)| (*name).to_owned()).collect();
    match (wanted, all.as_slice()) {
        (Some(wanted), _) => all
            .iter()
            .find(|(name, _)| *name == wanted)
            .copied()
            .ok_or_else(|| PolicyChoiceError::NotFound {
                name: wanted.to_owned(),
                available: names(),
            }),
        (None, []) => Err(PolicyChoiceError::NoPolicy),
        (None, [only]) => Ok(*only),
        (None, _) => Err(PolicyChoiceError::Ambiguous { available: names() }),
    }
}
