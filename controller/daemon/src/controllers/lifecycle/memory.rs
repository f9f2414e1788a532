//! What the lifecycle planner remembers per container across passes and restarts (persisted in
//! the controller state file): the idle episode, the run, warnings sent, notices given, and a
//! stop whose event is not written yet.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Which limit a warning, stop or notice is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LimitKind {
    /// `idleTimeout`.
    Idle,
    /// `maxRuntime`.
    Runtime,
}

impl LimitKind {
    /// `idle` or `runtime`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitKind::Idle => "idle",
            LimitKind::Runtime => "runtime",
        }
    }
}

/// What the planner remembers per container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Start of the current idle episode.
    pub idle_since: Option<Timestamp>,
    /// `warnAt.idle` warnings sent in this episode (indexes).
    pub idle_warned: Vec<usize>,
    /// `warnBefore.idle` warnings sent in this episode (indexes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idle_warned_before: Vec<usize>,
    /// The run the runtime warnings belong to (its `StartedAt`).
    pub run: Option<Timestamp>,
    /// `warnAt.runtime` warnings sent in this run.
    pub runtime_warned: Vec<usize>,
    /// `warnBefore.runtime` warnings sent in this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_warned_before: Vec<usize>,
    /// `lifecycle.exempt` was reported.
    pub exempt_reported: bool,
    /// An exempt owner was told about this idle episode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idle_exempt_noticed: bool,
    /// An exempt owner was told about this run passing its runtime limit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub runtime_exempt_noticed: bool,
    /// A stop issued whose event is not written yet (see `ledger`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrecorded_stop: Option<UnrecordedStop>,
    /// Kept in dry run: its warnings and notices were decided, never delivered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Stops and removals a dry run already recorded, while they stay the same decision (see
    /// `dry_run_once`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run_reported: Vec<String>,
}

impl Memory {
    /// This memory for a pass in `dry_run` or not: warnings and notices a dry run decided were
    /// never delivered, so enforcement does not inherit them (idle time and the run are kept).
    #[must_use]
    pub fn for_mode(&self, dry_run: bool) -> Memory {
        let mut memory = self.clone();
        if memory.dry_run != dry_run {
            memory.dry_run = dry_run;
            memory.idle_warned.clear();
            memory.idle_warned_before.clear();
            memory.runtime_warned.clear();
            memory.runtime_warned_before.clear();
            memory.idle_exempt_noticed = false;
            memory.runtime_exempt_noticed = false;
            memory.exempt_reported = false;
            memory.dry_run_reported.clear();
        }
        memory
    }

    /// The idle episode is over (activity, a stop, an exit).
    pub fn end_episode(&mut self) {
        self.idle_since = None;
        self.idle_warned.clear();
        self.idle_warned_before.clear();
        self.idle_exempt_noticed = false;
    }

    /// A new run began (a start or restart): runtime warnings and the episode start over.
    pub fn begin_run(&mut self, started: Timestamp) {
        self.run = Some(started);
        self.runtime_warned.clear();
        self.runtime_warned_before.clear();
        self.runtime_exempt_noticed = false;
        self.end_episode();
    }
}

/// The event of a stop, remembered before the stop is issued and forgotten once written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnrecordedStop {
    /// `lifecycle.idle_stop` or `lifecycle.runtime_stop`.
    pub event: ds01_spec::EventType,
    /// The owner.
    pub user: String,
    /// The event's details, without its outcome.
    pub details: serde_json::Value,
}
