//! Paths of the project's binaries (`ds01ctl`, `ds01-controller`) for end-to-end tests,
//! built on demand when the test run did not build them.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The path of a workspace binary, building it with cargo if it is missing.
///
/// # Panics
/// When the binary cannot be built.
#[must_use]
pub fn binary(name: &str) -> PathBuf {
    // target/<profile>/deps/<test-binary> → target/<profile>/<name>
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/debug"));
    let path = profile_dir.join(name);
    let _guard = BUILD_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let package = if name == "ds01ctl" { "ds01ctl" } else { name };
        let mut command = std::process::Command::new(cargo);
        command.args(["build", "--quiet", "-p", package, "--bin", name]);
        if profile_dir.ends_with("release") {
            command.arg("--release");
        }
        let status = command
            .status()
            .unwrap_or_else(|error| panic!("cannot run cargo to build {name}: {error}"));
        assert!(status.success(), "building {name} failed");
    }
    path
}
