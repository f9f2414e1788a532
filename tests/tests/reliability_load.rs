//! Load: 1000 containers and a stream of start/kill transitions (about 50 Docker events a
//! second) for `DS01_LOAD_SECONDS` (default 300): at the end every container's state in the
//! controller's inventory equals Docker's, and the controller's memory stayed bounded.
//!
//! Long: `cargo test -p ds01-tests --test reliability_load -- --ignored` (not in `.ci/run`).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};

const CONTAINERS: usize = 1000;
const CHURNED: usize = 100;

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

#[tokio::test]
#[ignore = "long (5 minutes): run with -- --ignored"]
async fn a_thousand_containers_under_churn_stay_accounted_for_with_bounded_memory() {
    let seconds: u64 = std::env::var("DS01_LOAD_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(300);
    let scope = TestScope::new("load").await;
    let mut ids = Vec::new();
    for chunk in (0..CONTAINERS).collect::<Vec<_>>().chunks(16) {
        let created = futures::future::join_all(chunk.iter().map(|index| {
            scope.container(ContainerRequest::sleeper(&format!("l{index}")).created_only())
        }))
        .await;
        ids.extend(created);
    }
    let daemon = Daemon::start(DaemonOptions {
        extra: vec!["--resync-interval".into(), "30s".into()],
        ..DaemonOptions::default()
    });
    daemon.wait_for_inventory(Duration::from_secs(120), "every container", |inventory| {
        ids.iter()
            .all(|id| inventory["containers"].get(&id[..12]).is_some())
    });
    let pid = daemon.child.id();
    let started = Instant::now();
    let mut rss = Vec::new();
    let mut running = [false; CHURNED];
    let mut operations = 0_u64;
    let mut turn = 0_usize;
    // A start is one event (start); a kill is two (kill, die): 20 operations a second ≈ 50 events.
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let index = turn % CHURNED;
        turn += 1;
        let id = &ids[index];
        let result = if running[index] {
            scope.docker.kill_container(id, None).await.map(|()| false)
        } else {
            scope.docker.start_container(id, None).await.map(|()| true)
        };
        if let Ok(now_running) = result {
            running[index] = now_running;
            operations += 1;
        }
        if turn.is_multiple_of(200) {
            rss.push((started.elapsed().as_secs(), rss_mib(pid)));
        }
    }
    println!("{operations} transitions in {seconds}s; RSS samples (s, MiB): {rss:?}");

    // Settle, then compare every container with Docker's own view.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut docker_states: HashMap<String, String> = HashMap::new();
    for id in &ids {
        let state = scope
            .docker
            .inspect_container(id, None)
            .await
            .ok()
            .and_then(|container| container.state?.status)
            .map(|status| status.to_string())
            .unwrap_or_default();
        docker_states.insert(id[..12].to_owned(), state);
    }
    let inventory =
        daemon.wait_for_inventory(Duration::from_secs(30), "Docker's states", |inventory| {
            docker_states
                .iter()
                .all(|(id, state)| inventory["containers"][id]["status"] == state.as_str())
        });
    assert!(inventory["docker"]["connected"] == true);
    let first_minute = rss
        .iter()
        .find(|(second, _)| *second >= 60)
        .map_or(f64::NAN, |(_, mib)| *mib);
    let last = rss.last().map_or(f64::NAN, |(_, mib)| *mib);
    assert!(last < 100.0, "RSS {last:.1} MiB");
    assert!(
        first_minute.is_nan() || last < first_minute * 1.5,
        "RSS grew from {first_minute:.1} to {last:.1} MiB"
    );
}
