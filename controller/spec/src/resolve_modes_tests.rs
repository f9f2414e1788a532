//! Table tests of the resolver's modes: `userOverrides`, `containerTypePrecedence` and
//! `nameMatching` (the incumbent's rules for imported configurations).

use std::collections::HashMap;

use super::*;
use crate::{Source, SpecBody, parse_sources};

const POLICY: &str = r"
apiVersion: ds01.io/v1alpha1
kind: ContainerLifecyclePolicy
metadata: { name: lab }
spec:
  defaults: { idleTimeout: 30m, maxRuntime: 24h, idle: { cpuBelow: 2 } }
  groups:
    student: { idleTimeout: 20m }
    researcher:
      members: [rita, alice, h_baker]
      idleTimeout: 1h
      maxRuntime: 48h
      idle: { cpuBelow: 3 }
  defaultGroup: student
  containerTypes:
    devcontainer: { idleTimeout: null, maxRuntime: 168h }
  users:
    alice: { maxRuntime: 96h }
    c_d: { idleTimeout: 2h }
    exact.name@lab.lan: { idleTimeout: 3h }
    exact_name: { idleTimeout: 4h }
  exemptions:
    - { user: h_baker, exemptFrom: [idle], reason: sanitised names never match exemptions }
";

fn policy(modes: &str) -> ContainerLifecyclePolicySpec {
    let source = Source {
        name: "policy.yaml".into(),
        text: format!("{POLICY}{modes}"),
    };
    let mut parsed = parse_sources(&[source]).unwrap_or_else(|errors| panic!("{errors:?}"));
    match parsed.remove(0).resource.spec {
        SpecBody::ContainerLifecyclePolicy(spec) => *spec,
        other => panic!("unexpected {other:?}"),
    }
}

fn limits(policy: &ContainerLifecyclePolicySpec, user: &str, origin: &str) -> ResolvedLimits {
    let now: jiff::Timestamp = "2026-11-22T00:00:00Z".parse().expect("timestamp");
    resolve(policy, Subject { user, origin }, &HashMap::new(), now)
}

fn shown(limit: &Sourced<Option<Duration>>) -> String {
    let value = limit
        .value
        .map_or_else(|| "none".to_owned(), |d| d.to_string());
    format!("{value} from {}", limit.source)
}

#[test]
fn a_user_block_replaces_the_group_only_under_replace_group() {
    // alice is a researcher with her own maxRuntime.
    let layered = policy("");
    let alice = limits(&layered, "alice", "orchestration");
    assert_eq!(shown(&alice.idle_timeout), "1h from groups.researcher");
    assert_eq!(shown(&alice.max_runtime), "4d from users.alice");
    assert_eq!(alice.group.as_deref(), Some("researcher"));
    assert_eq!(alice.cpu_below.value.value(), 3.0);

    let replacing = policy("  userOverrides: replaceGroup\n");
    let alice = limits(&replacing, "alice", "orchestration");
    assert_eq!(shown(&alice.idle_timeout), "30m from defaults");
    assert_eq!(shown(&alice.max_runtime), "4d from users.alice");
    assert_eq!(alice.group, None, "no group applies to her");
    assert_eq!(
        alice.cpu_below.value.value(),
        2.0,
        "the group's thresholds go too"
    );
    // A researcher without a block keeps the group.
    let rita = limits(&replacing, "rita", "orchestration");
    assert_eq!(shown(&rita.idle_timeout), "1h from groups.researcher");
}

#[test]
fn container_types_win_over_users_only_above_users() {
    let below = policy("");
    assert_eq!(
        shown(&limits(&below, "alice", "devcontainer").max_runtime),
        "4d from users.alice"
    );
    let above = policy("  containerTypePrecedence: aboveUsers\n");
    let alice = limits(&above, "alice", "devcontainer");
    assert_eq!(
        shown(&alice.max_runtime),
        "7d from containerTypes.devcontainer"
    );
    assert_eq!(
        shown(&alice.idle_timeout),
        "none from containerTypes.devcontainer"
    );
    // Fields the type does not set still come from the user.
    assert_eq!(
        shown(&limits(&above, "alice", "orchestration").max_runtime),
        "4d from users.alice"
    );
}

#[test]
fn sanitised_names_match_members_and_user_keys_only_when_asked() {
    let exact = policy("");
    assert_eq!(
        limits(&exact, "h.baker@lab.lan", "x").group.as_deref(),
        Some("student")
    );
    assert_eq!(
        shown(&limits(&exact, "c.d@lab.lan", "x").idle_timeout),
        "20m from groups.student"
    );

    let sanitized = policy("  nameMatching: sanitized\n");
    let baker = limits(&sanitized, "h.baker@lab.lan", "x");
    assert_eq!(baker.group.as_deref(), Some("researcher"));
    assert_eq!(
        shown(&baker.idle_timeout),
        "1h from groups.researcher",
        "the exemption for `h_baker` does not match `h.baker@lab.lan`"
    );
    assert_eq!(
        shown(&limits(&sanitized, "c.d@lab.lan", "x").idle_timeout),
        "2h from users.c_d"
    );
    // The exact key wins over the sanitised one.
    assert_eq!(
        shown(&limits(&sanitized, "exact.name@lab.lan", "x").idle_timeout),
        "3h from users.exact.name@lab.lan"
    );
    // Members files are matched the same way.
    let files = HashMap::from([("researcher".to_owned(), vec!["f_g".to_owned()])]);
    let now: jiff::Timestamp = "2026-11-22T00:00:00Z".parse().expect("timestamp");
    assert_eq!(
        group_of(&sanitized, "f.g@lab.lan", &files),
        Some("researcher")
    );
    assert_eq!(group_of(&exact, "f.g@lab.lan", &files), Some("student"));
    let resolved = resolve(
        &sanitized,
        Subject {
            user: "f.g@lab.lan",
            origin: "x",
        },
        &files,
        now,
    );
    assert_eq!(shown(&resolved.idle_timeout), "1h from groups.researcher");
}
