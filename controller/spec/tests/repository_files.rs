//! The spec files shipped in the repository: every one parses, carries the editor schema
//! header, and the checked-in schema is the one the types generate.

use std::path::{Path, PathBuf};

use ds01_spec::{Source, parse_sources, read_sources, schema};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shipped_sources() -> Vec<Source> {
    let root = repository_root();
    read_sources(&[root.join("specs"), root.join("examples")])
        .expect("specs/ and examples/ are readable")
}

#[test]
fn every_file_in_specs_and_examples_is_valid() {
    let sources = shipped_sources();
    assert!(
        sources.len() >= 6,
        "expected the shipped spec files, found {}",
        sources.len()
    );
    let parsed = parse_sources(&sources).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    for kind in ds01_spec::Kind::ALL {
        assert!(
            parsed.iter().any(|p| p.resource.kind() == kind),
            "specs/ has no {kind}"
        );
    }
}

#[test]
fn every_spec_file_points_editors_at_the_schema() {
    for source in shipped_sources() {
        let first = source.text.lines().next().unwrap_or_default();
        assert_eq!(
            first, "# yaml-language-server: $schema=../schemas/ds01.schema.json",
            "{}",
            source.name
        );
    }
}

#[test]
fn the_checked_in_schema_matches_the_types() {
    let path = repository_root().join("schemas/ds01.schema.json");
    let checked_in = std::fs::read_to_string(&path).expect("schemas/ds01.schema.json exists");
    assert!(
        checked_in == schema::editor_schema_text(),
        "schemas/ds01.schema.json is out of date: run `cargo run -p ds01ctl -- schema > schemas/ds01.schema.json`"
    );
}

#[test]
fn shipped_specs_round_trip_through_their_serialised_form() {
    let parsed = parse_sources(&shipped_sources()).expect("valid");
    for original in parsed {
        let text = serde_json::to_string_pretty(&original.resource.to_json()).expect("serialise");
        let again = parse_sources(&[Source {
            name: "round-trip".into(),
            text,
        }])
        .unwrap_or_else(|errors| panic!("{}: {errors:?}", original.resource.reference()));
        assert_eq!(
            again[0].resource,
            original.resource,
            "{}",
            original.resource.reference()
        );
    }
}

#[test]
fn shipped_destructive_policies_start_in_dry_run() {
    let root = repository_root();
    let parsed = parse_sources(&read_sources(&[root.join("specs")]).expect("specs/ is readable"))
        .expect("valid");
    let mut policies = 0;
    for spec in parsed {
        let mode = match &spec.resource.spec {
            ds01_spec::SpecBody::GpuOrphanPolicy(policy) => policy.mode,
            ds01_spec::SpecBody::ContainerLifecyclePolicy(policy) => policy.mode,
            // Touches only the exporter container it owns; it has no mode.
            ds01_spec::SpecBody::DcgmExporter(_) => continue,
        };
        policies += 1;
        assert_eq!(
            mode,
            ds01_spec::PolicyMode::DryRun,
            "{} is shipped in {mode:?}: a first start would act on users' processes",
            spec.resource.metadata.name
        );
    }
    assert_eq!(
        policies, 2,
        "specs/ has one GpuOrphanPolicy and one ContainerLifecyclePolicy"
    );
}

/// A container's type comes from labels its owner sets: in the shipped policy a type may only
/// make limits stricter, never looser, than what a container of no special type gets.
#[test]
fn shipped_container_types_never_loosen_a_limit() {
    let root = repository_root();
    let parsed = parse_sources(&read_sources(&[root.join("specs")]).expect("specs/ is readable"))
        .expect("valid");
    let now = jiff::Timestamp::from_second(1_800_000_000).expect("time");
    let none = std::collections::HashMap::new();
    for spec in parsed {
        let ds01_spec::SpecBody::ContainerLifecyclePolicy(policy) = &spec.resource.spec else {
            continue;
        };
        let subject = |origin| ds01_spec::resolve::Subject {
            user: "alice",
            origin,
        };
        let plain = ds01_spec::resolve::resolve(policy, subject("docker"), &none, now);
        for origin in policy.container_types.keys() {
            let typed = ds01_spec::resolve::resolve(policy, subject(origin), &none, now);
            for (field, base, claimed) in [
                (
                    "idleTimeout",
                    plain.idle_timeout.value,
                    typed.idle_timeout.value,
                ),
                (
                    "maxRuntime",
                    plain.max_runtime.value,
                    typed.max_runtime.value,
                ),
                (
                    "removeAfterStop",
                    plain.remove_after_stop.value,
                    typed.remove_after_stop.value,
                ),
                (
                    "gpuHoldAfterStop",
                    plain.gpu_hold_after_stop.value,
                    typed.gpu_hold_after_stop.value,
                ),
                (
                    "createdTimeout",
                    plain.created_timeout.value,
                    typed.created_timeout.value,
                ),
            ] {
                let looser = match (base, claimed) {
                    (Some(_), None) => true,
                    (Some(base), Some(claimed)) => claimed > base,
                    (None, _) => false,
                };
                assert!(
                    !looser,
                    "containerTypes.{origin}.{field} is looser than the default: any user can claim that type with a label"
                );
            }
        }
    }
}
