use std::sync::Arc;

use super::*;

fn open(directory: &Path) -> Arc<StateFile> {
    let (file, kept) = StateFile::open(directory).expect("open");
    assert_eq!(kept, None);
    Arc::new(file)
}

#[test]
fn forgotten_keys_are_gone_from_the_file_and_the_rest_survive_a_reload() {
    let directory = tempfile::tempdir().expect("tempdir");
    let section = open(directory.path()).section::<String>("section");
    for key in ["lab/a", "lab/b", "lab/c"] {
        section.set(key, &key.to_owned()).expect("set");
    }
    section
        .remove_all(&["lab/a", "lab/c", "lab/never"])
        .expect("remove");
    let reloaded = open(directory.path()).section::<String>("section");
    assert_eq!(reloaded.keys(), ["lab/b"]);
    assert_eq!(reloaded.get("lab/b").as_deref(), Some("lab/b"));
    section.remove("lab/b").expect("remove one");
    assert!(
        open(directory.path())
            .section::<String>("section")
            .keys()
            .is_empty()
    );
}

#[test]
fn many_concurrent_writers_lose_nothing_and_the_file_holds_the_last_value_of_each() {
    let directory = tempfile::tempdir().expect("tempdir");
    let file = open(directory.path());
    let threads: Vec<_> = (0..16)
        .map(|writer| {
            let section = file.section::<u64>("counters");
            std::thread::spawn(move || {
                for round in 0..40_u64 {
                    section
                        .set(&format!("writer-{writer}"), &round)
                        .expect("write");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer thread");
    }
    let reloaded = open(directory.path()).section::<u64>("counters");
    assert_eq!(reloaded.keys().len(), 16);
    for writer in 0..16 {
        assert_eq!(
            reloaded.get(&format!("writer-{writer}")),
            Some(39),
            "writer {writer} rolled back"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(directory.path())
        .expect("list")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != FILE_NAME)
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn an_unreadable_file_is_kept_aside_and_reported_never_overwritten() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join(FILE_NAME);
    std::fs::write(&path, b"{\"dcgmExporter\": {\"lab\": tru").expect("write");
    let (file, kept) = StateFile::open(directory.path()).expect("open");
    let kept = kept.expect("reported as unreadable");
    assert!(kept.reason.contains("JSON"), "{}", kept.reason);
    assert_eq!(
        std::fs::read(&kept.kept_as).expect("kept aside"),
        b"{\"dcgmExporter\": {\"lab\": tru"
    );
    let file = Arc::new(file);
    file.section::<u32>("s").set("k", &1).expect("write");
    assert_eq!(
        std::fs::read(&kept.kept_as).expect("still there"),
        b"{\"dcgmExporter\": {\"lab\": tru"
    );
}

#[test]
fn a_value_of_another_shape_reads_as_absent_and_is_reported_once() {
    let directory = tempfile::tempdir().expect("tempdir");
    let file = open(directory.path());
    file.section::<String>("s")
        .set("k", &"text".to_owned())
        .expect("set");
    let numbers = file.section::<u32>("s");
    assert_eq!(numbers.get("k"), None);
    assert_eq!(numbers.get("k"), None);
    assert_eq!(numbers.get("absent"), None);
    assert_eq!(
        numbers.unreadable_entries(),
        ["s/k"],
        "absent is not unreadable"
    );
    // The entry is still in the file until its owner writes it afresh.
    assert_eq!(
        open(directory.path())
            .section::<String>("s")
            .get("k")
            .as_deref(),
        Some("text")
    );
}

#[test]
fn a_section_of_another_shape_is_kept_aside_and_reported_and_the_rest_is_used() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join(FILE_NAME);
    let original = r#"{"lifecycle": "written by another version", "orphans": {"p": "kept"}}"#;
    std::fs::write(&path, original).expect("write");
    let (file, kept) = StateFile::open(directory.path()).expect("open");
    let kept = kept.expect("reported");
    assert!(kept.reason.contains("lifecycle"), "{}", kept.reason);
    assert_eq!(
        std::fs::read_to_string(&kept.kept_as).expect("the copy"),
        original
    );
    let file = Arc::new(file);
    assert_eq!(
        file.section::<String>("orphans").get("p").as_deref(),
        Some("kept")
    );
    assert!(file.section::<String>("lifecycle").keys().is_empty());
}
