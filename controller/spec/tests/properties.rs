//! Property tests of the spec parser and the limits resolver: no input makes them panic, a
//! valid document survives parse → serialize → parse unchanged, and resolution is a function
//! of its inputs whose every value names the layer it came from.

use std::collections::HashMap;

use ds01_spec::{
    Resource, Source, SpecBody, parse_sources,
    resolve::{self, LimitSource, Subject},
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn parse(text: &str) -> Result<Vec<Resource>, String> {
    parse_sources(&[Source {
        name: "prop.yaml".to_owned(),
        text: text.to_owned(),
    }])
    .map(|parsed| parsed.into_iter().map(|parsed| parsed.resource).collect())
    .map_err(|diagnostics| {
        diagnostics
            .0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => (1_u32..5000, prop::sample::select(vec!["s", "m", "h", "d"]))
            .prop_map(|(value, unit)| format!("{value}{unit}")),
        10 => (1_u32..48, 1_u32..60).prop_map(|(hours, minutes)| format!("{hours}h {minutes}m")),
        1 => Just("0s".to_owned()),
        1 => Just("-5m".to_owned()),
        1 => Just("soon".to_owned()),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => "[a-z][a-z0-9]{0,8}",
        1 => Just("Not A Name".to_owned()),
        1 => Just("x".repeat(70)),
    ]
}

/// Warning percentages: mostly ascending and below 100, sometimes not.
fn warn_at() -> impl Strategy<Value = Vec<u32>> {
    prop_oneof![
        10 => prop::collection::btree_set(1_u32..100, 0..4)
            .prop_map(|set| set.into_iter().collect::<Vec<_>>()),
        1 => prop::collection::vec(0_u32..120, 0..4),
    ]
}

fn limits() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop_oneof![
            duration().prop_map(Value::from),
            Just(Value::Null)
        ]),
        prop::option::of(prop_oneof![
            duration().prop_map(Value::from),
            Just(Value::Null)
        ]),
        prop::option::of(warn_at()),
        prop::option::of(prop_oneof![
            10 => prop::sample::select(vec!["stop", "stopAndRemove"]),
            1 => Just("explode"),
        ]),
        prop::option::of(prop_oneof![10 => 0_u32..100, 1 => 100_u32..130]),
    )
        .prop_map(|(idle, runtime, warn, on_idle, cpu)| {
            let mut block = serde_json::Map::new();
            if let Some(idle) = idle {
                block.insert("idleTimeout".into(), idle);
            }
            if let Some(runtime) = runtime {
                block.insert("maxRuntime".into(), runtime);
            }
            if let Some(warn) = warn {
                block.insert("warnAt".into(), json!({ "idle": warn }));
            }
            if let Some(on_idle) = on_idle {
                block.insert("onIdle".into(), on_idle.into());
            }
            if let Some(cpu) = cpu {
                block.insert("idle".into(), json!({ "cpuBelow": cpu }));
            }
            Value::Object(block)
        })
}

fn lifecycle_policy() -> impl Strategy<Value = String> {
    (
        name(),
        limits(),
        prop::collection::btree_map(
            "g[a-z]{1,6}",
            (prop::collection::vec("[a-z]{1,5}", 0..3), limits()),
            0..3,
        ),
        prop::collection::btree_map("[a-z]{1,6}", limits(), 0..3),
        prop::collection::btree_map(
            prop_oneof![
                10 => prop::sample::select(vec!["devcontainer", "compose", "docker", "unknown"]),
                1 => Just("spaceship"),
            ],
            limits(),
            0..3,
        ),
        prop::sample::select(vec!["enforce", "dryRun"]),
    )
        .prop_map(|(name, defaults, groups, users, types, mode)| {
            let groups: serde_json::Map<String, Value> = groups
                .into_iter()
                .map(|(group, (members, limits))| {
                    let mut block = limits.as_object().cloned().unwrap_or_default();
                    block.insert("members".into(), json!(members));
                    (group, Value::Object(block))
                })
                .collect();
            json!({
                "apiVersion": "ds01.io/v1alpha1",
                "kind": "ContainerLifecyclePolicy",
                "metadata": { "name": name },
                "spec": {
                    "mode": mode,
                    "defaults": defaults,
                    "groups": groups,
                    "users": users,
                    "containerTypes": types,
                },
            })
            .to_string()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_text_makes_the_parser_panic(text in ".{0,400}") {
        let _ = parse(&text);
    }

    #[test]
    fn no_yaml_shaped_text_makes_the_parser_panic(
        lines in prop::collection::vec(
            prop_oneof![
                Just("apiVersion: ds01.io/v1alpha1".to_owned()),
                Just("kind: ContainerLifecyclePolicy".to_owned()),
                Just("kind: DcgmExporter".to_owned()),
                Just("metadata: {name: x}".to_owned()),
                Just("spec:".to_owned()),
                Just("---".to_owned()),
                Just("  defaults: {idleTimeout: 2h}".to_owned()),
                Just("  port: [1, 2".to_owned()),
                Just("  &anchor key: *anchor".to_owned()),
                Just("- !!binary aGVsbG8=".to_owned()),
                "[ -~]{0,30}",
                "  [a-zA-Z]{1,8}: [ -~]{0,12}",
            ],
            0..20,
        )
    ) {
        let _ = parse(&lines.join("\n"));
    }

    #[test]
    fn a_valid_policy_survives_parse_serialize_parse(text in lifecycle_policy()) {
        if let Ok(first) = parse(&text) {
            let written: Vec<String> = first.iter().map(|resource| resource.to_json().to_string()).collect();
            let again = parse(&written.join("\n---\n"));
            prop_assert_eq!(again.as_ref(), Ok(&first), "written back as {:?}", written);
        }
    }

    #[test]
    fn resolution_is_deterministic_and_every_value_names_its_layer(
        text in lifecycle_policy(),
        user in prop::sample::select(vec!["alice", "bob", "a", "ab", "unknown", "root"]),
        origin in prop::sample::select(vec!["devcontainer", "compose", "docker", "unknown"]),
    ) {
        let Ok(resources) = parse(&text) else { return Ok(()) };
        for resource in resources {
            let SpecBody::ContainerLifecyclePolicy(policy) = &resource.spec else { continue };
            let now = jiff::Timestamp::now();
            let subject = || Subject { user, origin };
            let members = HashMap::new();
            let first = resolve::resolve(policy, subject(), &members, now);
            let second = resolve::resolve(policy, subject(), &members, now);
            prop_assert_eq!(format!("{first:?}"), format!("{second:?}"));
            // A user's own idle timeout always wins over every other layer.
            let own = policy
                .users
                .get(user)
                .and_then(|limits| limits.idle_timeout.as_ref());
            if own.is_some() && user != "unknown" {
                prop_assert_eq!(&first.idle_timeout.source, &LimitSource::User(user.to_owned()));
            }
        }
    }
}

/// Guards the round-trip property from being vacuous: enough generated policies are valid.
#[test]
fn a_fair_share_of_generated_policies_is_valid() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = lifecycle_policy();
    let valid = (0..400)
        .filter(|_| {
            let text = strategy
                .new_tree(&mut runner)
                .expect("a generated policy")
                .current();
            parse(&text).is_ok()
        })
        .count();
    assert!(
        valid >= 40,
        "only {valid} of 400 generated policies were valid"
    );
}
