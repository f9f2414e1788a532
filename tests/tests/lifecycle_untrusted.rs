//! The lifecycle controller against users who control paths: a bind-mount source swapped for a
//! symlink after the container started, and a keep-alive file reached through an absolute
//! symlink inside the container. Root must never write or read through either.

use std::time::Duration;

use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};

const WAIT: Duration = Duration::from_secs(30);

fn policy(directory: &std::path::Path, user: &str, limits: &str, file: &str) -> String {
    let path = directory.join("lifecycle.yaml");
    let text = format!(
        "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: lab}}\nspec:\n  sampleInterval: 1s\n  scope: all\n  defaults: {{idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {user}: {{startupGrace: 0s, stopGracePeriod: 1s, {limits}}}\n  notify: {{tty: false, containerFile: {file}}}\n"
    );
    std::fs::write(&path, text).expect("policy");
    path.display().to_string()
}

fn started_with(path: &str) -> Daemon {
    let daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", path]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    daemon
}

fn world_writable(path: &std::path::Path) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
}

#[tokio::test]
async fn a_bind_mount_source_swapped_for_a_symlink_never_redirects_a_warning() {
    let scope = TestScope::new("untrusted-swap").await;
    let user = format!("swap{}", std::process::id());
    let home = tempfile::tempdir().expect("home");
    let target = tempfile::tempdir().expect("target");
    world_writable(home.path());
    let d = home.path().join("d");
    std::fs::create_dir(&d).expect("mkdir");
    std::fs::write(d.join("nologin"), b"").expect("the user's file");
    let daemon = started_with(&policy(
        home.path(),
        &user,
        "idleTimeout: 6s, onIdle: stop, warnAt: {idle: [50]}",
        "/alerts/notes",
    ));
    let mut request = ContainerRequest::sleeper("swapped").label("ds01.user", &user);
    request
        .binds
        .push(format!("{}:/alerts/notes", d.join("nologin").display()));
    let id = scope.container(request).await;
    // The user swaps the directory holding the mount source for a symlink to a root-only place.
    std::fs::rename(&d, home.path().join("d.old")).expect("move the directory away");
    std::os::unix::fs::symlink(target.path(), &d).expect("symlink");
    let warning = daemon.wait_for_event(WAIT, "the idle warning", |event| {
        event["event_type"] == "lifecycle.idle_warning"
            && event["details"]["container_id"] == id[..12]
            && event["details"]["delivered"].is_object()
    });
    assert!(
        !target.path().join("nologin").exists(),
        "root wrote through the swapped symlink"
    );
    assert_eq!(
        std::fs::read_dir(target.path()).expect("list").count(),
        0,
        "something was created at the symlink's target"
    );
    // The warning still reached the file the container sees.
    let seen = std::fs::read_to_string(home.path().join("d.old/nologin")).expect("read");
    assert!(seen.contains("[ds01] WARNING"), "{seen}");
    assert_eq!(
        warning["details"]["delivered"]["alert_file"], "appended",
        "{warning}"
    );
}

#[tokio::test]
async fn a_keep_alive_file_behind_an_absolute_symlink_inside_the_container_is_not_followed() {
    let scope = TestScope::new("untrusted-keepalive").await;
    let user = format!("keep{}", std::process::id());
    let host = tempfile::tempdir().expect("host dir");
    // A fresh file on the host, named like the keep-alive file.
    std::fs::write(host.path().join(".keep-alive"), b"").expect("host file");
    let daemon = started_with(&policy(
        host.path(),
        &user,
        "idleTimeout: 3s, onIdle: stop",
        "/alerts/notes",
    ));
    // Inside the container, /workspace is an absolute symlink to the host directory's path:
    // resolved from the host's root it would reach the host's fresh file.
    let id = scope
        .container(
            ContainerRequest::sleeper("linked")
                .label("ds01.user", &user)
                .shell(&format!(
                    "ln -s {} /workspace && exec sleep 300",
                    host.path().display()
                )),
        )
        .await;
    let stop = daemon.wait_for_event(WAIT, "the idle stop", |event| {
        event["event_type"] == "lifecycle.idle_stop" && event["details"]["container_id"] == id[..12]
    });
    assert_eq!(
        stop["details"]["signals"]["keep_alive"], false,
        "a keep-alive file outside the container held off the stop: {stop}"
    );
}
