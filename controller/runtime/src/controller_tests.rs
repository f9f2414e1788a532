//! Controller loop behaviour on tokio's paused clock.

use std::sync::Mutex;

use super::*;

#[derive(Debug, thiserror::Error)]
#[error("test failure")]
struct TestError;

type Script =
    dyn Fn(&str, u32) -> (Duration, Result<Action, ReconcileError<TestError>>) + Send + Sync;

/// Records every reconcile (key, start, end since the test began) and follows a script.
struct Recorder {
    began: Instant,
    calls: Arc<Mutex<Vec<(String, Duration, Duration)>>>,
    counts: Mutex<HashMap<String, u32>>,
    active: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    script: Box<Script>,
}

impl Reconciler<String> for Recorder {
    type Error = TestError;

    async fn reconcile(&self, key: String) -> Result<Action, ReconcileError<TestError>> {
        let call = {
            let mut counts = self.counts.lock().expect("lock");
            let count = counts.entry(key.clone()).or_insert(0);
            *count += 1;
            *count - 1
        };
        let start = self.began.elapsed();
        let now_active = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now_active, Ordering::SeqCst);
        let (work, result) = (self.script)(&key, call);
        tokio::time::sleep(work).await;
        self.active.fetch_sub(1, Ordering::SeqCst);
        self.calls
            .lock()
            .expect("lock")
            .push((key, start, self.began.elapsed()));
        result
    }
}

struct Harness {
    calls: Arc<Mutex<Vec<(String, Duration, Duration)>>>,
    peak: Arc<AtomicUsize>,
    handle: Handle<String>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn start(
        config: Config,
        script: impl Fn(&str, u32) -> (Duration, Result<Action, ReconcileError<TestError>>)
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Harness::start_observed(config, None, script)
    }

    fn start_observed(
        config: Config,
        observer: Option<Arc<dyn ReconcileObserver>>,
        script: impl Fn(&str, u32) -> (Duration, Result<Action, ReconcileError<TestError>>)
        + Send
        + Sync
        + 'static,
    ) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let peak = Arc::new(AtomicUsize::new(0));
        let recorder = Recorder {
            began: Instant::now(),
            calls: calls.clone(),
            counts: Mutex::new(HashMap::new()),
            active: Arc::new(AtomicUsize::new(0)),
            peak: peak.clone(),
            script: Box::new(script),
        };
        let mut controller = Controller::new("test", recorder, config);
        if let Some(observer) = observer {
            controller = controller.observed_by(observer);
        }
        let handle = controller.handle();
        let stats = controller.stats();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(controller.run(shutdown.clone()));
        Harness {
            calls,
            peak,
            handle,
            stats,
            shutdown,
            task,
        }
    }

    fn starts(&self, key: &str) -> Vec<u64> {
        self.calls
            .lock()
            .expect("lock")
            .iter()
            .filter(|(k, ..)| k == key)
            .map(|(_, start, _)| start.as_secs())
            .collect()
    }
}

fn ok_after(seconds: u64) -> (Duration, Result<Action, ReconcileError<TestError>>) {
    (Duration::from_secs(seconds), Ok(Action::await_change()))
}

