//! The deployment files: `deploy/install.sh` is idempotent under `DESTDIR`, keeps an admin's
//! edits and existing state/log directories as they are (so does tmpfiles.d); the unit passes
//! `systemd-analyze verify` and rates at most 3.5 in `systemd-analyze security`.

use std::{
    collections::BTreeMap,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};

use ds01_tests::{
    binaries::binary,
    deploy::{install, repository},
};

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
        "usr/share/doc/ds01-controller/copyright",
        "usr/share/doc/ds01-controller/changelog.gz",
        "usr/share/man/man1/ds01ctl.1.gz",
        "usr/share/man/man8/ds01-controller.8.gz",
        "usr/share/bash-completion/completions/ds01ctl",
        "usr/share/zsh/vendor-completions/_ds01ctl",
        "usr/share/fish/vendor_completions.d/ds01ctl.fish",
    ] {
        assert!(
            first.contains_key(Path::new(expected)),
            "{expected} not installed"
        );
    }
    assert_eq!(first[Path::new("var/lib/ds01")].0 & 0o7777, 0o750);
    // setgid: the event log and its rotations get the directory's group (ds01-admin).
    assert_eq!(first[Path::new("var/log/ds01")].0 & 0o7777, 0o2750);
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

fn owner_and_mode(path: &Path) -> (u32, u32, u32) {
    let metadata = std::fs::metadata(path).expect("metadata");
    (
        metadata.uid(),
        metadata.gid(),
        metadata.permissions().mode() & 0o7777,
    )
}

/// `var/lib/ds01` and `var/log/ds01` under `root` as the incumbent's tools may have left them:
/// mode 0775 and (when this test runs as root) owned by 1234:4321.
fn incumbent_directories(root: &Path) -> Vec<(PathBuf, (u32, u32, u32))> {
    ["var/lib/ds01", "var/log/ds01"]
        .iter()
        .map(|directory| {
            let path = root.join(directory);
            std::fs::create_dir_all(&path).expect("mkdir");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o775)).expect("chmod");
            // /proc/self belongs to this process's effective uid.
            let root = std::fs::metadata("/proc/self").is_ok_and(|proc| proc.uid() == 0);
            if root {
                std::os::unix::fs::chown(&path, Some(1234), Some(4321)).expect("chown");
            }
            let state = owner_and_mode(&path);
            (path, state)
        })
        .collect()
}

#[test]
fn install_keeps_existing_state_and_log_directories_as_they_are() {
    let destination = tempfile::tempdir().expect("tempdir");
    let before = incumbent_directories(destination.path());
    install(destination.path());
    install(destination.path());
    for (path, state) in before {
        assert_eq!(
            owner_and_mode(&path),
            state,
            "{} changed owner or mode",
            path.display()
        );
    }
}

#[test]
fn tmpfiles_creates_missing_directories_and_keeps_existing_ones() {
    let root = tempfile::tempdir().expect("tempdir");
    let before = incumbent_directories(root.path());
    std::fs::remove_dir(root.path().join("var/log/ds01")).expect("rmdir");
    let before = &before[..1];
    // The root's own user and group files, with the ds01-admin group sysusers.d would add.
    std::fs::create_dir_all(root.path().join("etc")).expect("etc");
    std::fs::copy("/etc/passwd", root.path().join("etc/passwd")).expect("passwd");
    std::fs::write(
        root.path().join("etc/group"),
        "root:x:0:\nds01-admin:x:990:\n",
    )
    .expect("group");
    let output = Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.path().display()))
        .arg("--create")
        .arg(repository().join("deploy/tmpfiles/ds01.conf"))
        .output()
        .expect("systemd-tmpfiles (package systemd) must be installed; .ci/run installs it");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (path, state) = &before[0];
    assert_eq!(
        &owner_and_mode(path),
        state,
        "tmpfiles changed an existing directory"
    );
    let (_, log_group, log_mode) = owner_and_mode(&root.path().join("var/log/ds01"));
    assert_eq!((log_group, log_mode), (990, 0o2750), "a new log directory");
}

#[test]
fn systemd_analyze_security_rates_the_unit_at_most_3_5() {
    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(repository().join("deploy/systemd/ds01-controller.service"))
        .output()
        .expect("systemd-analyze (package systemd) must be installed; .ci/run installs it");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if said.contains("--offline") && !output.status.success() {
        eprintln!("SKIPPED: this systemd-analyze has no --offline (systemd < 250): {said}");
        return;
    }
    let score: f64 = said
        .lines()
        .find_map(|line| line.split("ds01-controller.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{said}"));
    assert!(score <= 3.5, "exposure {score} above 3.5:\n{said}");
    eprintln!("systemd-analyze security: {score}");
}

#[test]
fn logrotate_keeps_the_event_log_attributes_in_a_group_writable_directory() {
    if Command::new("logrotate").arg("--version").output().is_err() {
        eprintln!("SKIPPED: logrotate is not installed; the rotation config was not run");
        return;
    }
    // As the incumbent's tools may have left it: a group-writable directory and log.
    let directory = tempfile::tempdir().expect("tempdir");
    let log_directory = directory.path().join("log");
    std::fs::create_dir(&log_directory).expect("mkdir");
    std::fs::set_permissions(&log_directory, std::fs::Permissions::from_mode(0o2775))
        .expect("chmod");
    let log = log_directory.join("events.jsonl");
    std::fs::write(&log, "{}\n").expect("write");
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o664)).expect("chmod");
    let config = std::fs::read_to_string(repository().join("deploy/logrotate/ds01-controller"))
        .expect("logrotate config")
        .replace("/var/log/ds01", &log_directory.display().to_string())
        .replace("systemctl reload ds01-controller.service", "true");
    let config_path = directory.path().join("ds01-controller");
    std::fs::write(&config_path, config).expect("write config");
    let output = Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(directory.path().join("state"))
        .arg(&config_path)
        .output()
        .expect("logrotate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(log_directory.join("events.jsonl.1").exists(), "not rotated");
    let before = owner_and_mode(&log_directory.join("events.jsonl.1"));
    assert_eq!(
        owner_and_mode(&log),
        before,
        "the new log lost the old one's attributes"
    );
}
