//! Paths of the project's artifacts for end-to-end tests (`ds01ctl`, `ds01-controller`, the fake
//! NVML library). They are built with cargo once per test process, so a test never runs a stale
//! binary left by an earlier build.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

static BUILT: OnceLock<()> = OnceLock::new();

fn profile_dir() -> PathBuf {
    // target/<profile>/deps/<test-binary> or target/<profile>/<bench-binary> → target/<profile>
    let directory = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    match directory {
        Some(directory) if directory.ends_with("deps") => directory
            .parent()
            .map_or(directory.clone(), Path::to_path_buf),
        Some(directory) => directory,
        None => PathBuf::from("target/debug"),
    }
}

fn build_once() {
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = std::process::Command::new(cargo);
        command.args([
            "build",
            "--quiet",
            "-p",
            "ds01-controller",
            "-p",
            "ds01ctl",
            "-p",
            "ds01-fake-nvml",
        ]);
        if profile_dir().ends_with("release") {
            command.arg("--release");
        }
        let status = command
            .status()
            .unwrap_or_else(|error| panic!("cannot run cargo to build the binaries: {error}"));
        assert!(
            status.success(),
            "building the binaries for the end-to-end tests failed"
        );
    });
}

/// The path of a workspace binary, built if needed.
///
/// # Panics
/// When it cannot be built.
#[must_use]
pub fn binary(name: &str) -> PathBuf {
    build_once();
    profile_dir().join(name)
}

/// The fake `libnvidia-ml.so.1` (built as `libds01_fake_nvml.so`).
///
/// # Panics
/// When it cannot be built.
#[must_use]
pub fn fake_nvml_library() -> PathBuf {
    build_once();
    profile_dir().join("libds01_fake_nvml.so")
}
