//! The Docker source across engine outages, with a private daemon the test stops and starts:
//! unreachable at start-up is reported, not fatal; transitions that happen while the controller
//! is disconnected are all reflected after it reconnects; nothing is reported twice.

use std::{collections::HashMap, time::Duration};

use ds01_tests::{
    ContainerRequest, Daemon, DaemonOptions, TestScope, private_engine::PrivateEngine,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn has(inventory: &Value, id: &str, status: &str) -> bool {
    inventory["containers"]
        .get(&id[..12])
        .is_some_and(|record| record["status"] == status)
}

#[tokio::test]
async fn restarting_the_engine_loses_no_transition_and_reports_none_twice() {
    let mut engine = PrivateEngine::start("restart").await;
    let host = engine.host();
    engine.stop().await;

    // Unreachable at start-up: reported, and the controller keeps running.
    let mut daemon = Daemon::start(DaemonOptions {
        docker_host: Some(host.clone()),
        extra: vec!["--resync-interval".into(), "1h".into()],
        ..DaemonOptions::default()
    });
    daemon.wait_for_event(WAIT, "docker.disconnected at start-up", |event| {
        event["event_type"] == "docker.disconnected"
    });
    let inventory = daemon.wait_for_inventory(WAIT, "docker disconnected", |inventory| {
        inventory["docker"]["connected"] == false
    });
    assert!(inventory["docker"]["lastError"].is_string());
    assert!(daemon.is_running(), "{}", daemon.output());

    engine.restart().await;
    daemon.wait_for_event(WAIT, "docker.reconnected", |event| {
        event["event_type"] == "docker.reconnected"
    });
    let scope = TestScope::on(engine.docker(), "engine-restart").await;
    let keeps_running = scope.container(ContainerRequest::sleeper("a")).await;
    let to_remove = scope.container(ContainerRequest::sleeper("b")).await;
    let to_start = scope
        .container(ContainerRequest::sleeper("c").created_only())
        .await;
    daemon.wait_for_inventory(WAIT, "a, b and c", |inventory| {
        has(inventory, &keeps_running, "running")
            && has(inventory, &to_remove, "running")
            && has(inventory, &to_start, "created")
    });

    // The engine goes away (its containers stop with it) and comes back; while the controller
    // is still reconnecting, containers are removed, created and started.
    engine.stop().await;
    daemon.wait_for_inventory(WAIT, "docker disconnected", |inventory| {
        inventory["docker"]["connected"] == false
    });
    engine.restart().await;
    let docker = engine.docker();
    docker
        .remove_container(
            &to_remove,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .expect("remove b");
    docker
        .start_container(&to_start, None)
        .await
        .expect("start c");
    let created = scope
        .container(ContainerRequest::sleeper("d").created_only())
        .await;

    let inventory =
        daemon.wait_for_inventory(WAIT, "the engine's state after the restart", |inventory| {
            has(inventory, &keeps_running, "exited")
                && inventory["containers"].get(&to_remove[..12]).is_none()
                && has(inventory, &to_start, "running")
                && has(inventory, &created, "created")
        });
    assert_eq!(inventory["docker"]["connected"], true);

    // Give stragglers (replayed events) time to arrive, then check nothing was reported twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = daemon.events();
    let mut discovered: HashMap<String, usize> = HashMap::new();
    let mut removed: HashMap<String, usize> = HashMap::new();
    let mut transitions: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for event in &events {
        let id = event["details"]["container_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match event["event_type"].as_str() {
            Some("detection.container_discovered") => *discovered.entry(id).or_default() += 1,
            Some("detection.container_removed") => *removed.entry(id).or_default() += 1,
            Some("detection.container_status_changed") => {
                transitions.entry(id).or_default().push((
                    event["details"]["from"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    event["details"]["to"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ))
            }
            _ => {}
        }
    }
    for id in [&keeps_running, &to_remove, &to_start, &created] {
        assert_eq!(
            discovered.get(&id[..12]),
            Some(&1),
            "discovered count of {id}; events: {events:#?}"
        );
    }
    assert_eq!(
        removed.get(&to_remove[..12]),
        Some(&1),
        "removal of b reported once"
    );
    assert!(!removed.contains_key(&keeps_running[..12]));
    for (id, moves) in &transitions {
        for pair in moves.windows(2) {
            assert_ne!(
                pair[0], pair[1],
                "transition of {id} reported twice: {moves:?}"
            );
        }
        for (from, to) in moves {
            assert_ne!(from, to, "a non-transition was reported for {id}");
        }
    }
    assert_eq!(
        transitions.get(&to_start[..12]).map(Vec::as_slice),
        Some(&[("created".to_owned(), "running".to_owned())][..])
    );
    assert!(
        transitions
            .get(&keeps_running[..12])
            .is_some_and(|moves| moves.last().is_some_and(|(_, to)| to == "exited"))
    );
    let disconnects = events
        .iter()
        .filter(|event| event["event_type"] == "docker.disconnected")
        .count();
    let reconnects = events
        .iter()
        .filter(|event| event["event_type"] == "docker.reconnected")
        .count();
    assert_eq!(
        (disconnects, reconnects),
        (2, 2),
        "one disconnect and one reconnect per outage"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
}
