//! `ds01ctl import-legacy` on fixtures written in the incumbent's formats (`tests/legacy/`:
//! member files, inline members, inline and file overrides, a sanitised name, the default
//! group, a date-only and a datetime exemption, a null limit), then `ds01ctl limits` for each
//! user against values derived by hand from the incumbent's rules
//! (`get_resource_limits.py` and its enforcement scripts; see docs/migration.md).

mod common;

use common::{ds01ctl, import, legacy};
use serde_json::Value;

/// Before the date-only exemption ends, and after both dated exemptions ended.
const BEFORE: &str = "2030-06-30T12:00:00Z";
const AFTER: &str = "2030-07-01T06:00:00Z";

fn imported() -> (tempfile::TempDir, String) {
    let (stdout, _) = import(&[]);
    let directory = tempfile::tempdir().expect("tempdir");
    let file = directory.path().join("imported.yaml");
    std::fs::write(&file, stdout).expect("write");
    let path = file.display().to_string();
    (directory, path)
}

fn limits(file: &str, user: &str, container_type: &str, at: &str) -> Value {
    let (code, stdout, stderr) = ds01ctl(&[
        "limits",
        "-f",
        file,
        "--user",
        user,
        "--type",
        container_type,
        "--at",
        at,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("json")
}

/// (value, source) of one limit, values as text (`none` for no limit).
fn pick(view: &Value, field: &str) -> (String, String) {
    let limit = &view["limits"][field];
    let value = match &limit["value"] {
        Value::Null => "none".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    (
        value,
        limit["source"].as_str().unwrap_or_default().to_owned(),
    )
}

struct Case {
    user: &'static str,
    container_type: &'static str,
    at: &'static str,
    group: Option<&'static str>,
    /// (field, value, source)
    expect: &'static [(&'static str, &'static str, &'static str)],
}

#[test]
fn every_user_keeps_the_limits_the_incumbent_gave_them() {
    let (_directory, file) = imported();
    let cases = [
        // stud1 is in groups/student.members: defaults (0.5 h idle, 24 h runtime, 0.25 h GPU
        // hold, 0.5 h container hold) + student (sets no lifecycle key) → the defaults. For the
        // lab tools' own containers (orchestration) the GPU goes back at stop ("binary state").
        Case {
            user: "stud1@example.lan",
            container_type: "orchestration",
            at: BEFORE,
            group: Some("student"),
            expect: &[
                ("idleTimeout", "30m", "defaults"),
                ("maxRuntime", "1d", "defaults"),
                ("gpuHoldAfterStop", "0s", "containerTypes.orchestration"),
                ("removeAfterStop", "30m", "defaults"),
                ("onIdle", "stopAndRemove", "defaults"),
                ("cpuBelow", "2", "groups.student"),
            ],
        },
        // Listed nowhere: default_group student.
        Case {
            user: "newbie@example.lan",
            container_type: "atomic",
            at: BEFORE,
            group: Some("student"),
            expect: &[
                ("idleTimeout", "30m", "defaults"),
                ("gpuHoldAfterStop", "15m", "defaults"),
            ],
        },
        // r.search matches `r_search` in researcher.members by its sanitised name: researcher's
        // 1 h idle, 48 h runtime, CPU threshold 3. Its idle exemption expires_on "2030-06-30"
        // (date only) holds through the end of that day, UTC (the import's stated choice; the
        // incumbent's check crashes on a date without time and does not exempt).
        Case {
            user: "r.search@example.lan",
            container_type: "orchestration",
            at: BEFORE,
            group: Some("researcher"),
            expect: &[
                (
                    "idleTimeout",
                    "none",
                    "exemption (long data loading (category waiver, approved by labadmin on 2026-03-01))",
                ),
                ("maxRuntime", "2d", "groups.researcher"),
                ("cpuBelow", "3", "groups.researcher"),
            ],
        },
        Case {
            user: "r.search@example.lan",
            container_type: "orchestration",
            at: AFTER,
            group: Some("researcher"),
            expect: &[("idleTimeout", "1h", "groups.researcher")],
        },
        // pat.override is a researcher with an override of max_runtime_h: 96 only: the
        // incumbent gives defaults + override (idle 0.5 h, not the group's 1 h); the idle
        // thresholds still come from the group (its override has no `policies`).
        Case {
            user: "pat.override@example.lan",
            container_type: "orchestration",
            at: BEFORE,
            group: None,
            expect: &[
                ("idleTimeout", "30m", "defaults"),
                ("maxRuntime", "4d", "users.pat.override@example.lan"),
                ("cpuBelow", "3", "users.pat.override@example.lan"),
            ],
        },
        // A `docker run` container of the same user gets container_types.docker whoever owns it.
        Case {
            user: "pat.override@example.lan",
            container_type: "docker",
            at: BEFORE,
            group: None,
            expect: &[
                ("idleTimeout", "30m", "containerTypes.docker"),
                ("maxRuntime", "2d", "containerTypes.docker"),
                ("stopGracePeriod", "1m", "containerTypes.docker"),
            ],
        },
        // o.nolimit's override is keyed by the sanitised name `o_nolimit`: idle and container hold
        // null (no limit), the rest from the defaults.
        Case {
            user: "o.nolimit@example.lan",
            container_type: "orchestration",
            at: BEFORE,
            group: None,
            expect: &[
                ("idleTimeout", "none", "users.o_nolimit"),
                ("removeAfterStop", "none", "users.o_nolimit"),
                ("maxRuntime", "1d", "defaults"),
            ],
        },
        // An inline user_overrides entry with only a GPU quota still replaces the group: defaults.
        Case {
            user: "quota.only@example.lan",
            container_type: "orchestration",
            at: BEFORE,
            group: None,
            expect: &[
                ("idleTimeout", "30m", "defaults"),
                ("maxRuntime", "1d", "defaults"),
            ],
        },
        // prof.inline is an inline member of faculty (2 h, 72 h), exempt from both until
        // 2030-06-30T23:59:59Z.
        Case {
            user: "prof.inline@example.lan",
            container_type: "orchestration",
            at: BEFORE,
            group: Some("faculty"),
            expect: &[
                (
                    "idleTimeout",
                    "none",
                    "exemption (PhD thesis training (category research_grant, approved by labadmin on 2026-02-14))",
                ),
                (
                    "maxRuntime",
                    "none",
                    "exemption (PhD thesis training (category research_grant, approved by labadmin on 2026-02-14))",
                ),
            ],
        },
        Case {
            user: "prof.inline@example.lan",
            container_type: "orchestration",
            at: AFTER,
            group: Some("faculty"),
            expect: &[
                ("idleTimeout", "2h", "groups.faculty"),
                ("maxRuntime", "3d", "groups.faculty"),
            ],
        },
        // admin: max_runtime_h: null is no limit; its 1 h GPU hold applies to atomic containers.
        Case {
            user: "root.admin@example.lan",
            container_type: "atomic",
            at: BEFORE,
            group: Some("admin"),
            expect: &[
                ("maxRuntime", "none", "groups.admin"),
                ("idleTimeout", "1h", "groups.admin"),
                ("gpuHoldAfterStop", "1h", "groups.admin"),
            ],
        },
        // rita: researcher with a permanent (expires_on: null) runtime exemption.
        Case {
            user: "rita@example.lan",
            container_type: "orchestration",
            at: AFTER,
            group: Some("researcher"),
            expect: &[
                ("maxRuntime", "none", "exemption (writing up)"),
                ("idleTimeout", "1h", "groups.researcher"),
            ],
        },
        // Devcontainers are never idle-stopped; api containers give their GPU back at stop.
        Case {
            user: "stud1@example.lan",
            container_type: "devcontainer",
            at: BEFORE,
            group: Some("student"),
            expect: &[
                ("idleTimeout", "none", "containerTypes.devcontainer"),
                ("maxRuntime", "7d", "containerTypes.devcontainer"),
            ],
        },
        Case {
            user: "stud1@example.lan",
            container_type: "api",
            at: BEFORE,
            group: Some("student"),
            expect: &[
                ("gpuHoldAfterStop", "0s", "containerTypes.api"),
                ("stopGracePeriod", "30s", "containerTypes.api"),
            ],
        },
    ];
    for case in &cases {
        let view = limits(&file, case.user, case.container_type, case.at);
        let context = format!("{} ({}, {})", case.user, case.container_type, case.at);
        assert_eq!(view["user"], case.user, "{context}");
        assert_eq!(view["containerType"], case.container_type, "{context}");
        assert_eq!(view["group"].as_str(), case.group, "{context}");
        for (field, value, source) in case.expect {
            assert_eq!(
                pick(&view, field),
                ((*value).to_owned(), (*source).to_owned()),
                "{context}: {field}"
            );
        }
    }
}

#[test]
fn limits_defaults_to_the_lab_tools_container_type_and_lists_every_field() {
    let (_directory, file) = imported();
    let (code, stdout, stderr) = ds01ctl(&[
        "limits",
        "-f",
        &file,
        "--user",
        "stud1@example.lan",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let view: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(view["containerType"], "orchestration");
    let fields: Vec<&str> = view["limits"]
        .as_object()
        .expect("limits")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "idleTimeout",
            "maxRuntime",
            "stopGracePeriod",
            "onIdle",
            "removeAfterStop",
            "gpuHoldAfterStop",
            "createdTimeout",
            "startupGrace",
            "gpuUtilBelow",
            "cpuBelow",
            "networkBelow",
            "warnAtIdle",
            "warnAtRuntime",
        ]
    );
    // The table names every field with its source.
    let (code, table, _) = ds01ctl(&["limits", "-f", &file, "--user", "stud1@example.lan"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("idleTimeout       30m            defaults"),
        "{table}"
    );
}

#[test]
fn the_import_validates_and_importing_again_gives_the_same_bytes() {
    let compose = legacy().join("monitoring/docker-compose.yaml");
    let compose = compose.to_str().expect("utf-8");
    let (first, first_notices) = import(&["--compose", compose]);
    let (second, second_notices) = import(&["--compose", compose]);
    assert_eq!(first, second, "same input, same output");
    assert_eq!(first_notices, second_notices);
    let directory = tempfile::tempdir().expect("tempdir");
    let file = directory.path().join("imported.yaml");
    std::fs::write(&file, &first).expect("write");
    let (code, stdout, stderr) = ds01ctl(&["validate", "-f", file.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for resource in [
        "containerlifecyclepolicy/imported-lifecycle",
        "gpuorphanpolicy/imported-gpu-orphans",
        "dcgmexporter/dcgm-exporter",
    ] {
        assert!(stdout.contains(resource), "{resource} missing:\n{stdout}");
    }
}

#[test]
fn several_policies_need_a_name_and_a_missing_one_is_an_error() {
    let (directory, file) = imported();
    let second = directory.path().join("second.yaml");
    std::fs::write(
        &second,
        "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: { name: other }\nspec: {}\n",
    )
    .expect("write");
    let dir = directory.path().to_str().expect("utf-8");
    let (code, _, stderr) = ds01ctl(&["limits", "-f", dir, "--user", "x"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("imported-lifecycle")
            && stderr.contains("other")
            && stderr.contains("--policy"),
        "{stderr}"
    );
    let (code, stdout, _) = ds01ctl(&[
        "limits", "-f", dir, "--user", "x", "--policy", "other", "-o", "json",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("\"built-in default\""), "{stdout}");
    let (code, _, stderr) = ds01ctl(&["limits", "-f", &file, "--user", "x", "--policy", "nope"]);
    assert_eq!(code, 1, "{stderr}");
}
