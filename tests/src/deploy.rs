//! The repository's deployment scripts for tests: where the repository is, `deploy/install.sh`
//! into a staging directory and `deploy/debian/build-deb`, both with the test build's binaries.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::binaries::binary;

/// The repository's root.
///
/// # Panics
/// Never: the tests crate lives in the repository.
#[must_use]
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_owned()
}

/// The directory of the binaries this test build uses (built when needed).
fn binaries_directory() -> PathBuf {
    let _ = binary("ds01ctl");
    binary("ds01-controller")
        .parent()
        .expect("binary directory")
        .to_owned()
}

/// Runs `program` with `arguments` and `BINDIR` set; its stdout.
fn run_script(program: &Path, arguments: &[&Path], environment: &[(&str, &Path)]) -> String {
    let output = Command::new("bash")
        .arg(program)
        .args(arguments)
        .env("BINDIR", binaries_directory())
        .envs(environment.iter().map(|(key, value)| (key, value)))
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} failed:\n{stdout}\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `DESTDIR=destination deploy/install.sh`; what it said.
///
/// # Panics
/// When install.sh fails.
pub fn install(destination: &Path) -> String {
    run_script(
        &repository().join("deploy/install.sh"),
        &[],
        &[("DESTDIR", destination)],
    )
}

/// `deploy/debian/build-deb output`; the package's path.
///
/// # Panics
/// When build-deb fails.
#[must_use]
pub fn build_deb(output: &Path) -> PathBuf {
    let said = run_script(
        &repository().join("deploy/debian/build-deb"),
        &[output],
        &[],
    );
    PathBuf::from(said.trim())
}
