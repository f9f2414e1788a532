//! The controller loop: requests → scheduler → bounded runner → reconcile → requeue/backoff.
//!
//! # Guarantees
//! - One key holds one scheduler slot; its earliest requested deadline wins.
//! - A key is never reconciled twice at once; a request that arrives while it runs makes it run
//!   again right after.
//! - At most `max_concurrency` reconciles run at a time.
//! - A transient error or a timeout requeues the key with exponential backoff, which resets on
//!   the next success; a terminal error waits for the next request.
//! - On shutdown no new reconcile starts; those in flight get `drain_deadline` to finish and
//!   are then aborted.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fmt::{Debug, Display},
    future::Future,
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{sync::mpsc, task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Action, Backoff, HEARTBEAT_PERIOD, Heartbeat, ReconcileError, Scheduler};

/// Reconciles one key toward its desired state. Must be idempotent and must not assume why it
/// was called.
pub trait Reconciler<K>: Send + Sync + 'static {
    /// Failure type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Observes, decides and acts for `key`.
    fn reconcile(
        &self,
        key: K,
    ) -> impl Future<Output = Result<Action, ReconcileError<Self::Error>>> + Send;
}

/// Tuning of one controller.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Reconciles running at once, across keys.
    pub max_concurrency: usize,
    /// Longest one reconcile may take before it counts as failed.
    pub reconcile_timeout: Duration,
    /// Retry schedule after errors.
    pub backoff: Backoff,
    /// Delay applied to change triggers so bursts coalesce.
    pub debounce: Duration,
    /// Time in-flight reconciles get to finish on shutdown.
    pub drain_deadline: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_concurrency: 8,
            reconcile_timeout: Duration::from_secs(120),
            backoff: Backoff::default(),
            debounce: Duration::ZERO,
            drain_deadline: Duration::from_secs(20),
        }
    }
}

/// Counters a controller keeps; read by status and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Reconciles finished (any outcome).
    pub reconciles: AtomicU64,
    /// Reconciles that failed or timed out.
    pub errors: AtomicU64,
    /// Keys waiting in the scheduler or for a runner slot.
    pub queue_depth: AtomicUsize,
    /// Reconciles running now.
    pub in_flight: AtomicUsize,
    /// The loop's liveness: beats on every turn and at least every [`HEARTBEAT_PERIOD`].
    pub heartbeat: Heartbeat,
}

/// How a reconcile ended, for a [`ReconcileObserver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// It returned an action.
    Ok,
    /// It returned an error (transient or terminal).
    Error,
    /// It ran past `reconcile_timeout`.
    TimedOut,
}

/// Told about every finished reconcile (metrics); must be cheap.
pub trait ReconcileObserver: Send + Sync + 'static {
    /// `controller` finished one reconcile that took `duration`.
    fn finished(&self, controller: &'static str, duration: Duration, how: Finished);
}

enum Request<K> {
    Trigger(K),
    At(K, Instant),
}

/// Sends requests to a running controller; cheap to clone.
#[derive(Debug)]
pub struct Handle<K> {
    sender: mpsc::UnboundedSender<Request<K>>,
}

impl<K> Clone for Handle<K> {
    fn clone(&self) -> Self {
        Handle {
            sender: self.sender.clone(),
        }
    }
}

impl<K> Handle<K> {
    /// Something about `key` changed: reconcile it (after the debounce).
    pub fn trigger(&self, key: K) {
        // A stopped controller has nothing left to do with requests.
        let _ = self.sender.send(Request::Trigger(key));
    }

    /// Reconcile `key` at `at` (or earlier if already scheduled earlier).
    pub fn schedule_at(&self, key: K, at: Instant) {
        let _ = self.sender.send(Request::At(key, at));
    }
}

/// One controller: a reconciler plus its queue.
pub struct Controller<K, R> {
    name: &'static str,
    reconciler: Arc<R>,
    config: Config,
    receiver: mpsc::UnboundedReceiver<Request<K>>,
    handle: Handle<K>,
    stats: Arc<Stats>,
    observer: Option<Arc<dyn ReconcileObserver>>,
}

enum Outcome<E: std::error::Error + 'static> {
    Done(Result<Action, ReconcileError<E>>, Duration),
    TimedOut,
}

