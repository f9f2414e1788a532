//! The limits resolver: (policy, user, group membership, container origin, now) → the limits
//! that apply to one container, each value carrying the layer it came from.
//!
//! # Guarantees
//! - Layers apply lowest to highest: built-in defaults → `defaults` → the user's group →
//!   `containerTypes.<origin>` → `users.<user>`; each layer overrides only the fields it sets.
//!   With `containerTypePrecedence: aboveUsers` the last two swap places; with
//!   `userOverrides: replaceGroup` a user who has a `users` block gets no group layer.
//! - With `nameMatching: sanitized`, a member or `users` key also matches an owner whose
//!   sanitised name it equals (exact names first); exemptions always match exactly.
//! - Exemptions in force at `now` then lift what they name; expired ones are kept in the
//!   result for display but change nothing.
//! - An unknown owner gets no group and no user layer, and `containerTypes.unknown` applies
//!   last: the strictest reading.

use std::{collections::HashMap, fmt};

use crate::{
    ByteSize, ContainerLifecyclePolicySpec, ContainerTypePrecedence, Duration, ExemptFrom,
    Exemption, LimitsBlock, NameMatching, OnIdle, Percent, UserOverrides,
    names::sanitize_user_name,
};

/// The owner name used when a container's owner cannot be determined.
pub const UNKNOWN_OWNER: &str = "unknown";

/// Where a resolved value came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "layer", content = "name", rename_all = "camelCase")]
pub enum LimitSource {
    /// The controller's built-in default.
    Builtin,
    /// `spec.defaults`.
    Defaults,
    /// `spec.groups.<name>`.
    Group(String),
    /// `spec.containerTypes.<origin>`.
    ContainerType(String),
    /// `spec.users.<user>`.
    User(String),
    /// An exemption, by its reason.
    Exemption(String),
}

impl fmt::Display for LimitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitSource::Builtin => f.write_str("built-in default"),
            LimitSource::Defaults => f.write_str("defaults"),
            LimitSource::Group(name) => write!(f, "groups.{name}"),
            LimitSource::ContainerType(name) => write!(f, "containerTypes.{name}"),
            LimitSource::User(name) => write!(f, "users.{name}"),
            LimitSource::Exemption(reason) => write!(f, "exemption ({reason})"),
        }
    }
}

/// A value and the layer that set it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: LimitSource,
}

impl<T> Sourced<T> {
    fn builtin(value: T) -> Self {
        Sourced {
            value,
            source: LimitSource::Builtin,
        }
    }
}

/// The limits that apply to one container. `None` durations mean "no limit".
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedLimits {
    /// The owner's group, if any.
    pub group: Option<String>,
    /// Idle timeout.
    pub idle_timeout: Sourced<Option<Duration>>,
    /// Maximum runtime.
    pub max_runtime: Sourced<Option<Duration>>,
    /// SIGTERM-to-SIGKILL grace.
    pub stop_grace_period: Sourced<Duration>,
    /// What an idle stop does.
    pub on_idle: Sourced<OnIdle>,
    /// Removal of exited containers.
    pub remove_after_stop: Sourced<Option<Duration>>,
    /// Removal of exited containers holding a GPU.
    pub gpu_hold_after_stop: Sourced<Option<Duration>>,
    /// Removal of created, never-started containers.
    pub created_timeout: Sourced<Option<Duration>>,
    /// No idle accounting this long after a start.
    pub startup_grace: Sourced<Duration>,
    /// GPU idle threshold.
    pub gpu_util_below: Sourced<Percent>,
    /// CPU idle threshold (percent of one core).
    pub cpu_below: Sourced<Percent>,
    /// Network idle threshold per sample interval.
    pub network_below: Sourced<ByteSize>,
    /// Idle warning fractions.
    pub warn_at_idle: Sourced<Vec<Percent>>,
    /// Runtime warning fractions.
    pub warn_at_runtime: Sourced<Vec<Percent>>,
    /// Idle warning lead times.
    pub warn_before_idle: Sourced<Vec<Duration>>,
    /// Runtime warning lead times.
    pub warn_before_runtime: Sourced<Vec<Duration>>,
    /// The idle timeout an exemption lifted (what would apply without it).
    pub lifted_idle_timeout: Option<Duration>,
    /// The maximum runtime an exemption lifted.
    pub lifted_max_runtime: Option<Duration>,
    /// Exemptions in force for this user.
    pub exemptions: Vec<Exemption>,
    /// Expired exemptions of this user (shown, not applied).
    pub expired_exemptions: Vec<Exemption>,
}

fn percents(values: &[f64]) -> Vec<Percent> {
    values
        .iter()
        .filter_map(|value| Percent::new(*value))
        .collect()
}

