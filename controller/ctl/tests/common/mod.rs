//! Running `ds01ctl` on the fixtures in `tests/legacy/`, written in the incumbent's formats.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::{path::PathBuf, process::Command};

/// The fixtures: `resource-limits.yaml` with its companions beside it, as the incumbent keeps them.
pub fn legacy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/legacy")
}

/// Runs `ds01ctl` with `arguments`; (exit code, stdout, stderr).
pub fn ds01ctl(arguments: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ds01ctl"))
        .args(arguments)
        .env("NO_COLOR", "1")
        .env_remove("DS01_SOCKET")
        .output()
        .expect("run ds01ctl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `ds01ctl import-legacy` on the fixtures with `extra` flags; exits 0 or panics.
pub fn import(extra: &[&str]) -> (String, String) {
    let limits = legacy().join("resource-limits.yaml");
    let mut arguments = vec!["import-legacy", limits.to_str().expect("utf-8 path")];
    arguments.extend(extra);
    let (code, stdout, stderr) = ds01ctl(&arguments);
    assert_eq!(code, 0, "import-legacy failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}