impl<K, R> Controller<K, R>
where
    K: Clone + Eq + Hash + Display + Debug + Send + Sync + 'static,
    R: Reconciler<K>,
{
    /// A controller named `name` (used in logs and metrics).
    pub fn new(name: &'static str, reconciler: R, config: Config) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Controller {
            name,
            reconciler: Arc::new(reconciler),
            config,
            receiver,
            handle: Handle { sender },
            stats: Arc::default(),
            observer: None,
        }
    }

    /// Tells `observer` about every finished reconcile.
    #[must_use]
    pub fn observed_by(mut self, observer: Arc<dyn ReconcileObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// A handle for requesting reconciles.
    #[must_use]
    pub fn handle(&self) -> Handle<K> {
        self.handle.clone()
    }

    /// The controller's counters.
    #[must_use]
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Runs until `shutdown` is cancelled, then drains.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut heartbeat = tokio::time::interval(HEARTBEAT_PERIOD);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut scheduler: Scheduler<K> = Scheduler::default();
        let mut ready: VecDeque<K> = VecDeque::new();
        let mut ready_set: HashSet<K> = HashSet::new();
        let mut running: HashSet<K> = HashSet::new();
        let mut rerun: HashSet<K> = HashSet::new();
        let mut attempts: HashMap<K, u32> = HashMap::new();
        let mut tasks: JoinSet<(K, Outcome<R::Error>)> = JoinSet::new();
        loop {
            while running.len() < self.config.max_concurrency.max(1) {
                let Some(key) = ready.pop_front() else { break };
                ready_set.remove(&key);
                running.insert(key.clone());
                self.spawn(&mut tasks, key);
            }
            self.record(&scheduler, ready.len(), running.len());
            let next_deadline = scheduler.next_deadline();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    let (key, outcome) = match joined {
                        Ok(result) => result,
                        Err(error) => {
                            tracing::error!(controller = self.name, %error, "reconcile task panicked");
                            continue;
                        }
                    };
                    running.remove(&key);
                    self.settle(&mut scheduler, &mut attempts, key.clone(), outcome);
                    if rerun.remove(&key) {
                        scheduler.schedule(key, Instant::now());
                    }
                }
                Some(request) = self.receiver.recv() => {
                    let (key, at) = match request {
                        Request::Trigger(key) => (key, Instant::now() + self.config.debounce),
                        Request::At(key, at) => (key, at),
                    };
                    scheduler.schedule(key, at);
                }
                _ = heartbeat.tick() => {}
                () = sleep_until_option(next_deadline), if next_deadline.is_some() => {
                    while let Some(key) = scheduler.pop_due(Instant::now()) {
                        if running.contains(&key) {
                            rerun.insert(key);
                        } else if ready_set.insert(key.clone()) {
                            ready.push_back(key);
                        }
                    }
                }
            }
        }
        self.drain(tasks).await;
    }

    fn spawn(&self, tasks: &mut JoinSet<(K, Outcome<R::Error>)>, key: K) {
        let reconciler = self.reconciler.clone();
        let timeout = self.config.reconcile_timeout;
        let span = tracing::info_span!("reconcile", controller = self.name, key = %key);
        tasks.spawn(
            async move {
                let started = Instant::now();
                let outcome =
                    match tokio::time::timeout(timeout, reconciler.reconcile(key.clone())).await {
                        Ok(result) => Outcome::Done(result, started.elapsed()),
                        Err(_) => Outcome::TimedOut,
                    };
                (key, outcome)
            }
            .instrument(span),
        );
    }

    fn settle(
        &self,
        scheduler: &mut Scheduler<K>,
        attempts: &mut HashMap<K, u32>,
        key: K,
        outcome: Outcome<R::Error>,
    ) {
        self.stats.reconciles.fetch_add(1, Ordering::Relaxed);
        if let Some(observer) = &self.observer {
            let (duration, how) = match &outcome {
                Outcome::Done(Ok(_), duration) => (*duration, Finished::Ok),
                Outcome::Done(Err(_), duration) => (*duration, Finished::Error),
                Outcome::TimedOut => (self.config.reconcile_timeout, Finished::TimedOut),
            };
            observer.finished(self.name, duration, how);
        }
        let now = Instant::now();
        match outcome {
            Outcome::Done(Ok(action), _) => {
                attempts.remove(&key);
                if let Some(delay) = action.requeue_after() {
                    scheduler.schedule(key, now + delay);
                }
            }
            Outcome::Done(Err(ReconcileError::Terminal(error)), _) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                attempts.remove(&key);
                tracing::warn!(controller = self.name, %key, error = %error_chain(&error), "reconcile failed; not retrying until something changes");
            }
            failed => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let attempt = attempts.entry(key.clone()).or_insert(0);
                let delay = self.config.backoff.delay(*attempt);
                *attempt = attempt.saturating_add(1);
                match failed {
                    Outcome::Done(Err(ReconcileError::Transient(error)), _) => {
                        tracing::debug!(controller = self.name, %key, error = %error_chain(&error), retry_in = ?delay, "reconcile failed; retrying");
                    }
                    _ => {
                        tracing::warn!(controller = self.name, %key, timeout = ?self.config.reconcile_timeout, retry_in = ?delay, "reconcile timed out; retrying")
                    }
                }
                scheduler.schedule(key, now + delay);
            }
        }
    }

    fn record(&self, scheduler: &Scheduler<K>, ready: usize, running: usize) {
        self.stats
            .queue_depth
            .store(scheduler.len() + ready, Ordering::Relaxed);
        self.stats.in_flight.store(running, Ordering::Relaxed);
        self.stats.heartbeat.beat();
    }

    async fn drain(&self, mut tasks: JoinSet<(K, Outcome<R::Error>)>) {
        let deadline = Instant::now() + self.config.drain_deadline;
        while !tasks.is_empty() {
            if tokio::time::timeout_at(deadline, tasks.join_next())
                .await
                .is_err()
            {
                tracing::warn!(
                    controller = self.name,
                    left = tasks.len(),
                    "drain deadline passed; aborting in-flight reconciles"
                );
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
        tracing::debug!(controller = self.name, "controller stopped");
    }
}

async fn sleep_until_option(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

/// An error and its causes on one line (`a: b: c`), for logs and status.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
