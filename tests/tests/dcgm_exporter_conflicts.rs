//! The DcgmExporter controller when Docker refuses it or a container it did not create holds its
//! name, and when the MIG layout changes.

use std::time::{Duration, Instant};

use ds01_tests::{
    Daemon, DaemonOptions, TestScope,
    dcgm_fixtures::{
        GPU0, HTTPD, WAIT, container_id, exporter, nvml, ready, status, wait_for_condition,
        wait_running_other_than,
    },
};
use serde_json::Value;

#[tokio::test]
async fn a_refused_create_shows_dockers_own_error_in_the_condition_and_once_in_the_log() {
    let scope = TestScope::new("dcgm-refused").await;
    ds01_tests::ensure_no_command_image(&scope.docker).await;
    let setup = exporter(&scope, "", HTTPD);
    let spec = std::fs::read_to_string(&setup.spec_path)
        .expect("spec")
        .replace(
            "image: ds01/testbox:latest",
            &format!("image: {}", ds01_tests::NO_COMMAND_IMAGE),
        )
        .lines()
        .filter(|line| !line.starts_with("  command:"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&setup.spec_path, format!("{spec}\n")).expect("spec");
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let failed = daemon.wait_for_event(WAIT, "dcgm.failed", |event| {
        event["event_type"] == "dcgm.failed"
    });
    assert!(
        failed["details"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("No command specified")),
        "{failed}"
    );
    // While it backs off, the condition still says what Docker said.
    let started = Instant::now();
    loop {
        let ready = status(&daemon)["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready").cloned())
            .unwrap_or(Value::Null);
        if ready["reason"] == "BackOff" {
            assert!(
                ready["message"]
                    .as_str()
                    .is_some_and(|message| message.contains("No command specified")),
                "{ready}"
            );
            break;
        }
        assert!(started.elapsed() < WAIT, "never backed off: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Attempts go on with the backoff; the same error is not written again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let failures = daemon
        .events()
        .iter()
        .filter(|event| event["event_type"] == "dcgm.failed")
        .count();
    assert_eq!(
        failures, 1,
        "the same Docker error written {failures} times"
    );
    assert!(container_id(&scope, &setup.container).await.is_none());
}

#[tokio::test]
async fn a_container_the_controller_did_not_create_is_a_conflict_until_replace_existing() {
    let scope = TestScope::new("dcgm-conflict").await;
    let setup = exporter(&scope, "", HTTPD);
    // Someone else's container under the exporter's name, wearing the controller's label.
    let squatter = scope
        .docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(&setup.container)
                    .build(),
            ),
            bollard::models::ContainerCreateBody {
                image: Some(ds01_tests::TESTBOX_IMAGE.to_owned()),
                cmd: Some(vec!["sleep".into(), "3600".into()]),
                labels: Some(std::collections::HashMap::from([
                    ("ds01.test".to_owned(), scope.id.clone()),
                    ("ds01.managed_by".to_owned(), "ds01-controller".to_owned()),
                ])),
                ..bollard::models::ContainerCreateBody::default()
            },
        )
        .await
        .expect("create the squatter")
        .id;
    scope
        .docker
        .start_container(&squatter, None)
        .await
        .expect("start the squatter");
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let conflict = wait_for_condition(&daemon, "Ready", "NameConflict");
    let message = conflict["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "docker stop -t 2 {name} && docker rm {name}",
            name = setup.container
        )) && message.contains("replaceExisting"),
        "{conflict}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        container_id(&scope, &setup.container).await,
        Some((squatter.clone(), true)),
        "the squatter was touched without replaceExisting"
    );

    let spec = std::fs::read_to_string(&setup.spec_path).expect("spec");
    std::fs::write(&setup.spec_path, format!("{spec}  replaceExisting: true\n")).expect("spec");
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let replaced = daemon.wait_for_event(WAIT, "dcgm.replaced", |event| {
        event["event_type"] == "dcgm.replaced"
    });
    assert_eq!(
        replaced["details"]["replaced_id"],
        squatter[..12],
        "{replaced}"
    );
    let (ours, _) = wait_running_other_than(&scope, &setup.container, Some(&squatter)).await;
    assert!(
        replaced["details"]["container_id"]
            .as_str()
            .is_some_and(|id| ours.starts_with(id)),
        "{replaced}"
    );
    ready(&daemon);
}

#[tokio::test]
async fn a_mig_layout_change_restarts_the_exporter() {
    let mig = |devices: &[&str]| {
        let mut state = format!(
            "gpus:\n  - uuid: {GPU0}\n    name: A100\n    migMode: true\n    migDevices:\n"
        );
        for (index, uuid) in devices.iter().enumerate() {
            state.push_str(&format!("      - {{uuid: {uuid}, gpuInstanceId: {}, computeInstanceId: 0, memoryTotalMiB: 9856}}\n", index + 1));
        }
        state
    };
    let scope = TestScope::new("dcgm-mig").await;
    let setup = exporter(&scope, "", HTTPD);
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(mig(&["MIG-aaaa"])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    ready(&daemon);
    daemon.set_nvml_state(&mig(&["MIG-aaaa", "MIG-bbbb"]));
    let restarted = daemon.wait_for_event(WAIT, "a restart for the MIG layout", |event| {
        event["event_type"] == "dcgm.restarted"
            && event["details"]["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("MIG layout"))
    });
    assert_eq!(restarted["details"]["container"], setup.container);
    ready(&daemon);
}

#[tokio::test]
async fn a_deleted_spec_leaves_its_exporter_and_applying_it_again_takes_the_same_one_back() {
    let scope = TestScope::new("dcgm-delete").await;
    let setup = exporter(&scope, "", HTTPD);
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(nvml(&[GPU0])),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    ready(&daemon);
    let (created, true) = container_id(&scope, &setup.container)
        .await
        .expect("the exporter")
    else {
        panic!("the exporter does not run");
    };
    let (code, _, stderr) = daemon.ctl(&["delete", "dcgmexporter", "dcgm"]);
    assert_eq!(code, 0, "{stderr}");
    daemon.wait_for_event(WAIT, "spec.deleted", |event| {
        event["event_type"] == "spec.deleted"
    });
    // Deleting undoes nothing: the container keeps running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        container_id(&scope, &setup.container).await,
        Some((created.clone(), true))
    );
    // Applied again, it is the controller's own, not a name conflict, and not recreated.
    assert_eq!(daemon.ctl(&["apply", "-f", &setup.spec_path]).0, 0);
    let status = ready(&daemon);
    assert!(!status.to_string().contains("NameConflict"), "{status}");
    assert_eq!(
        container_id(&scope, &setup.container).await,
        Some((created, true)),
        "the exporter was recreated"
    );
    assert!(
        !daemon
            .events()
            .iter()
            .any(|event| event["event_type"] == "dcgm.replaced"),
        "the controller replaced its own exporter"
    );
}
