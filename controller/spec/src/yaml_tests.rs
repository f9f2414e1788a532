//! Tests of the YAML reader: core-schema scalars, positions, documents, limits.

use super::*;

fn single(text: &str) -> YamlDocument {
    let mut stream = parse_stream(text);
    assert!(stream.syntax_error.is_none(), "{:?}", stream.syntax_error);
    assert_eq!(stream.documents.len(), 1);
    stream.documents.remove(0)
}

#[test]
fn plain_scalars_follow_the_yaml_1_2_core_schema() {
    let doc = single("a: 1\nb: 0.25\nc: true\nd: ~\ne: yes\nf: '1'\ng: 30s\nh:\ni: -3\nj: 1e3\n");
    assert_eq!(
        doc.value,
        serde_json::json!({"a": 1, "b": 0.25, "c": true, "d": null, "e": "yes", "f": "1",
                           "g": "30s", "h": null, "i": -3, "j": 1000.0})
    );
}

#[test]
fn every_field_path_has_its_key_and_value_position() {
    let doc = single(
        "spec:\n  groups:\n    student:\n      idleTimeout: 3x\n  list:\n    - a\n    - b: 1\n",
    );
    assert_eq!(
        doc.locations.key("spec.groups.student.idleTimeout"),
        Some(Position { line: 4, column: 7 })
    );
    assert_eq!(
        doc.locations.value("spec.groups.student.idleTimeout"),
        Some(Position {
            line: 4,
            column: 20
        })
    );
    assert_eq!(
        doc.locations.value("spec.list[1].b"),
        Some(Position {
            line: 7,
            column: 10
        })
    );
    // Unknown paths fall back to their nearest known ancestor.
    assert_eq!(
        doc.locations.value("spec.list[1].zzz"),
        Some(Position { line: 7, column: 7 })
    );
}

#[test]
fn several_documents_are_read_separately_with_their_start_lines() {
    let stream = parse_stream("a: 1\n---\nb: 2\n---\nc: 3\n");
    assert_eq!(stream.documents.len(), 3);
    assert_eq!(stream.documents[2].value, serde_json::json!({"c": 3}));
    assert_eq!(
        stream.documents[2].locations.key("c").map(|p| p.line),
        Some(5)
    );
}

#[test]
fn duplicate_keys_are_problems_not_silent_overwrites() {
    let doc = single("a: 1\na: 2\n");
    assert_eq!(doc.value, serde_json::json!({"a": 1}));
    assert_eq!(doc.problems.len(), 1);
    assert_eq!(doc.problems[0].position, Position { line: 2, column: 1 });
}

#[test]
fn a_syntax_error_keeps_earlier_documents_and_says_where() {
    let stream = parse_stream("a: 1\n---\nb: [1, 2\n");
    assert_eq!(stream.documents.len(), 1);
    let error = stream.syntax_error.expect("syntax error");
    assert!(error.position.line >= 3, "{error:?}");
}

#[test]
fn anchors_and_aliases_are_expanded() {
    let doc = single("base: &b {x: 1}\ncopy: *b\n");
    assert_eq!(doc.value["copy"], serde_json::json!({"x": 1}));
}

/// The 700-byte "billion laughs": ten levels of ten aliases each would be 10^10 nodes.
fn alias_bomb() -> String {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    text
}

#[test]
fn an_alias_bomb_stops_at_the_node_limit_fast_and_says_so() {
    let text = alias_bomb();
    assert!(text.len() < 800, "{}", text.len());
    let started = std::time::Instant::now();
    let stream = parse_stream(&text);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let error = stream.syntax_error.expect("refused");
    assert!(
        error.message.contains(&MAX_NODES.to_string()) && error.message.contains("limit"),
        "{error:?}"
    );
}

#[test]
fn aliased_long_strings_count_their_bytes() {
    let long = "y".repeat(100_000);
    let copies = ["*s"; 60].join(", ");
    let text = format!("s: &s {long}\nl: [{copies}]\n");
    let error = parse_stream(&text).syntax_error.expect("refused");
    assert!(error.message.contains("bytes of text"), "{error:?}");
    // The same text without the copies is fine.
    assert!(
        parse_stream(&format!("s: &s {long}\n"))
            .syntax_error
            .is_none()
    );
}

#[test]
fn one_budget_spans_the_files_of_a_set() {
    let items = vec!["1"; 60_000].join(", ");
    let text = format!("a: [{items}]\n");
    let mut budget = Budget::default();
    assert!(
        parse_stream_within(&text, &mut budget)
            .syntax_error
            .is_none()
    );
    assert!(
        parse_stream_within(&text, &mut budget)
            .syntax_error
            .is_some()
    );
    assert!(parse_stream(&text).syntax_error.is_none());
}

#[test]
fn absurd_nesting_is_refused_without_crashing() {
    let text = "[".repeat(200) + &"]".repeat(200);
    let stream = parse_stream(&text);
    assert!(stream.syntax_error.is_some());
}
