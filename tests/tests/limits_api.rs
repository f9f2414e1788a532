//! `ds01ctl limits` against a real controller started with the specs `ds01ctl import-legacy`
//! made from fixtures in the incumbent's formats: the controller's answer (`GET /v1/limits`)
//! equals the offline answer (`-f`) for every user and container type, any local user may ask,
//! and a wrong policy name is the user's error.

use std::{path::PathBuf, process::Command, time::Duration};

use ds01_tests::{Daemon, DaemonOptions, binaries::binary};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);
const AT: &str = "2030-06-30T12:00:00Z";

fn legacy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../controller/ctl/tests/legacy")
}

/// The imported specs in a directory of their own, as `--specs` takes them.
fn imported_specs(directory: &std::path::Path) -> PathBuf {
    let output = Command::new(binary("ds01ctl"))
        .arg("import-legacy")
        .arg(legacy().join("resource-limits.yaml"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run ds01ctl import-legacy");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let specs = directory.join("specs");
    std::fs::create_dir_all(&specs).expect("specs dir");
    std::fs::write(specs.join("imported.yaml"), &output.stdout).expect("write specs");
    specs
}

fn json(code: i32, stdout: &str, stderr: &str) -> Value {
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(stdout).expect("json")
}

#[test]
fn the_controller_and_the_offline_command_give_the_same_limits() {
    let directory = tempfile::tempdir().expect("tempdir");
    let specs = imported_specs(directory.path());
    let daemon = Daemon::start(DaemonOptions {
        extra: vec!["--specs".into(), specs.display().to_string()],
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    let specs = specs.display().to_string();
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    for (user, container_type) in [
        ("stud1@example.lan", "orchestration"),
        ("newbie@example.lan", "atomic"),
        ("r.search@example.lan", "orchestration"),
        ("pat.override@example.lan", "orchestration"),
        ("pat.override@example.lan", "docker"),
        ("o.nolimit@example.lan", "compose"),
        ("prof.inline@example.lan", "devcontainer"),
        ("root.admin@example.lan", "api"),
    ] {
        let arguments = [
            "limits",
            "--user",
            user,
            "--type",
            container_type,
            "--at",
            AT,
            "-o",
            "json",
        ];
        let (code, stdout, stderr) = daemon.ctl(&arguments);
        let online = json(code, &stdout, &stderr);
        let mut offline_arguments = arguments.to_vec();
        offline_arguments.extend(["-f", &specs]);
        let (code, stdout, stderr) = daemon.ctl(&offline_arguments);
        let offline = json(code, &stdout, &stderr);
        assert_eq!(online, offline, "{user} ({container_type})");
        assert_eq!(online["user"], user);
        // Any local user may ask, and gets the same answer.
        let (code, stdout, stderr) = daemon.ctl_as(&nobody, &arguments);
        assert_eq!(json(code, &stdout, &stderr), online, "{user} as nobody");
    }
    // The values are the imported ones: pat.override's override replaces his group.
    let (code, stdout, stderr) = daemon.ctl(&[
        "limits",
        "--user",
        "pat.override@example.lan",
        "--at",
        AT,
        "-o",
        "json",
    ]);
    let view = json(code, &stdout, &stderr);
    assert_eq!(view["containerType"], "orchestration");
    assert_eq!(view["limits"]["idleTimeout"]["value"], "30m");
    assert_eq!(
        view["limits"]["maxRuntime"]["source"],
        "users.pat.override@example.lan"
    );
    let (code, _, stderr) = daemon.ctl(&["limits", "--user", "x", "--policy", "no-such-policy"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("imported-lifecycle"), "{stderr}");
}
