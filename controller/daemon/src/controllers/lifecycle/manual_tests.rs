//! Manual stops against a recording engine: the covering policy's grace period or the
//! built-in one, the event with the admin and the reason, the owner's notice kept, the
//! refusals, and the recovery of a stop a killed controller left unrecorded.

use std::{sync::Arc, time::Duration};

use ds01_host::ContainerState;
use ds01_spec::{EventType, Source};
use serde_json::json;

use super::*;
use crate::{
    controllers::{
        engine::fake::{Call, Recording},
        lifecycle::{
            act_tests::{context, events, info},
            plan::{Memory, UnrecordedStop},
        },
    },
    inventory::ContainerRecord,
};

fn add(
    context: &LifecycleContext<Recording>,
    id: &str,
    state: ContainerState,
    label: Option<(&str, &str)>,
) -> Arc<ContainerRecord> {
    let mut info = info(id, state);
    if let Some((key, value)) = label {
        info.labels.insert(key.into(), value.into());
    }
    let record = Arc::new(ContainerRecord {
        info,
        origin: "docker".into(),
        user: "alice".into(),
        owner_source: "label:ds01.user",
        owner_verified: false,
        gpu_uuids: Vec::new(),
        gpus: crate::inventory::gpu_resolve::ResolvedGpus::default(),
        owner_conflict: None,
        detected_at: jiff::Timestamp::from_second(1_800_000_000).expect("time"),
    });
    let writer = context.inventory.writer_for_tests();
    let mut inventory = writer
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    inventory.containers.insert(id.to_owned(), record.clone());
    inventory.docker.connected = true;
    record
}

async fn apply(context: &LifecycleContext<Recording>, yaml: &str) {
    let sources = [Source {
        name: "lab.yaml".into(),
        text: yaml.into(),
    }];
    context
        .store
        .lock()
        .await
        .apply(&sources, jiff::Timestamp::now())
        .expect("apply");
}

const POLICY: &str = "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {name: lab}\nspec:\n  scope: all\n  users:\n    alice: {stopGracePeriod: 7s}\n  notify: {tty: false, containerFile: /alerts/file}\n";

fn request(force: bool) -> Request<'static> {
    Request {
        admin: "root",
        reason: "maintenance",
        force,
    }
}

#[tokio::test]
async fn a_manual_stop_uses_the_covering_policys_grace_and_records_the_admin_and_reason() {
    let directory = tempfile::tempdir().expect("tempdir");
    let context = context(directory.path());
    apply(&context, POLICY).await;
    let record = add(&context, "c1", ContainerState::Running, None);
    let accepted = stop(&context, record, request(false))
        .await
        .expect("accepted");
    assert_eq!(accepted.grace, Duration::from_secs(7).into());
    assert_eq!(
        accepted.grace_source,
        "stopGracePeriod from users.alice in containerlifecyclepolicy/lab"
    );
    // Remembered in the ledger before the stop is issued.
    let remembered: Memory = context.state.get("@manual/c1").expect("ledger");
    assert_eq!(
        remembered.unrecorded_stop.map(|stop| stop.event),
        Some(EventType::ManualStop)
    );
    context.tasks.close();
    context.tasks.wait().await;
    assert_eq!(
        context.engine.calls(),
        [Call::Stop("c1".into(), Duration::from_secs(7))]
    );
    let written = events(&context);
    assert_eq!(written.len(), 1, "{written:?}");
    let (event_type, details) = &written[0];
    assert_eq!(event_type, "lifecycle.manual_stop");
    for (key, value) in [
        ("by", json!("root")),
        ("reason", json!("maintenance")),
        ("grace", json!("7s")),
        ("policy", json!("lab")),
        ("outcome", json!("stopped")),
    ] {
        assert_eq!(details[key], value, "{key}: {details}");
    }
    assert!(details["notice"].is_object(), "{details}");
    assert!(
        context.state.get("@manual/c1").is_none(),
        "the ledger key is gone once recorded"
    );
    let kept = context.notices.list("alice", false);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].event_type, "lifecycle.manual_stop");
    assert!(
        kept[0].message.contains("was stopped")
            && kept[0]
                .message
                .contains("an administrator (root) stopped it: maintenance"),
        "{}",
        kept[0].message
    );
}

