//! `ds01-controller` under a service manager: the notify protocol on a real datagram socket
//! (READY after the first observation, WATCHDOG pings that stop when the loops hang,
//! RELOADING/READY around SIGHUP, STOPPING and exit 0 on SIGTERM) and the metrics endpoint.

use std::{
    fs::File,
    os::{
        fd::AsFd,
        unix::{fs::OpenOptionsExt, net::UnixDatagram},
    },
    path::Path,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope};

const WAIT: Duration = Duration::from_secs(30);

/// What the controller told the "service manager", with when.
#[derive(Clone, Default)]
struct Manager {
    messages: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Manager {
    /// Listens on `path` as systemd's notify socket does.
    fn listen(path: &Path) -> Self {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        let manager = Manager::default();
        let messages = manager.messages.clone();
        std::thread::spawn(move || {
            let mut buffer = [0_u8; 4096];
            while let Ok(length) = socket.recv(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
                messages.lock().expect("lock").push((Instant::now(), text));
            }
        });
        manager
    }

    fn lines(&self) -> Vec<(Instant, String)> {
        self.messages
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|(at, text)| {
                text.lines()
                    .map(|line| (*at, line.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|(_, seen)| seen == line).count()
    }

    /// Waits until `line` has been received `times` times; returns when the last one came.
    fn wait_for(&self, line: &str, times: usize, deadline: Duration, daemon: &Daemon) -> Instant {
        let started = Instant::now();
        loop {
            let seen: Vec<Instant> = self
                .lines()
                .into_iter()
                .filter(|(_, seen)| seen == line)
                .map(|(at, _)| at)
                .collect();
            if seen.len() >= times {
                return seen[times - 1];
            }
            assert!(
                started.elapsed() < deadline,
                "{line} ×{times} not received within {deadline:?}; got {:?}\ncontroller output:\n{}",
                self.lines()
                    .iter()
                    .map(|(_, line)| line.clone())
                    .collect::<Vec<_>>(),
                daemon.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn last(&self, line: &str) -> Option<Instant> {
        self.lines()
            .into_iter()
            .rev()
            .find(|(_, seen)| seen == line)
            .map(|(at, _)| at)
    }
}

fn notify_env(socket: &Path, watchdog: Duration) -> Vec<(String, String)> {
    vec![
        ("NOTIFY_SOCKET".to_owned(), socket.display().to_string()),
        ("WATCHDOG_USEC".to_owned(), watchdog.as_micros().to_string()),
    ]
}

fn signal(daemon: &Daemon, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), daemon.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn policy(name: &str, idle: &str) -> String {
    format!(
        "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: {name}}}\nspec:\n  mode: dryRun\n  scope: gpu\n  defaults: {{idleTimeout: {idle}}}\n"
    )
}

#[tokio::test]
async fn ready_after_the_first_observation_then_watchdog_reload_and_stop() {
    let scope = TestScope::new("notify").await;
    let before = scope
        .container(ContainerRequest::sleeper("there-before").label("ds01.user", "nina"))
        .await;
    let directory = tempfile::tempdir().expect("tempdir");
    let manager = Manager::listen(&directory.path().join("notify.sock"));
    let specs = directory.path().join("specs");
    std::fs::create_dir(&specs).expect("mkdir");
    std::fs::write(specs.join("lab.yaml"), policy("lab", "2h")).expect("write spec");
    let mut daemon = Daemon::start(DaemonOptions {
        env: notify_env(
            &directory.path().join("notify.sock"),
            Duration::from_secs(1),
        ),
        extra: vec!["--specs".into(), specs.display().to_string()],
        ..DaemonOptions::default()
    });
    manager.wait_for("READY=1", 1, WAIT, &daemon);
    // READY means observed: the container that existed before start is already known.
    let (code, listed, _) = daemon.ctl(&["get", "containers", "-o", "json"]);
    assert_eq!(code, 0);
    assert!(listed.contains(&before[..12]), "{listed}");

    // Pings at half the 1 s watchdog timeout while the loops are alive.
    let first = manager.wait_for("WATCHDOG=1", 1, WAIT, &daemon);
    let fifth = manager.wait_for("WATCHDOG=1", 5, WAIT, &daemon);
    let period = (fifth - first) / 4;
    assert!(
        period >= Duration::from_millis(400) && period <= Duration::from_millis(700),
        "watchdog period {period:?}"
    );

    // SIGHUP re-applies the changed --specs between RELOADING=1 and READY=1.
    std::fs::write(specs.join("lab.yaml"), policy("lab", "3h")).expect("rewrite spec");
    signal(&daemon, "HUP");
    manager.wait_for("RELOADING=1", 1, WAIT, &daemon);
    manager.wait_for("READY=1", 2, WAIT, &daemon);
    daemon.wait_for_event(WAIT, "spec.applied generation 2", |event| {
        event["event_type"] == "spec.applied" && event["details"]["generation"] == 2
    });
    let (_, specs_listed, _) = daemon.ctl(&["get", "specs", "-o", "json"]);
    assert!(specs_listed.contains("3h"), "{specs_listed}");

    // SIGTERM: STOPPING=1, drained, exit 0 well inside the unit's TimeoutStopSec (30 s).
    let stopping = Instant::now();
    assert_eq!(daemon.terminate(WAIT), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopping.elapsed()
    );
    assert_eq!(manager.count("STOPPING=1"), 1);
}

/// A FIFO as the event log whose reader can stop reading: a full pipe blocks every event
/// write, which hangs the controller's worker threads the way a hung disk would.
struct StallableLog {
    draining: Arc<AtomicBool>,
}

impl StallableLog {
    fn create(path: &Path) -> Self {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)
            .expect("open the FIFO for reading");
        nix::fcntl::fcntl(reader.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096))
            .expect("shrink the pipe");
        let draining = Arc::new(AtomicBool::new(true));
        let flag = draining.clone();
        std::thread::spawn(move || drain(reader, &flag));
        StallableLog { draining }
    }
}

fn drain(mut reader: File, draining: &AtomicBool) {
    use std::io::Read;
    let mut buffer = [0_u8; 4096];
    loop {
        if draining.load(Ordering::SeqCst) {
            match reader.read(&mut buffer) {
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn a_hung_controller_stops_pinging_the_watchdog_and_resumes_when_unblocked() {
    let scope = TestScope::new("watchdog").await;
    let directory = tempfile::tempdir().expect("tempdir");
    let manager = Manager::listen(&directory.path().join("notify.sock"));
    let log = StallableLog::create(&directory.path().join("events.fifo"));
    let mut daemon = Daemon::start(DaemonOptions {
        env: notify_env(
            &directory.path().join("notify.sock"),
            Duration::from_secs(1),
        ),
        event_log: Some(directory.path().join("events.fifo")),
        ..DaemonOptions::default()
    });
    manager.wait_for("READY=1", 1, WAIT, &daemon);
    manager.wait_for("WATCHDOG=1", 2, WAIT, &daemon);

    // Stop reading the log, then make events: the writes block and the loops hang.
    log.draining.store(false, Ordering::SeqCst);
    for index in 0..40 {
        scope
            .container(ContainerRequest::sleeper(&format!("burst-{index}")))
            .await;
    }
    let started = Instant::now();
    loop {
        let last = manager.last("WATCHDOG=1").expect("pinged before");
        if last.elapsed() > Duration::from_secs(5) {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the watchdog kept being pinged while the controller was hung"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Unblocked: the loops turn again and the pings resume.
    let pings = manager.count("WATCHDOG=1");
    log.draining.store(true, Ordering::SeqCst);
    manager.wait_for("WATCHDOG=1", pings + 2, WAIT, &daemon);
    assert_eq!(daemon.terminate(WAIT), Some(0));
}

fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn the_metrics_endpoint_serves_live_values() {
    let scope = TestScope::new("metrics").await;
    let gpu = "GPU-00000000-0000-0000-0000-00000000aa01";
    let daemon = Daemon::start(DaemonOptions {
        nvml_state: Some(format!(
            "gpus:\n  - uuid: {gpu}\n    name: A100\n    memoryTotalMiB: 40960\n"
        )),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    let spec = daemon.root().join("lab.yaml");
    std::fs::write(&spec, policy("lab", "2h")).expect("write spec");
    assert_eq!(
        daemon.ctl(&["apply", "-f", &spec.display().to_string()]).0,
        0
    );
    // Created after start-up: the first relist inspects inline, so only a container that
    // appears later goes through the inventory's inspect loop and its reconcile counter.
    let id = scope
        .container(ContainerRequest::sleeper("measured").label("ds01.user", "otto"))
        .await;
    daemon.wait_for_inventory(WAIT, "the container", |inventory| {
        inventory["containers"].get(&id[..12]).is_some()
    });
    let started = Instant::now();
    let metrics = loop {
        let metrics = daemon.metrics().unwrap_or_default();
        let reconciled = sample(
            &metrics,
            "ds01_spec_observed_generation{kind=\"ContainerLifecyclePolicy\",name=\"lab\"}",
        );
        let inspected = sample(
            &metrics,
            "ds01_reconciles_total{controller=\"inventory\",result=\"ok\"}",
        );
        if reconciled == Some(1.0)
            && sample(&metrics, "ds01_docker_connected ") == Some(1.0)
            && inspected.is_some_and(|count| count >= 1.0)
        {
            break metrics;
        }
        assert!(
            started.elapsed() < WAIT,
            "metrics never caught up:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let at_least = |prefix: &str, minimum: f64| {
        let value = sample(&metrics, prefix);
        assert!(
            value.is_some_and(|value| value >= minimum),
            "{prefix} = {value:?}, wanted ≥ {minimum}\n{metrics}"
        );
    };
    at_least("ds01_build_info{version=", 1.0);
    at_least("ds01_docker_connected ", 1.0);
    at_least("ds01_docker_events_received_total ", 0.0);
    at_least(
        "ds01_containers{origin=\"docker\",state=\"running\",gpu=\"false\"}",
        1.0,
    );
    at_least("ds01_gpus ", 1.0);
    at_least("ds01_gpu_processes{kind=\"host\"}", 0.0);
    at_least("ds01_queue_depth{controller=\"container-lifecycle\"}", 0.0);
    at_least(
        "ds01_reconciles_total{controller=\"container-lifecycle\",result=\"ok\"}",
        1.0,
    );
    at_least(
        "ds01_reconciles_total{controller=\"inventory\",result=\"ok\"}",
        1.0,
    );
    at_least(
        "ds01_reconcile_duration_seconds_count{controller=\"container-lifecycle\"}",
        1.0,
    );
    at_least(
        "ds01_spec_generation{kind=\"ContainerLifecyclePolicy\",name=\"lab\"}",
        1.0,
    );
    at_least(
        "ds01_loop_heartbeat_age_seconds{controller=\"gpu-orphans\"}",
        0.0,
    );
    at_least("ds01_gpu_orphans_killed_total ", 0.0);
    at_least("ds01_gpu_resets_total{result=\"failed\"}", 0.0);
    at_least(
        "ds01_lifecycle_actions_total{action=\"idle_stop\",reason=\"idle\"}",
        0.0,
    );
    at_least(
        "ds01_event_to_action_seconds_count{controller=\"container-lifecycle\"}",
        0.0,
    );
    at_least("ds01_events_total{event_type=\"spec.applied\"}", 1.0);
}
