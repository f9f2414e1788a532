//! The deployment files: `deploy/install.sh` is idempotent under `DESTDIR` and keeps an admin's
//! edits, and `systemd-analyze verify` accepts the unit.

use std::{
    collections::BTreeMap,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};

use ds01_tests::binaries::binary;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_owned()
}

fn install(destination: &Path) -> String {
    let bin_directory = binary("ds01-controller")
        .parent()
        .expect("binary directory")
        .to_owned();
    // The debug binaries are built by the harness; install.sh builds release ones only when
    // none are given.
    let _ = binary("ds01ctl");
    let output = Command::new("bash")
        .arg(repository().join("deploy/install.sh"))
        .env("DESTDIR", destination)
        .env("BINDIR", bin_directory)
        .output()
        .expect("run install.sh");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "install.sh failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Every path under `root` with its mode, size, modification time and content.
fn tree(root: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, i64, Vec<u8>)> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("read_dir") {
            let path = entry.expect("entry").path();
            let metadata = std::fs::symlink_metadata(&path).expect("metadata");
            let content = if metadata.is_file() {
                std::fs::read(&path).expect("read")
            } else {
                pending.push(path.clone());
                Vec::new()
            };
            entries.insert(
                path.strip_prefix(root).expect("prefix").to_owned(),
                (
                    metadata.permissions().mode(),
                    metadata.len(),
                    metadata.mtime(),
                    metadata.mtime_nsec(),
                    content,
                ),
            );
        }
    }
    entries
}

#[test]
fn install_twice_gives_the_same_tree_and_keeps_admin_edits() {
    let destination = tempfile::tempdir().expect("tempdir");
    install(destination.path());
    let first = tree(destination.path());
    for expected in [
        "usr/bin/ds01-controller",
        "usr/bin/ds01ctl",
        "usr/lib/systemd/system/ds01-controller.service",
        "usr/lib/tmpfiles.d/ds01.conf",
        "usr/lib/sysusers.d/ds01.conf",
        "etc/logrotate.d/ds01-controller",
        "etc/profile.d/ds01-notices.sh",
        "etc/ds01/specs/dcgm-exporter.yaml",
        "var/lib/ds01",
        "var/log/ds01",
        "usr/share/ds01-controller/prometheus/alerts.yml",
        "usr/share/ds01-controller/grafana/ds01-controller.json",
        "usr/share/doc/ds01-controller/operations.md",
    ] {
        assert!(
            first.contains_key(Path::new(expected)),
            "{expected} not installed"
        );
    }
    assert_eq!(first[Path::new("var/lib/ds01")].0 & 0o777, 0o750);
    assert_eq!(first[Path::new("usr/bin/ds01-controller")].0 & 0o777, 0o755);

    install(destination.path());
    let second = tree(destination.path());
    assert!(first == second, "a second install changed the tree");

    // An admin's edit survives; the shipped version lands next to it.
    let spec = destination.path().join("etc/ds01/specs/dcgm-exporter.yaml");
    let edited = format!(
        "{}# tuned by the admin\n",
        std::fs::read_to_string(&spec).expect("read spec")
    );
    std::fs::write(&spec, &edited).expect("edit spec");
    let said = install(destination.path());
    assert_eq!(std::fs::read_to_string(&spec).expect("read"), edited);
    assert!(
        said.contains("kept your /etc/ds01/specs/dcgm-exporter.yaml"),
        "{said}"
    );
    assert!(
        destination
            .path()
            .join("etc/ds01/specs/dcgm-exporter.yaml.dist")
            .exists()
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let unit = std::fs::read_to_string(repository().join("deploy/systemd/ds01-controller.service"))
        .expect("read the unit");
    // verify checks that ExecStart exists: point it at the built binary.
    let unit = unit.replace(
        "/usr/bin/ds01-controller",
        &binary("ds01-controller").display().to_string(),
    );
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("ds01-controller.service");
    std::fs::write(&path, unit).expect("write unit");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (package systemd) must be installed; .ci/run installs it");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    assert!(
        !said.contains("ds01-controller.service"),
        "warnings about the unit: {said}"
    );
}
