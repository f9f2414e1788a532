//! Bad specs are refused with the file, line, column and field path of every problem.

use ds01_spec::{Diagnostic, Source, parse_sources};

fn errors(text: &str) -> Vec<Diagnostic> {
    let source = Source {
        name: "specs/test.yaml".into(),
        text: text.into(),
    };
    match parse_sources(&[source]) {
        Ok(parsed) => panic!("expected errors, parsed {} resources", parsed.len()),
        Err(diagnostics) => diagnostics.0,
    }
}

fn one_error(text: &str) -> String {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors[0].to_string()
}

const LIFECYCLE_HEAD: &str =
    "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata:\n  name: lab\nspec:\n";

#[test]
fn an_unknown_field_is_named_at_its_key_with_a_suggestion() {
    let text = format!("{LIFECYCLE_HEAD}  defaults:\n    idleTimout: 1h\n");
    assert_eq!(
        one_error(&text),
        "specs/test.yaml:7:5: spec.defaults.idleTimout: unknown field `idleTimout` (did you mean `idleTimeout`?) (document 1, containerlifecyclepolicy/lab)"
    );
}

#[test]
fn a_bad_duration_is_named_at_its_value() {
    let text = format!("{LIFECYCLE_HEAD}  groups:\n    student:\n      idleTimeout: 3x\n");
    let message = one_error(&text);
    assert!(
        message.starts_with(
            "specs/test.yaml:8:20: spec.groups.student.idleTimeout: invalid duration \"3x\""
        ),
        "{message}"
    );
}

#[test]
fn warnings_out_of_order_are_refused() {
    let text = format!("{LIFECYCLE_HEAD}  defaults:\n    warnAt:\n      idle: [95, 80]\n");
    let message = one_error(&text);
    assert!(message.starts_with("specs/test.yaml:8:18: spec.defaults.warnAt.idle[1]: warnings must be in ascending order"), "{message}");
}

#[test]
fn a_string_where_a_number_belongs_is_a_type_error() {
    let text = "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {name: dcgm}\nspec:\n  port: nine\n";
    let message = one_error(text);
    assert!(
        message.starts_with(
            "specs/test.yaml:5:9: spec.port: invalid type: string \"nine\", expected u16"
        ),
        "{message}"
    );
}

#[test]
fn an_unknown_kind_is_refused_at_the_kind() {
    let text = "apiVersion: ds01.io/v1alpha1\nkind: GpuPolicy\nmetadata: {name: x}\n";
    let message = one_error(text);
    assert!(
        message.starts_with("specs/test.yaml:2:7: kind: unknown kind `GpuPolicy`"),
        "{message}"
    );
}

#[test]
fn backoff_initial_above_backoff_max_is_refused() {
    let text = "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {name: dcgm}\nspec:\n  restart:\n    backoffInitial: 10m\n    backoffMax: 5m\n";
    let message = one_error(text);
    assert!(message.starts_with("specs/test.yaml:6:21: spec.restart.backoffInitial: 10m is above restart.backoffMax (5m)"), "{message}");
}

#[test]
fn a_bad_value_in_the_second_document_names_that_document_and_line() {
    let text = "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {name: dcgm}\n---\napiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata: {name: orphans}\nspec:\n  gracePeriod: soon\n";
    let message = one_error(text);
    assert!(
        message.starts_with("specs/test.yaml:9:16: spec.gracePeriod: invalid duration \"soon\""),
        "{message}"
    );
    assert!(
        message.ends_with("(document 2, gpuorphanpolicy/orphans)"),
        "{message}"
    );
}

#[test]
fn every_problem_of_a_document_is_reported_not_just_the_first() {
    let text = format!(
        "{LIFECYCLE_HEAD}  sampleInterval: 1x\n  scope: everything\n  defaults:\n    maxRuntime: forever\n    colour: red\n"
    );
    let errors = errors(&text);
    let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.sampleInterval",
            "spec.scope",
            "spec.defaults.maxRuntime",
            "spec.defaults.colour"
        ],
        "{errors:#?}"
    );
}

