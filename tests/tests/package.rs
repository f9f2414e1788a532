//! The Debian package (`deploy/debian/build-deb`): the same files as `deploy/install.sh`, every
//! file under /etc a conffile, control data and a layout lintian accepts (`lintian -EvIL
//! +pedantic`, when lintian is installed), man pages dated by the changelog, and maintainer
//! scripts that never enable or start the service.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use ds01_tests::deploy::{build_deb, install, repository};

fn available(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

fn run(program: &str, arguments: &[&str]) -> String {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every path under `root`, relative, directories included.
fn paths(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_owned()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.insert(path.strip_prefix(root).expect("prefix").to_owned());
        }
    }
    found
}

/// The field `name` of a control file.
fn field<'a>(control: &'a str, name: &str) -> &'a str {
    control
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in\n{control}"))
}

#[test]
fn the_package_ships_what_install_sh_installs_and_lintian_accepts_it() {
    for tool in ["dpkg-deb", "dpkg-shlibdeps", "strip"] {
        if !available(tool) {
            eprintln!(
                "SKIPPED: {tool} is not installed (packages dpkg, dpkg-dev, binutils); the package was not built"
            );
            return;
        }
    }
    let output = tempfile::tempdir().expect("tempdir");
    let package = build_deb(output.path());
    let package_text = package.display().to_string();

    let unpacked = tempfile::tempdir().expect("tempdir");
    run(
        "dpkg-deb",
        &["-x", &package_text, &unpacked.path().display().to_string()],
    );
    let staged = tempfile::tempdir().expect("tempdir");
    install(staged.path());
    let mut expected = paths(staged.path());
    // Created by postinst through tmpfiles.d instead, so that existing ones stay as they are.
    for directory in ["var/lib/ds01", "var/log/ds01", "var/lib", "var/log", "var"] {
        assert!(expected.remove(Path::new(directory)), "{directory}");
    }
    let shipped = paths(unpacked.path());
    assert!(
        shipped == expected,
        "only in the package: {:?}\nonly from install.sh: {:?}",
        shipped.difference(&expected).collect::<Vec<_>>(),
        expected.difference(&shipped).collect::<Vec<_>>()
    );

    let control = run("dpkg-deb", &["-f", &package_text]);
    assert_eq!(field(&control, "Version"), env!("CARGO_PKG_VERSION"));
    let maintainer = field(&control, "Maintainer");
    assert!(
        maintainer.contains(" <") && maintainer.ends_with('>') && maintainer.contains('@'),
        "{maintainer}"
    );
    let synopsis = field(&control, "Description");
    assert!(
        !["a ", "an ", "the "]
            .iter()
            .any(|article| synopsis.to_lowercase().starts_with(article)),
        "{synopsis}"
    );
    assert!(field(&control, "Depends").contains("libc6"), "{control}");

    let control_directory = tempfile::tempdir().expect("tempdir");
    run(
        "dpkg-deb",
        &[
            "-e",
            &package_text,
            &control_directory.path().display().to_string(),
        ],
    );
    let conffiles: BTreeSet<PathBuf> =
        std::fs::read_to_string(control_directory.path().join("conffiles"))
            .expect("conffiles")
            .lines()
            .map(|line| PathBuf::from(line.trim_start_matches('/')))
            .collect();
    let under_etc: BTreeSet<PathBuf> = shipped
        .iter()
        .filter(|path| path.starts_with("etc") && unpacked.path().join(path).is_file())
        .cloned()
        .collect();
    assert_eq!(conffiles, under_etc, "every file under /etc is a conffile");
    // The maintainer scripts are the repository's (checked below), nothing generated.
    for script in ["postinst", "prerm", "postrm"] {
        assert_eq!(
            std::fs::read(control_directory.path().join(script)).expect("packaged script"),
            std::fs::read(repository().join("deploy/debian").join(script)).expect("script"),
            "{script}"
        );
    }

    if !available("lintian") {
        eprintln!("SKIPPED: lintian is not installed; the package was not linted");
        return;
    }
    // Info tags are allowed (docs/operations.md lists the two there are and why).
    let output = Command::new("lintian")
        .args([
            "-EvIL",
            "+pedantic",
            "--fail-on",
            "error,warning,pedantic",
            &package_text,
        ])
        .output()
        .expect("lintian");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "lintian:\n{said}");
    assert!(
        !said.lines().any(|line| ["E: ", "W: ", "P: "]
            .iter()
            .any(|tag| line.starts_with(tag))),
        "lintian:\n{said}"
    );
}

#[test]
fn man_pages_are_dated_by_the_newest_changelog_entry() {
    let changelog =
        std::fs::read_to_string(repository().join("deploy/debian/changelog")).expect("changelog");
    let trailer = changelog
        .lines()
        .find_map(|line| line.strip_prefix(" -- "))
        .expect("a trailer line");
    let (_, date) = trailer
        .split_once(">  ")
        .expect("maintainer, two spaces, date");
    let date = jiff::fmt::rfc2822::parse(date)
        .expect("an RFC 2822 date")
        .strftime("%Y-%m-%d")
        .to_string();
    assert!(
        changelog.starts_with(&format!("ds01-controller ({}) ", env!("CARGO_PKG_VERSION"))),
        "the newest changelog entry is not this version"
    );
    let staged = tempfile::tempdir().expect("tempdir");
    install(staged.path());
    for (page, title) in [
        ("usr/share/man/man1/ds01ctl.1.gz", "ds01ctl 1"),
        (
            "usr/share/man/man8/ds01-controller.8.gz",
            "ds01-controller 8",
        ),
    ] {
        let text = run("zcat", &[&staged.path().join(page).display().to_string()]);
        let expected = format!(".TH {title} {date} ");
        assert!(
            text.lines().any(|line| line.starts_with(&expected)),
            "{page} has no {expected:?}"
        );
    }
}

#[test]
fn maintainer_scripts_never_enable_or_start_the_service() {
    for script in ["postinst", "prerm", "postrm"] {
        let text = std::fs::read_to_string(repository().join("deploy/debian").join(script))
            .expect("script");
        for line in text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
        {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert!(
                !words
                    .iter()
                    .any(|word| ["enable", "start", "restart", "--now"].contains(word)),
                "{script}: {line}"
            );
        }
    }
}
