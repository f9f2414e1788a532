//! Table tests of the limits resolver.

use std::collections::HashMap;

use super::*;
use crate::{Source, SpecBody, parse_sources};

const POLICY: &str = r"
apiVersion: ds01.io/v1alpha1
kind: ContainerLifecyclePolicy
metadata: { name: lab }
spec:
  defaults:
    idleTimeout: 2h
    maxRuntime: 48h
    idle: { cpuBelow: 2 }
  groups:
    student:
      members: [sam]
      idleTimeout: 30m
      maxRuntime: 24h
      idle: { gpuUtilBelow: 10 }
    researcher:
      members: [rita, alice]
      idleTimeout: 1h
      membersFile: /etc/ds01/researchers.members
  defaultGroup: student
  containerTypes:
    devcontainer: { idleTimeout: null, maxRuntime: 168h }
    api: { idleTimeout: null, removeAfterStop: 0s }
    unknown: { idleTimeout: 15m, maxRuntime: 12h }
  users:
    alice: { maxRuntime: 96h }
  exemptions:
    - { user: rita, exemptFrom: [runtime], reason: thesis deadline, expires: '2026-12-01T00:00:00Z' }
    - { user: sam, exemptFrom: [idle, cleanup], reason: long debug session, expires: '2026-01-01T00:00:00Z' }
";

fn policy() -> ContainerLifecyclePolicySpec {
    let source = Source {
        name: "policy.yaml".into(),
        text: POLICY.into(),
    };
    let mut parsed = parse_sources(&[source]).unwrap_or_else(|errors| panic!("{errors:?}"));
    match parsed.remove(0).resource.spec {
        SpecBody::ContainerLifecyclePolicy(spec) => *spec,
        other => panic!("unexpected {other:?}"),
    }
}

fn at(text: &str) -> jiff::Timestamp {
    text.parse().expect("timestamp")
}

fn hours(value: u64) -> Option<Duration> {
    Some(Duration::from_hours(value))
}

#[test]
fn each_field_comes_from_the_highest_layer_that_sets_it() {
    let policy = policy();
    let now = at("2026-11-22T00:00:00Z");
    let no_files = HashMap::new();
    // (user, origin, expected idle timeout and source, expected max runtime and source)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<Duration>,
        &'a str,
        Option<Duration>,
        &'a str,
    );
    let cases: [Case<'_>; 8] = [
        (
            "sam",
            "docker",
            Some(Duration::from_mins(30)),
            "groups.student",
            hours(24),
            "groups.student",
        ),
        (
            "rita",
            "docker",
            hours(1),
            "groups.researcher",
            None,
            "exemption (thesis deadline)",
        ),
        // The user override layers on the group: alice keeps the researcher idle timeout.
        (
            "alice",
            "docker",
            hours(1),
            "groups.researcher",
            hours(96),
            "users.alice",
        ),
        (
            "alice",
            "devcontainer",
            None,
            "containerTypes.devcontainer",
            hours(96),
            "users.alice",
        ),
        (
            "sam",
            "devcontainer",
            None,
            "containerTypes.devcontainer",
            hours(168),
            "containerTypes.devcontainer",
        ),
        // Not listed anywhere: the default group applies.
        (
            "nina",
            "compose",
            Some(Duration::from_mins(30)),
            "groups.student",
            hours(24),
            "groups.student",
        ),
        // Unknown owner: no group, strictest type limits last.
        (
            "unknown",
            "docker",
            Some(Duration::from_mins(15)),
            "containerTypes.unknown",
            hours(12),
            "containerTypes.unknown",
        ),
        (
            "unknown",
            "api",
            Some(Duration::from_mins(15)),
            "containerTypes.unknown",
            hours(12),
            "containerTypes.unknown",
        ),
    ];
    for (user, origin, idle, idle_source, runtime, runtime_source) in cases {
        let limits = resolve(&policy, Subject { user, origin }, &no_files, now);
        assert_eq!(limits.idle_timeout.value, idle, "{user}/{origin} idle");
        assert_eq!(
            limits.idle_timeout.source.to_string(),
            idle_source,
            "{user}/{origin} idle source"
        );
        assert_eq!(limits.max_runtime.value, runtime, "{user}/{origin} runtime");
        assert_eq!(
            limits.max_runtime.source.to_string(),
            runtime_source,
            "{user}/{origin} runtime source"
        );
    }
}