#[test]
fn semantic_problems_are_all_reported_together() {
    let text = format!(
        "{LIFECYCLE_HEAD}  defaultGroup: staff\n  groups:\n    a: {{ members: [ann, bob] }}\n    b: {{ members: [bob] }}\n  defaults:\n    idleTimeout: 0s\n"
    );
    let errors = errors(&text);
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{messages:#?}");
    assert!(
        messages
            .iter()
            .any(|m| m
                .contains("spec.groups.b.members[0]: user `bob` is already a member of group `a`")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("spec.defaultGroup: names group `staff`")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("spec.defaults.idleTimeout: must be above zero")),
        "{messages:#?}"
    );
}

#[test]
fn the_same_kind_and_name_twice_in_a_set_is_refused() {
    let doc = "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata: {name: orphans}\n";
    let message = one_error(&format!("{doc}---\n{doc}"));
    assert!(
        message.contains("gpuorphanpolicy/orphans is defined twice"),
        "{message}"
    );
    assert!(
        message.starts_with("specs/test.yaml:7:18: metadata.name"),
        "{message}"
    );
}

#[test]
fn syntax_errors_carry_a_position() {
    let message = one_error("apiVersion: ds01.io/v1alpha1\nkind: [DcgmExporter\n");
    assert!(message.starts_with("specs/test.yaml:3:"), "{message}");
    assert!(message.contains("invalid YAML"), "{message}");
}

#[test]
fn envelope_problems_are_named() {
    let errors = errors("apiVersion: ds01.io/v2\nkind: DcgmExporter\nmetadata: {name: Bad_Name}\n");
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[0].starts_with("specs/test.yaml:1:13: apiVersion: unsupported apiVersion"),
        "{messages:#?}"
    );
    assert!(
        messages[1]
            .starts_with("specs/test.yaml:3:18: metadata.name: \"Bad_Name\" is not a DNS label"),
        "{messages:#?}"
    );
}

#[test]
fn valid_documents_parse_with_defaults_filled_in() {
    let text = "# comment only document\n---\napiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {name: dcgm}\nspec:\n  gpus: none\n---\n";
    let source = Source {
        name: "ok.yaml".into(),
        text: text.into(),
    };
    let parsed = parse_sources(&[source]).expect("valid");
    assert_eq!(parsed.len(), 1);
    let json = parsed[0].resource.to_json();
    assert_eq!(json["spec"]["port"], 9400);
    assert_eq!(json["spec"]["restart"]["backoffMax"], "5m");
    assert_eq!(json["spec"]["gpus"], "none");
}

const DCGM_HEAD: &str =
    "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {name: dcgm}\nspec:\n";

#[test]
fn exporter_networks_logs_and_listen_address_are_checked() {
    let cases = [
        (
            "  networks: [{name: ds01-monitoring}, {name: ds01-monitoring}]\n",
            "spec.networks[1].name: network `ds01-monitoring` is listed twice",
        ),
        (
            "  networks: [{name: \"-bad\"}]\n",
            "spec.networks[0].name: must be a Docker network name",
        ),
        (
            "  networks: [{name: ok, aliases: [\"has space\"]}]\n",
            "spec.networks[0].aliases[0]: must be a host name",
        ),
        ("  logMaxFiles: 0\n", "spec.logMaxFiles: must be at least 1"),
        (
            "  logMaxSize: 100B\n",
            "spec.logMaxSize: must be at least 1KiB",
        ),
        (
            "  env: {DCGM_EXPORTER_LISTEN: \"localhost\"}\n",
            "spec.env.DCGM_EXPORTER_LISTEN: `localhost` is not `[host]:port`",
        ),
        (
            "  networks: [{name: ok, alias: [x]}]\n",
            "spec.networks[0].alias: unknown field `alias`",
        ),
    ];
    for (body, expected) in cases {
        let message = one_error(&format!("{DCGM_HEAD}{body}"));
        assert!(message.contains(expected), "{body}: {message}");
    }
}

#[test]
fn exporter_defaults_follow_the_incumbent_stack() {
    let source = Source {
        name: "specs/dcgm.yaml".into(),
        text: format!(
            "{DCGM_HEAD}  port: 19400\n  networks: [{{name: ds01-monitoring, aliases: [dcgm-exporter]}}]\n  env: {{DCGM_EXPORTER_LISTEN: \":9500\"}}\n"
        ),
    };
    let parsed = parse_sources(&[source]).expect("valid");
    let ds01_spec::SpecBody::DcgmExporter(spec) = &parsed[0].resource.spec else {
        panic!("not a DcgmExporter");
    };
    assert_eq!(
        (
            spec.log_max_size.bytes(),
            spec.log_max_files,
            spec.replace_existing
        ),
        (10 << 20, 5, false)
    );
    assert_eq!(spec.networks[0].aliases, ["dcgm-exporter"]);
    assert_eq!(spec.listen_port(), 9500);
    let env = spec.container_env();
    assert_eq!(
        env.get("DCGM_EXPORTER_COLLECTORS").map(String::as_str),
        Some("/etc/dcgm-exporter/dcp-metrics-included.csv")
    );
    assert_eq!(ds01_spec::DcgmExporterSpec::default().listen_port(), 9400);
}
