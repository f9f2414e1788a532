//! `ds01ctl import-legacy` on a sample written from the incumbent's documented format.

use std::{path::Path, process::Command};

#[test]
fn the_incumbents_configuration_converts_to_a_valid_policy_and_names_what_it_drops() {
    let legacy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/legacy");
    let output = Command::new(env!("CARGO_BIN_EXE_ds01ctl"))
        .arg("import-legacy")
        .arg(legacy.join("resource-limits.yaml"))
        .arg("--exemptions")
        .arg(legacy.join("lifecycle-exemptions.yaml"))
        .arg("--user-overrides")
        .arg(legacy.join("user-overrides.yaml"))
        .arg("--groups-dir")
        .arg(legacy.join("groups"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let parsed = ds01_spec::parse_sources(&[ds01_spec::Source {
        name: "imported".into(),
        text: stdout.to_string(),
    }])
    .expect("valid policy");
    let ds01_spec::SpecBody::ContainerLifecyclePolicy(spec) = &parsed[0].resource.spec else {
        panic!("not a lifecycle policy")
    };
    let hours = |h| Some(Some(ds01_spec::Duration::from_hours(h)));
    assert_eq!(
        spec.defaults.idle_timeout,
        Some(Some(ds01_spec::Duration::from_mins(30)))
    );
    assert_eq!(spec.defaults.max_runtime, hours(24));
    assert_eq!(
        spec.defaults.remove_after_stop,
        Some(Some(ds01_spec::Duration::from_mins(30)))
    );
    assert_eq!(
        spec.defaults.stop_grace_period,
        Some(ds01_spec::Duration::from_secs(60))
    );
    assert_eq!(
        spec.defaults.created_timeout,
        Some(Some(ds01_spec::Duration::from_mins(30)))
    );
    assert_eq!(spec.default_group.as_deref(), Some("student"));
    assert_eq!(spec.groups["researcher"].max_runtime, hours(48));
    assert_eq!(
        spec.groups["researcher"]
            .idle
            .as_ref()
            .and_then(|idle| idle.cpu_below)
            .map(|p| p.value()),
        Some(3.0)
    );
    assert!(
        spec.groups["student"]
            .members_file
            .as_deref()
            .is_some_and(|file| file.ends_with("student.members"))
    );
    assert_eq!(
        spec.container_types["devcontainer"].idle_timeout,
        Some(None),
        "null stays no limit"
    );
    assert_eq!(
        spec.container_types["compose"].stop_grace_period,
        Some(ds01_spec::Duration::from_secs(45))
    );
    assert_eq!(spec.users["carol@example.lan"].max_runtime, Some(None));
    assert_eq!(spec.high_demand.threshold.value(), 80.0);
    assert_eq!(spec.exemptions.len(), 2);
    assert_eq!(
        spec.exemptions[0].exempt_from,
        [ds01_spec::ExemptFrom::Idle, ds01_spec::ExemptFrom::Runtime]
    );
    assert!(spec.exemptions[0].expires.is_some() && spec.exemptions[1].expires.is_none());
    for dropped in [
        "defaults.max_gpu_equivalents",
        "groups.student.aggregate",
        "policies.idle_detection_window",
        "enforcement",
        "monitoring",
        "exemptions[0].approved_by",
    ] {
        assert!(
            stderr.contains(&format!("not carried over: {dropped}")),
            "`{dropped}` not listed:\n{stderr}"
        );
    }
}