impl Default for ResolvedLimits {
    fn default() -> Self {
        ResolvedLimits {
            group: None,
            idle_timeout: Sourced::builtin(None),
            max_runtime: Sourced::builtin(None),
            stop_grace_period: Sourced::builtin(Duration::from_secs(60)),
            on_idle: Sourced::builtin(OnIdle::Stop),
            remove_after_stop: Sourced::builtin(Some(Duration::from_mins(30))),
            gpu_hold_after_stop: Sourced::builtin(Some(Duration::from_mins(15))),
            created_timeout: Sourced::builtin(Some(Duration::from_mins(30))),
            startup_grace: Sourced::builtin(Duration::from_mins(30)),
            gpu_util_below: Sourced::builtin(Percent::new(5.0).unwrap_or_default()),
            cpu_below: Sourced::builtin(Percent::new(2.0).unwrap_or_default()),
            network_below: Sourced::builtin(ByteSize(1 << 20)),
            warn_at_idle: Sourced::builtin(percents(&[80.0, 95.0])),
            warn_at_runtime: Sourced::builtin(percents(&[75.0, 90.0])),
            warn_before_idle: Sourced::builtin(Vec::new()),
            warn_before_runtime: Sourced::builtin(Vec::new()),
            lifted_idle_timeout: None,
            lifted_max_runtime: None,
            exemptions: Vec::new(),
            expired_exemptions: Vec::new(),
        }
    }
}

/// Who and what a container is, as far as limits care.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Owner user name, or [`UNKNOWN_OWNER`].
    pub user: &'a str,
    /// Container origin (`devcontainer`, `compose`, `api`, `docker`, …).
    pub origin: &'a str,
}

/// The names an owner is matched by, in order: the name itself, then (with
/// `nameMatching: sanitized`) its sanitised form when that differs.
fn candidate_names(policy: &ContainerLifecyclePolicySpec, user: &str) -> Vec<String> {
    let mut names = vec![user.to_owned()];
    if policy.name_matching == NameMatching::Sanitized {
        let sanitized = sanitize_user_name(user);
        if sanitized != user && !sanitized.is_empty() {
            names.push(sanitized);
        }
    }
    names
}

/// The group a user belongs to: the first group (in spec order) whose `members` or
/// `membersFile` lists them (or, with `nameMatching: sanitized`, their sanitised name), else
/// `defaultGroup`. `file_members` holds each group's `membersFile` content, read by the caller.
#[must_use]
pub fn group_of<'a>(
    policy: &'a ContainerLifecyclePolicySpec,
    user: &str,
    file_members: &HashMap<String, Vec<String>>,
) -> Option<&'a str> {
    if user == UNKNOWN_OWNER {
        return None;
    }
    let names = candidate_names(policy, user);
    let listed = |members: &[String]| members.iter().any(|member| names.contains(member));
    policy
        .groups
        .iter()
        .find(|(name, group)| {
            listed(&group.members)
                || file_members
                    .get(name.as_str())
                    .is_some_and(|members| listed(members))
        })
        .map(|(name, _)| name.as_str())
        .or(policy.default_group.as_deref())
}

/// The `users` key that applies to `user`: their own name, else (with
/// `nameMatching: sanitized`) their sanitised name.
#[must_use]
pub fn user_key<'a>(policy: &'a ContainerLifecyclePolicySpec, user: &str) -> Option<&'a str> {
    if user == UNKNOWN_OWNER {
        return None;
    }
    candidate_names(policy, user)
        .iter()
        .find_map(|name| policy.users.get_key_value(name.as_str()))
        .map(|(key, _)| key.as_str())
}

/// Resolves the limits for `subject` at `now`.
#[must_use]
pub fn resolve(
    policy: &ContainerLifecyclePolicySpec,
    subject: Subject<'_>,
    file_members: &HashMap<String, Vec<String>>,
    now: jiff::Timestamp,
) -> ResolvedLimits {
    let mut resolved = ResolvedLimits::default();
    let known_owner = subject.user != UNKNOWN_OWNER;
    let user_layer = user_key(policy, subject.user).and_then(|key| {
        policy
            .users
            .get(key)
            .map(|block| (block.clone(), LimitSource::User(key.to_owned())))
    });
    let group_replaced =
        policy.user_overrides == UserOverrides::ReplaceGroup && user_layer.is_some();
    resolved.group = if group_replaced {
        None
    } else {
        group_of(policy, subject.user, file_members).map(str::to_owned)
    };
    let mut layers: Vec<(LimitsBlock, LimitSource)> =
        vec![(policy.defaults.clone(), LimitSource::Defaults)];
    if let Some(group) = resolved
        .group
        .as_deref()
        .and_then(|name| policy.groups.get_key_value(name))
    {
        layers.push((group.1.limits(), LimitSource::Group(group.0.clone())));
    }
    let type_layer = policy.container_types.get(subject.origin).map(|block| {
        (
            block.clone(),
            LimitSource::ContainerType(subject.origin.to_owned()),
        )
    });
    match policy.container_type_precedence {
        ContainerTypePrecedence::BelowUsers => {
            layers.extend(type_layer.into_iter().chain(user_layer))
        }
        ContainerTypePrecedence::AboveUsers => {
            layers.extend(user_layer.into_iter().chain(type_layer))
        }
    }
    if !known_owner
        && subject.origin != UNKNOWN_OWNER
        && let Some(block) = policy.container_types.get(UNKNOWN_OWNER)
    {
        layers.push((
            block.clone(),
            LimitSource::ContainerType(UNKNOWN_OWNER.to_owned()),
        ));
    }
    for (block, source) in &layers {
        apply_layer(&mut resolved, block, source);
    }
    if known_owner {
        apply_exemptions(&mut resolved, policy, subject.user, now);
    }
    resolved
}