#[tokio::test]
async fn without_a_covering_policy_the_grace_is_the_built_in_60_s() {
    let directory = tempfile::tempdir().expect("tempdir");
    let context = context(directory.path());
    // Scope gpu: it does not cover a container without GPU access.
    apply(&context, &POLICY.replace("scope: all", "scope: gpu")).await;
    let record = add(&context, "c1", ContainerState::Running, None);
    let accepted = stop(&context, record, request(false))
        .await
        .expect("accepted");
    assert_eq!(accepted.grace, Duration::from_secs(60).into());
    assert!(accepted.grace_source.contains("built-in default"));
    context.tasks.close();
    context.tasks.wait().await;
    assert_eq!(events(&context)[0].1["policy"], json!(null));
}

#[tokio::test]
async fn stopped_own_protected_and_in_progress_containers_are_refused_and_nothing_happens() {
    let directory = tempfile::tempdir().expect("tempdir");
    let context = context(directory.path());
    let exited = add(&context, "c1", ContainerState::Exited, None);
    // The controller's own container: known by the id it created, not by a label.
    let own = add(&context, "c2", ContainerState::Running, None);
    context
        .inventory
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .own
        .set("dcgmexporter/dcgm", Some("c2"));
    let protected = add(
        &context,
        "c3",
        ContainerState::Running,
        Some(("ds01.protected", "true")),
    );
    assert!(matches!(
        stop(&context, exited, request(true)).await,
        Err(ManualStopError::NotRunning { .. })
    ));
    assert!(matches!(
        stop(&context, own, request(true)).await,
        Err(ManualStopError::Own(_))
    ));
    let refused = stop(&context, protected.clone(), request(false)).await;
    assert!(
        matches!(&refused, Err(ManualStopError::Protected { why, .. }) if why.contains("ds01.protected=true")),
        "{refused:?}"
    );
    assert!(context.engine.calls().is_empty());
    assert!(events(&context).is_empty());
    assert!(
        stop(&context, protected.clone(), request(true))
            .await
            .is_ok()
    );
    assert!(matches!(
        stop(&context, protected, request(true)).await,
        Err(ManualStopError::InProgress(_))
    ));
    context.tasks.close();
    context.tasks.wait().await;
    assert_eq!(context.engine.calls().len(), 1, "one stop, not two");
    assert_eq!(events(&context)[0].1["forced"], true);
}

#[tokio::test]
async fn a_manual_stop_a_killed_controller_left_is_written_when_the_container_stopped_and_dropped_when_not()
 {
    let directory = tempfile::tempdir().expect("tempdir");
    let context = context(directory.path());
    add(&context, "c1", ContainerState::Exited, None);
    add(&context, "c2", ContainerState::Running, None);
    for id in ["c1", "c2", "c3"] {
        let left = Memory {
            unrecorded_stop: Some(UnrecordedStop {
                event: EventType::ManualStop,
                user: "alice".into(),
                details: json!({ "container_id": id, "reason": "maintenance", "issued_at": "2027-01-01T00:00:00.000Z" }),
            }),
            ..Memory::default()
        };
        context
            .state
            .set(&format!("@manual/{id}"), &left)
            .expect("ledger");
    }
    settle_left_over(context.clone(), tokio_util::sync::CancellationToken::new()).await;
    let written = events(&context);
    let ids: Vec<&serde_json::Value> = written
        .iter()
        .map(|(_, details)| &details["container_id"])
        .collect();
    assert_eq!(ids, [&json!("c1"), &json!("c3")], "{written:?}");
    assert!(written.iter().all(
        |(event_type, details)| event_type == "lifecycle.manual_stop"
            && details["recorded_after_restart"] == true
    ));
    assert!(
        context
            .state
            .keys()
            .iter()
            .all(|key| !key.starts_with(KEY_PREFIX)),
        "{:?}",
        context.state.keys()
    );
}
