//! Attacks through files inside a user's container (helper "attack"). The alert file is
//! "regular files only" (docs/security.md), but the daemon opens it for writing first and
//! checks its type afterwards, on the open descriptor. Opening is itself an action for FIFOs
//! and devices: a root container may `mknod` (CAP_MKNOD is in Docker's default set) a node
//! for any host device — `/dev/watchdog` arms the watchdog when opened, a tape rewinds, a
//! serial line raises DTR — and the root daemon outside the container's device cgroup opens
//! the host's device. A FIFO stands in for a device here because its opening is observable
//! from inside the container. This test failed on the build it was written against (kept as a regression test).

use ds01_tests::{
    ContainerRequest, TestScope,
    lifecycle_fixtures::{WAIT, alerts_dir, apply, policy, started, with_alerts},
};

/// The alert file is a FIFO with a reader waiting in the container; when the daemon opens
/// it, the reader gets end-of-file and leaves a proof file. The warning must be skipped
/// (not a regular file) without the daemon ever opening the FIFO.
#[tokio::test]
async fn an_alert_file_that_is_not_a_regular_file_is_never_opened() {
    let scope = TestScope::new("attack-fifo").await;
    let user = format!("fifo{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    apply(
        &daemon,
        &policy(
            alerts.path(),
            &user,
            "idleTimeout: 6s, onIdle: stop, warnAt: {idle: [50]}",
            "",
        ),
    );
    let id = scope
        .container(with_alerts(
            ContainerRequest::sleeper("fifo")
                .label("ds01.user", &user)
                .shell(
                    "mkfifo /alerts/ds01-alerts && cat /alerts/ds01-alerts; echo opened > /alerts/proof; exec sleep 300",
                ),
            &alerts,
        ))
        .await;
    let warning = daemon.wait_for_event(WAIT, "the idle warning", |event| {
        event["event_type"] == "lifecycle.idle_warning"
            && event["details"]["container_id"] == id[..12]
            && event["details"]["delivered"].is_object()
    });
    // Give the reader in the container time to notice an open.
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        warning["details"]["delivered"]["alert_file"]
            .as_str()
            .is_some_and(|text| text.starts_with("not written")),
        "{warning}"
    );
    assert!(
        !alerts.path().join("proof").exists(),
        "root opened the FIFO in the container (a device node would have been opened the same way): {warning}"
    );
}