fn set<T: Clone>(target: &mut Sourced<T>, value: Option<&T>, source: &LimitSource) {
    if let Some(value) = value {
        *target = Sourced {
            value: value.clone(),
            source: source.clone(),
        };
    }
}

fn apply_layer(resolved: &mut ResolvedLimits, block: &LimitsBlock, source: &LimitSource) {
    set(
        &mut resolved.idle_timeout,
        block.idle_timeout.as_ref(),
        source,
    );
    set(
        &mut resolved.max_runtime,
        block.max_runtime.as_ref(),
        source,
    );
    set(
        &mut resolved.stop_grace_period,
        block.stop_grace_period.as_ref(),
        source,
    );
    set(&mut resolved.on_idle, block.on_idle.as_ref(), source);
    set(
        &mut resolved.remove_after_stop,
        block.remove_after_stop.as_ref(),
        source,
    );
    set(
        &mut resolved.gpu_hold_after_stop,
        block.gpu_hold_after_stop.as_ref(),
        source,
    );
    set(
        &mut resolved.created_timeout,
        block.created_timeout.as_ref(),
        source,
    );
    set(
        &mut resolved.startup_grace,
        block.startup_grace.as_ref(),
        source,
    );
    if let Some(idle) = &block.idle {
        set(
            &mut resolved.gpu_util_below,
            idle.gpu_util_below.as_ref(),
            source,
        );
        set(&mut resolved.cpu_below, idle.cpu_below.as_ref(), source);
        set(
            &mut resolved.network_below,
            idle.network_below.as_ref(),
            source,
        );
    }
    if let Some(warn_before) = &block.warn_before {
        set(
            &mut resolved.warn_before_idle,
            warn_before.idle.as_ref(),
            source,
        );
        set(
            &mut resolved.warn_before_runtime,
            warn_before.runtime.as_ref(),
            source,
        );
    }
    if let Some(warn_at) = &block.warn_at {
        set(&mut resolved.warn_at_idle, warn_at.idle.as_ref(), source);
        set(
            &mut resolved.warn_at_runtime,
            warn_at.runtime.as_ref(),
            source,
        );
    }
}

fn apply_exemptions(
    resolved: &mut ResolvedLimits,
    policy: &ContainerLifecyclePolicySpec,
    user: &str,
    now: jiff::Timestamp,
) {
    for exemption in policy
        .exemptions
        .iter()
        .filter(|exemption| exemption.user == user)
    {
        if !exemption.active_at(now) {
            resolved.expired_exemptions.push(exemption.clone());
            continue;
        }
        let source = LimitSource::Exemption(exemption.reason.clone());
        for lifted in &exemption.exempt_from {
            match lifted {
                ExemptFrom::Idle => {
                    resolved.lifted_idle_timeout =
                        resolved.lifted_idle_timeout.or(resolved.idle_timeout.value);
                }
                ExemptFrom::Runtime => {
                    resolved.lifted_max_runtime =
                        resolved.lifted_max_runtime.or(resolved.max_runtime.value);
                }
                ExemptFrom::Cleanup => {}
            }
            let targets: Vec<&mut Sourced<Option<Duration>>> = match lifted {
                ExemptFrom::Idle => vec![&mut resolved.idle_timeout],
                ExemptFrom::Runtime => vec![&mut resolved.max_runtime],
                ExemptFrom::Cleanup => vec![
                    &mut resolved.remove_after_stop,
                    &mut resolved.gpu_hold_after_stop,
                    &mut resolved.created_timeout,
                ],
            };
            for target in targets {
                *target = Sourced {
                    value: None,
                    source: source.clone(),
                };
            }
        }
        resolved.exemptions.push(exemption.clone());
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "resolve_modes_tests.rs"]
mod modes_tests;
