//! The shipped monitoring files: every alert in `deploy/prometheus/alerts.yml` has a rule test
//! in `deploy/prometheus/tests/`, `promtool check rules` and `promtool test rules` pass (when
//! promtool is installed: Debian package prometheus), and the Grafana dashboard selects a
//! server with `$instance` in every query and has a crash-loop panel.

use std::process::Command;

use ds01_tests::deploy::repository;

fn alert_names() -> Vec<String> {
    std::fs::read_to_string(repository().join("deploy/prometheus/alerts.yml"))
        .expect("alerts.yml")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .map(|name| name.trim().to_owned())
        .collect()
}

fn rule_test_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repository().join("deploy/prometheus/tests"))
        .expect("deploy/prometheus/tests")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_alert_has_a_rule_test_and_promtool_passes_them() {
    let alerts = alert_names();
    assert!(alerts.len() >= 8, "{alerts:?}");
    let tests: String = rule_test_files()
        .iter()
        .map(|path| std::fs::read_to_string(path).expect("rule test"))
        .collect();
    for alert in &alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}\n"))
                && tests.contains(&format!(
                    "alertname: {alert}\n        exp_alerts:\n          - "
                )),
            "{alert} has no rule test that expects it to fire"
        );
    }

    let check = |arguments: &[String]| -> Option<String> {
        let output = match Command::new("promtool").args(arguments).output() {
            Ok(output) => output,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => panic!("promtool: {error}"),
        };
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "promtool {arguments:?}:\n{said}");
        Some(said)
    };
    let rules = repository().join("deploy/prometheus/alerts.yml");
    if check(&["check".into(), "rules".into(), rules.display().to_string()]).is_none() {
        eprintln!(
            "SKIPPED: promtool is not installed (Debian package prometheus); rules were not checked or tested"
        );
        return;
    }
    let mut arguments = vec!["test".to_owned(), "rules".to_owned()];
    arguments.extend(
        rule_test_files()
            .iter()
            .map(|path| path.display().to_string()),
    );
    check(&arguments);
}

#[test]
fn the_dashboard_selects_a_server_and_shows_crash_loops() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repository().join("deploy/grafana/ds01-controller.json"))
            .expect("dashboard"),
    )
    .expect("JSON");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    assert!(
        variables
            .iter()
            .any(|variable| variable["name"] == "instance"
                && variable["type"] == "query"
                && variable["definition"]
                    .as_str()
                    .is_some_and(|query| query.contains("ds01_build_info"))),
        "no $instance variable"
    );
    let expressions: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .filter_map(|target| target["expr"].as_str())
        .collect();
    assert!(expressions.len() > 15, "{expressions:?}");
    for expression in &expressions {
        // Series selectors: every ds01_ family and Prometheus' own `up`.
        let up = expression
            .match_indices("up{")
            .filter(|(at, _)| !expression[..*at].ends_with('_'))
            .count();
        let selectors = expression.matches("ds01_").count() + up;
        assert_eq!(
            expression.matches("instance=~\"$instance\"").count(),
            selectors,
            "a series without the $instance filter: {expression}"
        );
    }
    assert!(
        expressions
            .iter()
            .any(|expression| expression.contains("ds01_dcgm_exporter_crashloops_total")),
        "no crash-loop panel"
    );
}