#[test]
fn nested_idle_thresholds_layer_field_by_field() {
    let limits = resolve(
        &policy(),
        Subject {
            user: "sam",
            origin: "docker",
        },
        &HashMap::new(),
        at("2026-11-22T00:00:00Z"),
    );
    assert_eq!(limits.gpu_util_below.value.value(), 10.0);
    assert_eq!(
        limits.gpu_util_below.source,
        LimitSource::Group("student".into())
    );
    assert_eq!(limits.cpu_below.source, LimitSource::Defaults);
    assert_eq!(
        limits.network_below,
        Sourced {
            value: ByteSize(1 << 20),
            source: LimitSource::Builtin
        }
    );
    assert_eq!(limits.stop_grace_period.source, LimitSource::Builtin);
}

#[test]
fn exemptions_apply_until_they_expire_and_stay_listed_after() {
    let policy = policy();
    let before = resolve(
        &policy,
        Subject {
            user: "rita",
            origin: "docker",
        },
        &HashMap::new(),
        at("2026-11-30T23:59:59Z"),
    );
    assert_eq!(before.max_runtime.value, None);
    assert_eq!(before.exemptions.len(), 1);
    let after = resolve(
        &policy,
        Subject {
            user: "rita",
            origin: "docker",
        },
        &HashMap::new(),
        at("2026-12-01T00:00:00Z"),
    );
    assert_eq!(after.max_runtime.value, hours(48));
    assert_eq!(after.max_runtime.source, LimitSource::Defaults);
    assert!(after.exemptions.is_empty());
    assert_eq!(after.expired_exemptions.len(), 1);
}

#[test]
fn an_expired_cleanup_exemption_changes_nothing() {
    let limits = resolve(
        &policy(),
        Subject {
            user: "sam",
            origin: "docker",
        },
        &HashMap::new(),
        at("2026-11-22T00:00:00Z"),
    );
    assert_eq!(
        limits.remove_after_stop.value,
        Some(Duration::from_mins(30))
    );
    assert_eq!(
        limits.idle_timeout.source,
        LimitSource::Group("student".into())
    );
}

#[test]
fn members_files_count_and_the_first_listing_group_wins() {
    let policy = policy();
    let files = HashMap::from([(
        "researcher".to_owned(),
        vec!["omar".to_owned(), "sam".to_owned()],
    )]);
    assert_eq!(group_of(&policy, "omar", &files), Some("researcher"));
    // sam is listed by student (first) and by the researcher file: student wins.
    assert_eq!(group_of(&policy, "sam", &files), Some("student"));
    assert_eq!(group_of(&policy, UNKNOWN_OWNER, &files), None);
}

#[test]
fn an_empty_policy_gives_the_documented_built_in_defaults() {
    let limits = resolve(
        &ContainerLifecyclePolicySpec::default(),
        Subject {
            user: "x",
            origin: "docker",
        },
        &HashMap::new(),
        at("2026-11-22T00:00:00Z"),
    );
    assert_eq!(limits.idle_timeout.value, None);
    assert_eq!(limits.stop_grace_period.value, Duration::from_secs(60));
    assert_eq!(
        limits.remove_after_stop.value,
        Some(Duration::from_mins(30))
    );
    assert_eq!(
        limits.gpu_hold_after_stop.value,
        Some(Duration::from_mins(15))
    );
    assert_eq!(limits.created_timeout.value, Some(Duration::from_mins(30)));
    assert_eq!(
        limits
            .warn_at_idle
            .value
            .iter()
            .map(|p| p.value())
            .collect::<Vec<_>>(),
        [80.0, 95.0]
    );
    assert_eq!(
        limits
            .warn_at_runtime
            .value
            .iter()
            .map(|p| p.value())
            .collect::<Vec<_>>(),
        [75.0, 90.0]
    );
}
