//! Load: 1000 containers and a stream of pause/unpause transitions (aimed at 50 Docker container
//! events a second, at least 40 required) for `DS01_LOAD_SECONDS` (default 300): at the end
//! every container's state in the controller's inventory equals Docker's, and the
//! controller's memory stayed bounded.
//!
//! Long: `cargo test -p ds01-tests --test reliability_load -- --ignored` (not in `.ci/run`).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bollard::query_parameters::EventsOptionsBuilder;
use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};
use futures::StreamExt;

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
            let request = ContainerRequest::sleeper(&format!("l{index}"));
            // The churned ones run; the rest are only created.
            scope.container(if *index < CHURNED {
                request
            } else {
                request.created_only()
            })
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
    // Docker's own count of container events while the churn runs.
    let counted = Arc::new(AtomicU64::new(0));
    let counter = counted.clone();
    let docker = scope.docker.clone();
    let watcher = tokio::spawn(async move {
        let filters = HashMap::from([("type".to_owned(), vec!["container".to_owned()])]);
        let mut events = docker.events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
        while let Some(Ok(_)) = events.next().await {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let mut rss = Vec::new();
    let paused: Arc<Vec<AtomicBool>> =
        Arc::new((0..CHURNED).map(|_| AtomicBool::new(false)).collect());
    let busy: Arc<Vec<AtomicBool>> =
        Arc::new((0..CHURNED).map(|_| AtomicBool::new(false)).collect());
    let mut turn = 0_usize;
    // Pause and unpause alternate per running container (a state transition each, cheap enough
    // for Docker on 2 cores, unlike start/kill): 50 operations a second, issued concurrently so
    // Docker's latency does not slow them.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let index = turn % CHURNED;
        turn += 1;
        if busy[index].swap(true, Ordering::SeqCst) {
            continue;
        }
        let docker = scope.docker.clone();
        let id = ids[index].clone();
        let (paused, busy) = (paused.clone(), busy.clone());
        tokio::spawn(async move {
            let result = if paused[index].load(Ordering::SeqCst) {
                docker.unpause_container(&id).await.map(|()| false)
            } else {
                docker.pause_container(&id).await.map(|()| true)
            };
            if let Ok(now_paused) = result {
                paused[index].store(now_paused, Ordering::SeqCst);
            }
            busy[index].store(false, Ordering::SeqCst);
        });
        if turn.is_multiple_of(500) {
            rss.push((started.elapsed().as_secs(), rss_mib(pid)));
        }
    }
    while busy.iter().any(|flag| flag.load(Ordering::SeqCst)) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    #[expect(clippy::cast_precision_loss, reason = "event counts")]
    let rate = counted.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    watcher.abort();
    println!(
        "{rate:.1} Docker container events a second for {seconds}s; RSS samples (s, MiB): {rss:?}"
    );
    assert!(
        rate >= 40.0,
        "the churn reached only {rate:.1} events a second"
    );

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
