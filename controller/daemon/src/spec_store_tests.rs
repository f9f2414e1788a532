//! The spec store: outcomes, generations, all-or-nothing, crash recovery.

use super::*;

fn source(text: &str) -> Source {
    Source {
        name: "submitted.yaml".into(),
        text: text.into(),
    }
}

const ORPHANS: &str = "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata: {name: orphans}\nspec: {gracePeriod: 60s}\n";
const DCGM: &str = "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {name: dcgm}\nspec: {gpus: none}\n";

fn now() -> jiff::Timestamp {
    "2026-11-22T00:00:00Z".parse().expect("timestamp")
}

#[test]
fn apply_creates_then_leaves_unchanged_then_configures_with_a_new_generation() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut store = SpecStore::open(directory.path()).expect("open");
    let first = store
        .apply(&[source(&format!("{ORPHANS}---\n{DCGM}"))], now())
        .expect("apply");
    assert_eq!(
        first,
        [
            ("gpuorphanpolicy/orphans".to_owned(), ApplyOutcome::Created),
            ("dcgmexporter/dcgm".to_owned(), ApplyOutcome::Created)
        ]
    );
    let again = store.apply(&[source(ORPHANS)], now()).expect("apply");
    assert_eq!(
        again,
        [(
            "gpuorphanpolicy/orphans".to_owned(),
            ApplyOutcome::Unchanged
        )]
    );
    // Writing a default out explicitly is the same content.
    let explicit = store
        .apply(
            &[source(&ORPHANS.replace(
                "{gracePeriod: 60s}",
                "{gracePeriod: 1m, mode: enforce}",
            ))],
            now(),
        )
        .expect("apply");
    assert_eq!(explicit[0].1, ApplyOutcome::Unchanged);
    assert_eq!(
        store
            .get(Kind::GpuOrphanPolicy, "orphans")
            .map(|s| s.generation),
        Some(1)
    );
    let edited = store
        .apply(&[source(&ORPHANS.replace("60s", "2m"))], now())
        .expect("apply");
    assert_eq!(edited[0].1, ApplyOutcome::Configured);
    assert_eq!(
        store
            .get(Kind::GpuOrphanPolicy, "orphans")
            .map(|s| s.generation),
        Some(2)
    );

    // Everything survives a restart.
    let reopened = SpecStore::open(directory.path()).expect("reopen");
    assert_eq!(
        reopened
            .get(Kind::GpuOrphanPolicy, "orphans")
            .map(|s| s.generation),
        Some(2)
    );
    assert_eq!(reopened.all().count(), 2);
}

#[test]
fn an_invalid_set_changes_nothing() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut store = SpecStore::open(directory.path()).expect("open");
    store.apply(&[source(ORPHANS)], now()).expect("apply");
    let bad = format!(
        "{}---\n{DCGM}---\napiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {{name: broken}}\nspec: {{port: x}}\n",
        ORPHANS.replace("60s", "5m")
    );
    let error = store.apply(&[source(&bad)], now()).expect_err("invalid");
    let SpecStoreError::Invalid(diagnostics) = error else {
        panic!("expected invalid")
    };
    assert_eq!(diagnostics.0.len(), 1);
    assert_eq!(diagnostics.0[0].document, 3);
    assert_eq!(
        store
            .get(Kind::GpuOrphanPolicy, "orphans")
            .map(|s| s.generation),
        Some(1)
    );
    assert!(store.get(Kind::DcgmExporter, "dcgm").is_none());
    let files = std::fs::read_dir(directory.path().join("specs"))
        .expect("list")
        .count();
    assert_eq!(files, 1);
}

#[test]
fn an_apply_interrupted_after_its_journal_is_finished_at_the_next_start() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut store = SpecStore::open(directory.path()).expect("open");
    store
        .apply(&[source(&format!("{ORPHANS}---\n{DCGM}"))], now())
        .expect("apply");
    // Simulate a crash after the journal of a second apply was written but before any rename.
    let journal_path = directory.path().join("specs/.pending.json");
    let stored =
        std::fs::read_to_string(directory.path().join("specs/gpuorphanpolicy-orphans.json"))
            .expect("read");
    let mut form: serde_json::Value = serde_json::from_str(&stored).expect("json");
    form["generation"] = 2.into();
    form["document"]["spec"]["gracePeriod"] = "5m".into();
    std::fs::write(
        &journal_path,
        serde_json::json!({ "gpuorphanpolicy-orphans.json": form }).to_string(),
    )
    .expect("journal");
    let reopened = SpecStore::open(directory.path()).expect("reopen");
    let orphans = reopened
        .get(Kind::GpuOrphanPolicy, "orphans")
        .expect("present");
    assert_eq!(orphans.generation, 2);
    assert_eq!(orphans.written["spec"]["gracePeriod"], "5m");
    assert!(!journal_path.exists());
}

#[test]
fn delete_removes_the_file_and_reports_absence() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut store = SpecStore::open(directory.path()).expect("open");
    store.apply(&[source(DCGM)], now()).expect("apply");
    assert!(store.delete(Kind::DcgmExporter, "dcgm").expect("delete"));
    assert!(!store.delete(Kind::DcgmExporter, "dcgm").expect("delete"));
    assert_eq!(
        SpecStore::open(directory.path())
            .expect("reopen")
            .all()
            .count(),
        0
    );
}
