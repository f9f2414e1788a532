//! `ds01ctl validate` and `ds01ctl schema` as a user runs them: real binary, real files,
//! exit codes per the contract.

use std::{path::Path, process::Command};

fn ds01ctl(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ds01ctl"))
        .args(args)
        .env("NO_COLOR", "1")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("run ds01ctl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn validate_text(text: &str) -> (i32, String) {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("spec.yaml");
    std::fs::write(&path, text).expect("write spec");
    let (code, _, stderr) = ds01ctl(&["validate", "-f", path.to_str().expect("utf-8 path")]);
    (code, stderr)
}

const DCGM: &str =
    "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata:\n  name: dcgm\nspec:\n";
const LIFECYCLE: &str =
    "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata:\n  name: lab\nspec:\n";

#[test]
fn the_shipped_specs_and_examples_are_valid() {
    let (code, stdout, stderr) = ds01ctl(&["validate", "-f", "specs/", "examples/"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("dcgmexporter/dcgm-exporter valid"),
        "{stdout}"
    );
    assert!(
        stdout.contains("containerlifecyclepolicy/lab-policy valid"),
        "{stdout}"
    );
}

#[test]
fn each_kind_of_bad_spec_exits_1_naming_the_field_and_its_line_and_column() {
    let cases = [
        (
            format!("{LIFECYCLE}  defaults:\n    idleTimeout: 1h\n    colour: red\n"),
            ":8:5: spec.defaults.colour: unknown field `colour`",
        ),
        (
            format!("{LIFECYCLE}  defaults:\n    idleTimeout: 3x\n"),
            ":7:18: spec.defaults.idleTimeout: invalid duration \"3x\"",
        ),
        (
            format!("{LIFECYCLE}  defaults:\n    warnAt:\n      idle: [95, 80]\n"),
            ":8:18: spec.defaults.warnAt.idle[1]: warnings must be in ascending order",
        ),
        (
            format!("{DCGM}  port: nine-four\n"),
            ":6:9: spec.port: invalid type: string \"nine-four\"",
        ),
        (
            "apiVersion: ds01.io/v1alpha1\nkind: GpuJanitor\nmetadata: {name: x}\n".to_owned(),
            ":2:7: kind: unknown kind `GpuJanitor`",
        ),
        (
            format!("{DCGM}  restart:\n    backoffInitial: 10m\n    backoffMax: 1m\n"),
            ":7:21: spec.restart.backoffInitial: 10m is above restart.backoffMax (1m)",
        ),
        (
            format!("{DCGM}  port: 9400\n---\n{LIFECYCLE}  sampleInterval: often\n"),
            ":13:19: spec.sampleInterval: invalid duration \"often\"",
        ),
    ];
    for (text, expected) in cases {
        let (code, stderr) = validate_text(&text);
        assert_eq!(code, 1, "{text}\n{stderr}");
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in:\n{stderr}"
        );
    }
}

#[test]
fn the_second_document_is_named_in_the_error() {
    let (code, stderr) = validate_text(&format!(
        "{DCGM}  port: 9400\n---\n{LIFECYCLE}  sampleInterval: often\n"
    ));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("(document 2, containerlifecyclepolicy/lab)"),
        "{stderr}"
    );
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ds01ctl"))
        .args(["validate", "-f", "-"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, format!("{DCGM}  gpus: maybe\n").as_bytes())
            .expect("write");
    }
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("<stdin>:6:9: spec.gpus: invalid gpus \"maybe\""),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_is_a_user_error_and_bad_flags_are_usage_errors() {
    let (code, _, stderr) = ds01ctl(&["validate", "-f", "no/such/file.yaml"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot read no/such/file.yaml"), "{stderr}");
    let (code, _, _) = ds01ctl(&["validate", "--no-such-flag"]);
    assert_eq!(code, 64);
    let (code, _, _) = ds01ctl(&["frobnicate"]);
    assert_eq!(code, 64);
    let (code, stdout, _) = ds01ctl(&["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("validate"), "{stdout}");
}

#[test]
fn schema_prints_every_kind_and_matches_the_checked_in_editor_schema() {
    let (code, stdout, _) = ds01ctl(&["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&stdout).expect("schema is JSON");
    let kinds = schema["properties"]["kind"]["enum"]
        .as_array()
        .expect("kind enum")
        .clone();
    assert_eq!(
        kinds,
        [
            "DcgmExporter",
            "GpuOrphanPolicy",
            "ContainerLifecyclePolicy"
        ]
    );
    let definitions = schema["$defs"].as_object().expect("$defs");
    for name in [
        "DcgmExporterSpec",
        "GpuOrphanPolicySpec",
        "ContainerLifecyclePolicySpec",
        "Duration",
    ] {
        assert!(definitions.contains_key(name), "schema lacks {name}");
    }
    let checked_in = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/ds01.schema.json"),
    )
    .expect("checked-in schema");
    assert_eq!(
        stdout, checked_in,
        "schemas/ds01.schema.json is out of date"
    );

    let (code, stdout, _) = ds01ctl(&["schema", "gpuorphanpolicy"]);
    assert_eq!(code, 0);
    let one: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(one["properties"]["kind"]["const"], "GpuOrphanPolicy");
    let (code, _, _) = ds01ctl(&["schema", "Nonsense"]);
    assert_eq!(code, 1);
}
