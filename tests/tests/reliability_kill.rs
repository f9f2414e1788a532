//! The controller SIGKILLed 20 times at random points while idle and runtime countdowns run and
//! the exporter is being killed: afterwards no action happened twice, no timer was lost (the
//! stops come at the deadlines set before the kills), no warning was repeated, and the state
//! file was valid JSON after every kill. And a stop issued just before a kill, whose event the
//! killed controller never wrote, is written by the next one.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bollard::query_parameters::EventsOptionsBuilder;
use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};
use futures::StreamExt;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);
const KILLS: usize = 20;

/// xorshift64*: reproducible "random" points from a printed seed.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

fn exporter_ready(daemon: &Daemon) {
    let (code, _, _) = daemon.ctl(&[
        "wait",
        "--for=condition=Ready",
        "dcgmexporter/dcgm",
        "--timeout",
        "30s",
    ]);
    assert_eq!(code, 0, "{}", daemon.output());
}

fn time(event: &Value, field: &str) -> jiff::Timestamp {
    event["details"][field]
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{field} in {event}"))
}

fn of(events: &[Value], kind: &str, id: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|event| event["event_type"] == kind && event["details"]["container_id"] == id[..12])
        .cloned()
        .collect()
}

#[tokio::test]
async fn twenty_sigkills_lose_no_timer_and_repeat_no_action() {
    let scope = TestScope::new("kill-nine").await;
    let seed = u64::from(std::process::id()) * 0x9e37_79b9 + 1;
    println!("seed {seed}");
    let mut random = Random(seed);
    let idle_user = format!("k9idle{}", std::process::id());
    let runtime_user = format!("k9run{}", std::process::id());
    let alerts = tempfile::tempdir().expect("alerts");
    let _ = std::process::Command::new("chmod")
        .arg("777")
        .arg(alerts.path())
        .status();
    let www = tempfile::tempdir().expect("www");
    std::fs::write(www.path().join("metrics"), "DCGM_FI_DEV_GPU_UTIL 0\n").expect("metrics");
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(www.path())
        .status();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("port");
    let exporter = scope.name("dcgm");
    let specs = www.path().join("specs.yaml");
    std::fs::write(
        &specs,
        format!(
            "apiVersion: ds01.io/v1alpha1\nkind: DcgmExporter\nmetadata: {{name: dcgm}}\nspec:\n  containerName: {exporter}\n  image: ds01/testbox:latest\n  pullPolicy: Never\n  command: [httpd, -f, -p, \"{port}\", -h, /www]\n  volumes: [\"{www}:/www:ro\"]\n  port: {port}\n  gpus: none\n  requireGpus: false\n  capAdd: []\n  labels: {{ds01.test: {test}}}\n  stopTimeout: 1s\n  health: {{interval: 1s, timeout: 1s, startPeriod: 2s, requireAllGpus: false}}\n  restart: {{backoffInitial: 1s, backoffMax: 2s, resetAfter: 1s, maxRestarts: 100, window: 1m}}\n---\napiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: lab}}\nspec:\n  sampleInterval: 1s\n  scope: all\n  defaults: {{idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {idle_user}: {{startupGrace: 0s, stopGracePeriod: 1s, idleTimeout: 50s, onIdle: stop, warnAt: {{idle: [40]}}}}\n    {runtime_user}: {{startupGrace: 0s, stopGracePeriod: 1s, maxRuntime: 55s, warnAt: {{runtime: [40]}}, idle: {{cpuBelow: 0}}}}\n  notify: {{tty: false, containerFile: /alerts/ds01-alerts}}\n",
            www = www.path().display(),
            test = scope.id,
        ),
    )
    .expect("specs");

    // Docker's own record of the exporter's starts.
    let docker = scope.docker.clone();
    let name = exporter.clone();
    let starts = Arc::new(AtomicUsize::new(0));
    let counter = starts.clone();
    let watcher = tokio::spawn(async move {
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("event".to_owned(), vec!["start".to_owned()]),
            ("container".to_owned(), vec![name]),
        ]);
        let mut events = docker.events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
        while let Some(Ok(_)) = events.next().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", &specs.display().to_string()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    exporter_ready(&daemon);
    let with_alerts = |request: ContainerRequest| {
        let mut request = request;
        request
            .binds
            .push(format!("{}:/alerts", alerts.path().display()));
        request
    };
    let idle = scope
        .container(with_alerts(
            ContainerRequest::sleeper("idle").label("ds01.user", &idle_user),
        ))
        .await;
    let runtime = scope
        .container(with_alerts(
            ContainerRequest::sleeper("runtime").label("ds01.user", &runtime_user),
        ))
        .await;

    let mut exporter_kills = 0;
    for round in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(500 + random.below(1500))).await;
        if round % 4 == 3 && scope.docker.kill_container(&exporter, None).await.is_ok() {
            exporter_kills += 1;
        }
        let directory = daemon.kill_keeping_state();
        let state = directory.path().join("state/controller-state.json");
        if let Ok(text) = std::fs::read_to_string(&state) {
            assert!(
                serde_json::from_str::<Value>(&text).is_ok(),
                "state file corrupt after kill {round}: {text}"
            );
        }
        daemon = Daemon::start_in(directory, DaemonOptions::default());
    }
    daemon.wait_for_socket(WAIT);
    // From here on the controller stays up. A deadline that fell while the kills went on (a
    // slow machine stretches them) could only be honoured once a controller was back.
    let back = jiff::Timestamp::now();

    let idle_stop = daemon.wait_for_event(WAIT, "the idle stop", |event| {
        event["event_type"] == "lifecycle.idle_stop"
            && event["details"]["container_id"] == idle[..12]
    });
    let runtime_stop = daemon.wait_for_event(WAIT, "the runtime stop", |event| {
        event["event_type"] == "lifecycle.runtime_stop"
            && event["details"]["container_id"] == runtime[..12]
    });
    exporter_ready(&daemon);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = daemon.events();

    // One stop each, at the deadline fixed before the kills.
    assert_eq!(of(&events, "lifecycle.idle_stop", &idle).len(), 1);
    assert_eq!(of(&events, "lifecycle.runtime_stop", &runtime).len(), 1);
    let started: jiff::Timestamp = scope
        .docker
        .inspect_container(&runtime, None)
        .await
        .ok()
        .and_then(|container| container.state?.started_at)
        .and_then(|text| text.parse().ok())
        .expect("start time");
    let runtime_deadline = time(&runtime_stop, "deadline");
    assert!(
        runtime_deadline.duration_since(started).as_secs_f64().abs() - 55.0 < 0.01,
        "runtime deadline {runtime_deadline} for a start at {started}"
    );
    for stop in [&idle_stop, &runtime_stop] {
        let deadline = time(stop, "deadline");
        let issued = time(stop, "issued_at");
        let late = issued.duration_since(deadline).as_secs_f64();
        if deadline >= back {
            assert!(
                (-0.01..=1.0).contains(&late),
                "stop issued {late:.2}s after its deadline: {stop}"
            );
        } else {
            // Due during the kills: never early, and at the latest just after the last restart
            // (its first pass follows the first observation of Docker).
            let after_back = issued.duration_since(back).as_secs_f64();
            assert!(
                late >= -0.01 && after_back <= 3.0,
                "stop due during the kills (back at {back}) issued {late:.2}s after its \
                 deadline, {after_back:.2}s after the controller was back: {stop}"
            );
        }
    }

    // Each warning once, and for the same deadline the stop kept.
    let idle_warnings = of(&events, "lifecycle.idle_warning", &idle);
    let runtime_warnings = of(&events, "lifecycle.runtime_warning", &runtime);
    assert_eq!(idle_warnings.len(), 1, "{idle_warnings:#?}");
    assert_eq!(runtime_warnings.len(), 1, "{runtime_warnings:#?}");
    assert_eq!(
        time(&idle_warnings[0], "deadline"),
        time(&idle_stop, "deadline")
    );
    assert_eq!(time(&runtime_warnings[0], "deadline"), runtime_deadline);
    // One warning each, and at most one "was stopped" notice each (a controller killed
    // between the stop and its notice leaves it out): nothing repeated across the kills.
    let alert_file = std::fs::read_to_string(alerts.path().join("ds01-alerts")).expect("alerts");
    assert_eq!(
        alert_file.matches("[ds01] WARNING").count(),
        2,
        "{alert_file}"
    );
    assert!(
        alert_file.matches("[ds01] STOPPED").count() <= 2,
        "{alert_file}"
    );

    // The exporter was started once, then once per death: never twice for one death.
    assert_eq!(scope.running(&exporter).await, Some(true));
    watcher.abort();
    assert!(exporter_kills > 0, "the exporter was never killed");
    assert_eq!(
        starts.load(Ordering::SeqCst),
        exporter_kills + 1,
        "Docker saw the exporter started {} times for {exporter_kills} kills",
        starts.load(Ordering::SeqCst)
    );
    let created = events
        .iter()
        .filter(|event| event["event_type"] == "dcgm.created")
        .count();
    assert_eq!(created, 1, "the exporter was re-created");
}

