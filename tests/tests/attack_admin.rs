//! An admin's bad day (helper "attack"): a state file that parses as JSON but whose lifecycle
//! section this version cannot read (an edit by hand, a downgrade). `docs/security.md`: an
//! unreadable state file is "kept aside and reported", never silently replaced. The whole
//! section is dropped in silence instead (`Section::get`: "a value this version cannot read
//! counts as absent"): timers, warnings sent and the stop ledger are gone, with no event and
//! `StateFileReadable=True`. This test failed on the build it was written against (kept as a regression test).

use std::time::Duration;

use ds01_tests::{Daemon, DaemonOptions};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_state_section_this_version_cannot_read_is_reported() {
    let directory = tempfile::tempdir().expect("tempdir");
    let state = directory.path().join("state");
    std::fs::create_dir(&state).expect("state dir");
    std::fs::write(
        state.join("controller-state.json"),
        r#"{"lifecycle": "written by another version", "orphans": {"gpu-orphans": [1, 2]}}"#,
    )
    .expect("state file");
    let daemon = Daemon::start_in(
        directory,
        DaemonOptions {
            docker_host: Some(format!("unix://{}/no-docker.sock", state.display())),
            ..DaemonOptions::default()
        },
    );
    daemon.wait_for_socket(WAIT);
    let (code, stdout, stderr) = daemon.ctl(&["status", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let status: Value = serde_json::from_str(&stdout).expect("status JSON");
    let readable = status["controller"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|condition| condition["type"] == "StateFileReadable")
        .cloned()
        .unwrap_or_default();
    let reported = daemon.events().iter().any(|event| {
        event["event_type"]
            .as_str()
            .is_some_and(|kind| kind.starts_with("controller.state"))
    });
    assert!(
        reported || readable["status"] == "False",
        "sections the controller cannot read were dropped in silence: {readable}; events: {:?}",
        daemon.events()
    );
}
