//! Latency measurements: Docker's `create` event to the controller's discovery (items 1 of
//! DESIGN §8) and `docker kill` of the exporter to running again (item 2).

use std::{collections::HashMap, time::Duration};

use bollard::query_parameters::EventsOptionsBuilder;
use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};
use futures::StreamExt;

use super::percentile;

/// `detection-latency`: N containers at a steady 20/s, then `bursts` bursts of `burst`
/// concurrent creates, a second apart.
pub async fn detection_latency(steady: usize, burst: usize, bursts: usize) {
    let scope = TestScope::new("bench-latency").await;
    let daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_inventory(Duration::from_secs(30), "the first relist", |inventory| {
        inventory["docker"]["connected"] == true
    });

    // Docker's own record of each create, from its event stream, and when this subscriber got
    // it: the floor any event-driven watcher shares (dockerd's own delivery delay).
    let docker = scope.docker.clone();
    let created_at = tokio::spawn(async move {
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("event".to_owned(), vec!["create".to_owned()]),
        ]);
        let mut events = docker.events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
        let mut times = HashMap::new();
        while let Some(Ok(event)) = events.next().await {
            if let (Some(actor), Some(nanos)) = (event.actor, event.time_nano)
                && let Some(id) = actor.id
            {
                let received = jiff::Timestamp::now().as_nanosecond();
                times.insert(id[..12].to_owned(), (nanos, received));
            }
            if times.len() >= steady + burst * bursts {
                break;
            }
        }
        times
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    for index in 0..steady {
        scope
            .container(ContainerRequest::sleeper(&format!("s{index}")).created_only())
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for round in 0..bursts {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let burst_requests: Vec<_> = (0..burst)
            .map(|index| {
                scope.container(
                    ContainerRequest::sleeper(&format!("b{round}x{index}")).created_only(),
                )
            })
            .collect();
        futures::future::join_all(burst_requests).await;
    }
    let created_at = tokio::time::timeout(Duration::from_secs(60), created_at)
        .await
        .expect("create events")
        .expect("event task");
    daemon.wait_for_event(Duration::from_secs(60), "every discovery", |_| {
        daemon
            .events()
            .iter()
            .filter(|event| event["event_type"] == "detection.container_discovered")
            .count()
            >= steady + burst * bursts
    });
    let mut latencies: Vec<f64> = Vec::new();
    let mut burst_latencies: Vec<f64> = Vec::new();
    let mut delivery: Vec<f64> = Vec::new();
    let mut burst_delivery: Vec<f64> = Vec::new();
    for event in daemon
        .events()
        .iter()
        .filter(|event| event["event_type"] == "detection.container_discovered")
    {
        let id = event["details"]["container_id"]
            .as_str()
            .unwrap_or_default();
        let name = event["details"]["container"].as_str().unwrap_or_default();
        let Some((created, received)) = created_at.get(id) else {
            continue;
        };
        let Ok(seen) = event["timestamp"]
            .as_str()
            .unwrap_or_default()
            .parse::<jiff::Timestamp>()
        else {
            continue;
        };
        #[expect(clippy::cast_precision_loss, reason = "latencies are small")]
        let millis = (seen.as_nanosecond() - i128::from(*created)) as f64 / 1e6;
        #[expect(clippy::cast_precision_loss, reason = "latencies are small")]
        let delivered = (received - i128::from(*created)) as f64 / 1e6;
        let is_burst = name
            .rsplit_once('-')
            .is_some_and(|(_, suffix)| suffix.starts_with('b'));
        if is_burst {
            burst_latencies.push(millis);
            burst_delivery.push(delivered);
        } else {
            latencies.push(millis);
            delivery.push(delivered);
        }
    }
    let burst_label = format!("{bursts} bursts of {burst}");
    for (what, label, values) in [
        ("detection latency", "steady (20/s)", &mut latencies),
        ("detection latency", &*burst_label, &mut burst_latencies),
        (
            "docker's delivery to a subscriber",
            "steady (20/s)",
            &mut delivery,
        ),
        (
            "docker's delivery to a subscriber",
            &*burst_label,
            &mut burst_delivery,
        ),
    ] {
        values.sort_by(f64::total_cmp);
        println!(
            "{what}, {label}: n={} p50={:.1}ms p99={:.1}ms max={:.1}ms",
            values.len(),
            percentile(values, 0.5),
            percentile(values, 0.99),
            values.last().copied().unwrap_or(f64::NAN)
        );
    }
}

/// `dcgm-restart`: kill a healthy exporter N times.
pub async fn dcgm_restart(kills: usize) {
    let scope = TestScope::new("bench-dcgm").await;
    let www = tempfile::tempdir().expect("www");
    std::fs::write(www.path().join("metrics"), "DCGM_FI_DEV_GPU_UTIL 0\n").expect("metrics");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("port");
    let name = scope.name("dcgm");
    let spec = format!(
        "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {{name: dcgm}}\nspec:\n  containerName: {name}\n  image: ds01/testbox:latest\n  pullPolicy: Never\n  command: [httpd, -f, -p, \"9400\", -h, /www]\n  volumes: [\"{}:/www:ro\"]\n  port: {port}\n  gpus: none\n  requireGpus: false\n  capAdd: []\n  memoryLimit: 64MiB\n  labels: {{ds01.test: {}}}\n  stopTimeout: 2s\n  health: {{interval: 1s, timeout: 1s, startPeriod: 2s, requireAllGpus: false}}\n  restart: {{backoffInitial: 1s, backoffMax: 4s, resetAfter: 2s, maxRestarts: 100, window: 1m}}\n",
        www.path().display(),
        scope.id
    );
    let spec_path = www.path().join("dcgm.yaml");
    std::fs::write(&spec_path, spec).expect("spec");
    let daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(Duration::from_secs(30));
    let (code, _, stderr) = daemon.ctl(&["apply", "-f", &spec_path.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    let mut latencies = Vec::new();
    for _ in 0..kills {
        let (code, _, _) = daemon.ctl(&[
            "wait",
            "--for=condition=Ready",
            "dcgmexporter/dcgm",
            "--timeout",
            "60s",
        ]);
        assert_eq!(code, 0, "{}", daemon.output());
        tokio::time::sleep(Duration::from_millis(2500)).await; // healthy past resetAfter
        let Ok(inspected) = scope.docker.inspect_container(&name, None).await else {
            continue;
        };
        let Some(id) = inspected.id else { continue };
        let killed = std::time::Instant::now();
        scope.docker.kill_container(&id, None).await.expect("kill");
        // Wait for Docker to report it stopped, then running again.
        let mut seen_stopped = false;
        loop {
            let running = scope
                .docker
                .inspect_container(&id, None)
                .await
                .ok()
                .and_then(|c| c.state)
                .and_then(|state| state.running)
                .unwrap_or(false);
            if !running {
                seen_stopped = true;
            } else if seen_stopped {
                break;
            }
            assert!(killed.elapsed() < Duration::from_secs(30), "not restarted");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(killed.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "dcgm exporter kill -> running again: n={} p50={:.0}ms p99={:.0}ms max={:.0}ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
}