/// What a controller killed between issuing a stop and writing its event leaves behind.
fn unrecorded_stop(user: &str, id: &str) -> Value {
    serde_json::json!({
        "idleWarned": [], "runtimeWarned": [], "exemptReported": false,
        "unrecordedStop": {
            "event": "lifecycle.runtime_stop",
            "user": user,
            "details": {
                "container_id": &id[..12],
                "limit": "1m",
                "deadline": "2026-01-01T00:00:00.000Z",
                "issued_at": "2026-01-01T00:00:00.010Z",
            },
        },
    })
}

#[tokio::test]
async fn a_stop_a_killed_controller_did_not_record_is_recorded_by_the_next_one() {
    let scope = TestScope::new("kill-unrecorded").await;
    let user = format!("k9gone{}", std::process::id());
    // `stopped`: the stop reached Docker before the kill; `running`: it did not; `written`: its
    // event was written too, the kill falling just before the record was dropped.
    let mut ids = Vec::new();
    for (name, exited) in [("stopped", true), ("running", false), ("written", true)] {
        let id = scope
            .container(ContainerRequest::sleeper(name).label("ds01.user", &user))
            .await;
        if exited {
            scope.docker.kill_container(&id, None).await.expect("kill");
        }
        ids.push(id);
    }
    let [stopped, running, written] = <[String; 3]>::try_from(ids).expect("three containers");
    let directory = tempfile::tempdir().expect("tempdir");
    let state = directory.path().join("state");
    let specs = directory.path().join("specs");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::create_dir_all(&specs).expect("specs dir");
    let memory = serde_json::json!({ "containerLifecycle": {
        format!("lab/{stopped}"): unrecorded_stop(&user, &stopped),
        format!("lab/{running}"): unrecorded_stop(&user, &running),
        format!("lab/{written}"): unrecorded_stop(&user, &written),
    }});
    std::fs::write(state.join("controller-state.json"), memory.to_string()).expect("state");
    let mut line = serde_json::json!({
        "timestamp": "2026-01-01T00:00:01.000Z", "event_type": "lifecycle.runtime_stop",
        "schema_version": "1", "user": user, "source": "ds01-controller",
        "details": unrecorded_stop(&user, &written)["unrecordedStop"]["details"].clone(),
    });
    line["details"]["outcome"] = "stopped".into();
    std::fs::write(directory.path().join("events.jsonl"), format!("{line}\n")).expect("log");
    // No limit calls for a stop now: only the left-over record can produce one.
    std::fs::write(
        specs.join("lab.yaml"),
        "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {name: lab}\nspec:\n  sampleInterval: 1s\n  scope: all\n  defaults: {idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}\n  notify: {tty: false}\n",
    )
    .expect("spec");
    let daemon = Daemon::start_in(
        directory,
        DaemonOptions {
            extra: vec!["--specs".into(), specs.display().to_string()],
            ..DaemonOptions::default()
        },
    );
    let recorded = daemon.wait_for_event(WAIT, "the left-over stop", |event| {
        event["event_type"] == "lifecycle.runtime_stop"
            && event["details"]["container_id"] == stopped[..12]
    });
    assert_eq!(recorded["details"]["outcome"], "stopped", "{recorded}");
    assert_eq!(recorded["details"]["recorded_after_restart"], true);
    assert_eq!(recorded["details"]["issued_at"], "2026-01-01T00:00:00.010Z");
    assert_eq!(recorded["user"], user.as_str());

    // The stop that never reached Docker is not reported, and the record of it is dropped.
    let settled = std::time::Instant::now();
    let state_file = state.join("controller-state.json");
    while std::fs::read_to_string(&state_file).is_ok_and(|text| text.contains("unrecordedStop")) {
        assert!(settled.elapsed() < WAIT, "the left-over records were kept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        of(&daemon.events(), "lifecycle.runtime_stop", &running).is_empty(),
        "a stop that did not happen was reported"
    );
    assert_eq!(scope.running(&running).await, Some(true));
    assert_eq!(
        of(&daemon.events(), "lifecycle.runtime_stop", &stopped).len(),
        1,
        "recorded twice"
    );
    assert_eq!(
        of(&daemon.events(), "lifecycle.runtime_stop", &written).len(),
        1,
        "an event the killed controller had written was written again"
    );
}
