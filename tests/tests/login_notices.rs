//! The login snippet `deploy/profile.d/ds01-notices.sh`, sourced by `sh` as a login would:
//! it runs `ds01ctl notices` only in interactive shells, never holds a login for more than
//! about a second (a controller that accepts and never answers), and never fails it.

use std::{
    os::unix::net::UnixListener,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use ds01_tests::binaries::binary;

fn snippet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository")
        .join("deploy/profile.d/ds01-notices.sh")
}

/// Sources the snippet (`sh -i` when `interactive`), then echoes; (elapsed, exit code, stdout).
fn login(interactive: bool, socket: &Path, extra: &[(&str, &str)]) -> (Duration, i32, String) {
    let ctl_directory = binary("ds01ctl")
        .parent()
        .expect("binary directory")
        .display()
        .to_string();
    let script = format!(". {}; echo logged-in", snippet().display());
    let mut command = Command::new("sh");
    if interactive {
        command.arg("-i");
    }
    command
        .args(["-c", &script])
        .env_clear()
        .env("PATH", format!("{ctl_directory}:/usr/bin:/bin"))
        .env("DS01_SOCKET", socket)
        .envs(extra.iter().copied());
    let started = Instant::now();
    let output = command.output().expect("run sh");
    (
        started.elapsed(),
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Whether a client connected to `listener` (never answered) since the last call.
fn connected(listener: &UnixListener) -> bool {
    listener.set_nonblocking(true).expect("nonblocking");
    let mut any = false;
    while listener.accept().is_ok() {
        any = true;
    }
    any
}

#[test]
fn the_login_snippet_asks_only_in_interactive_shells_and_never_holds_or_fails_a_login() {
    let directory = tempfile::tempdir().expect("tempdir");
    let socket = directory.path().join("hanging.sock");
    // Accepts connections (the kernel's backlog) and never answers.
    let listener = UnixListener::bind(&socket).expect("bind");

    let (elapsed, code, stdout) = login(true, &socket, &[]);
    assert_eq!((code, stdout.as_str()), (0, "logged-in\n"));
    assert!(connected(&listener), "ds01ctl notices was not run");
    assert!(
        elapsed < Duration::from_millis(2500),
        "a hanging controller held the login for {elapsed:?}"
    );

    let (elapsed, code, stdout) = login(false, &socket, &[]);
    assert_eq!((code, stdout.as_str()), (0, "logged-in\n"));
    assert!(!connected(&listener), "ran in a non-interactive shell");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");

    let (_, code, stdout) = login(true, &socket, &[("DS01_NOTICES", "0")]);
    assert_eq!((code, stdout.as_str()), (0, "logged-in\n"));
    assert!(!connected(&listener), "DS01_NOTICES=0 did not skip it");

    // No controller at all: quiet, and the login goes on.
    let (elapsed, code, stdout) = login(true, &directory.path().join("absent.sock"), &[]);
    assert_eq!((code, stdout.as_str()), (0, "logged-in\n"));
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}