#[tokio::test(start_paused = true)]
async fn a_requeued_key_is_reconciled_again_at_its_delay() {
    let harness = Harness::start(Config::default(), |_, _| {
        (Duration::ZERO, Ok(Action::requeue(Duration::from_secs(10))))
    });
    harness.handle.trigger("a".into());
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(harness.starts("a"), [0, 10, 20, 30]);
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_triggers_for_one_key_reconciles_once() {
    let config = Config {
        debounce: Duration::from_secs(1),
        ..Config::default()
    };
    let harness = Harness::start(config, |_, _| ok_after(0));
    for _ in 0..50 {
        harness.handle.trigger("a".into());
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(harness.starts("a"), [1]);
}

#[tokio::test(start_paused = true)]
async fn an_earlier_request_replaces_a_later_one() {
    let harness = Harness::start(Config::default(), |_, _| ok_after(0));
    let now = Instant::now();
    harness
        .handle
        .schedule_at("a".into(), now + Duration::from_secs(30));
    harness
        .handle
        .schedule_at("a".into(), now + Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(harness.starts("a"), [5]);
}

#[tokio::test(start_paused = true)]
async fn one_key_never_runs_twice_at_once_and_a_change_during_a_run_is_not_lost() {
    let harness = Harness::start(Config::default(), |_, _| ok_after(5));
    harness.handle.trigger("a".into());
    tokio::time::sleep(Duration::from_secs(1)).await;
    harness.handle.trigger("a".into());
    harness.handle.trigger("a".into());
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(harness.starts("a"), [0, 5]);
    assert_eq!(harness.peak.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn global_concurrency_is_bounded() {
    let config = Config {
        max_concurrency: 3,
        ..Config::default()
    };
    let harness = Harness::start(config, |_, _| ok_after(1));
    for index in 0..10 {
        harness.handle.trigger(format!("k{index}"));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(harness.calls.lock().expect("lock").len(), 10);
    assert_eq!(harness.peak.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn transient_errors_back_off_exponentially_and_success_resets_the_backoff() {
    let config = Config {
        backoff: Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
        },
        ..Config::default()
    };
    // Calls 0-2 fail, 3 succeeds and asks for a requeue at +100s, 4 fails again.
    let harness = Harness::start(config, |_, call| match call {
        0..=2 | 4 => (Duration::ZERO, Err(ReconcileError::Transient(TestError))),
        3 => (
            Duration::ZERO,
            Ok(Action::requeue(Duration::from_secs(100))),
        ),
        _ => ok_after(0),
    });
    harness.handle.trigger("a".into());
    tokio::time::sleep(Duration::from_secs(200)).await;
    // 0, +2, +4, +8 → 14 succeeds, 114 fails, retry after the reset initial delay: 116.
    assert_eq!(harness.starts("a"), [0, 2, 6, 14, 114, 116]);
    assert_eq!(harness.stats.errors.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn a_terminal_error_waits_for_the_next_change() {
    let harness = Harness::start(Config::default(), |_, _| {
        (Duration::ZERO, Err(ReconcileError::Terminal(TestError)))
    });
    harness.handle.trigger("a".into());
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(harness.starts("a"), [0]);
    harness.handle.trigger("a".into());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(harness.starts("a"), [0, 600]);
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_that_hangs_times_out_and_is_retried() {
    let config = Config {
        reconcile_timeout: Duration::from_secs(5),
        backoff: Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
        },
        ..Config::default()
    };
    let harness = Harness::start(config, |_, call| {
        if call == 0 {
            ok_after(3600)
        } else {
            ok_after(0)
        }
    });
    harness.handle.trigger("a".into());
    tokio::time::sleep(Duration::from_secs(30)).await;
    // The hung call was abandoned at 5s; the retry started at 6s.
    assert_eq!(harness.starts("a"), [6]);
    assert_eq!(harness.stats.errors.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_in_flight_work_finish_within_the_drain_deadline() {
    let config = Config {
        drain_deadline: Duration::from_secs(10),
        ..Config::default()
    };
    let harness = Harness::start(config, |key, _| {
        if key == "quick" {
            ok_after(3)
        } else {
            ok_after(3600)
        }
    });
    harness.handle.trigger("quick".into());
    harness.handle.trigger("stuck".into());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopping = Instant::now();
    harness.shutdown.cancel();
    harness.task.await.expect("controller task");
    assert_eq!(
        stopping.elapsed().as_secs(),
        10,
        "run returns at the drain deadline"
    );
    let finished: Vec<String> = harness
        .calls
        .lock()
        .expect("lock")
        .iter()
        .map(|(key, ..)| key.clone())
        .collect();
    assert_eq!(
        finished,
        ["quick"],
        "the quick reconcile finished, the stuck one was aborted"
    );
    // Requests after shutdown are ignored without panicking.
    harness.handle.trigger("late".into());
}

/// Keeps what a [`ReconcileObserver`] is told.
#[derive(Default)]
struct Told(Mutex<Vec<(&'static str, u64, Finished)>>);

impl ReconcileObserver for Told {
    fn finished(&self, controller: &'static str, duration: Duration, how: Finished) {
        self.0
            .lock()
            .expect("lock")
            .push((controller, duration.as_secs(), how));
    }
}

#[tokio::test(start_paused = true)]
async fn the_observer_is_told_how_long_each_reconcile_took_and_how_it_ended() {
    let told = Arc::new(Told::default());
    let config = Config {
        reconcile_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let harness = Harness::start_observed(config, Some(told.clone()), |key, _| match key {
        "ok" => ok_after(2),
        "failing" => (
            Duration::from_secs(3),
            Err(ReconcileError::Terminal(TestError)),
        ),
        _ => ok_after(60),
    });
    harness.handle.trigger("ok".into());
    harness.handle.trigger("failing".into());
    tokio::time::sleep(Duration::from_secs(5)).await;
    harness.handle.trigger("hangs".into());
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut told = told.0.lock().expect("lock").clone();
    told.sort_by_key(|(_, seconds, _)| *seconds);
    assert_eq!(
        told,
        [
            ("test", 2, Finished::Ok),
            ("test", 3, Finished::Error),
            ("test", 10, Finished::TimedOut)
        ]
    );
}
