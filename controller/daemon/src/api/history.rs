//! The event history behind `GET /v1/events` and `/v1/events/summary`: the log on disk,
//! rotated files included (or the in-memory ring when there is no log file), filtered, the
//! newest `limit` kept, counted. Blocking and bounded: it streams the files, keeps at most
//! `limit` lines, stops at a deadline, and runs on a blocking thread, one read per user and
//! [`MAX_CONCURRENT_READS`] in all at a time.

use std::{
    collections::{BTreeSet, HashSet, VecDeque},
    path::PathBuf,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use ds01_spec::api::{EventEnvelope, EventQuery, EventSummary};

/// History reads running at once, all users together.
pub const MAX_CONCURRENT_READS: usize = 4;
/// How long one history read may take before it answers with what it found.
pub const READ_DEADLINE: Duration = Duration::from_secs(20);
/// Distinct users counted separately in a summary; the rest count as `(other)`.
const MAX_SUMMARY_USERS: usize = 1000;
/// Lines kept to recognise, in a follow stream, events already sent from the backlog.
const MAX_RECENT_KEPT: usize = 10_000;

/// Where the history comes from.
pub enum Source {
    /// The event log file (rotated files beside it are read too).
    Log(PathBuf),
    /// Lines kept in memory (no log file).
    Memory(Vec<String>),
}

/// What a read found.
#[derive(Debug, Default)]
pub struct History {
    /// The newest matching lines (without newline), oldest first.
    pub lines: VecDeque<String>,
    /// Matching lines left out because of the limit.
    pub omitted: u64,
    /// Counts of every matching event.
    pub summary: EventSummary,
    /// Matching lines of the last seconds read, to skip their duplicates in a follow stream.
    pub recent: HashSet<String>,
}

/// Which events a reader may see, and which they asked for.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The query's filters.
    pub query: EventQuery,
    /// A non-admin sees only events about themselves.
    pub only_user: Option<String>,
}

impl Selection {
    /// Whether `event` is selected.
    #[must_use]
    pub fn matches(&self, event: &EventEnvelope) -> bool {
        self.only_user
            .as_deref()
            .is_none_or(|me| event.user.as_deref() == Some(me))
            && self.query.matches(event)
    }
}

/// Reads and selects, blocking, until done or `deadline`.
#[must_use]
pub fn read(source: &Source, selection: &Selection, deadline: Instant) -> History {
    let limit = selection.query.effective_limit();
    let mut history = History::default();
    let mut recent: VecDeque<(jiff::Timestamp, String)> = VecDeque::new();
    let mut on_line = |line: &str| {
        let Ok(event) = serde_json::from_str::<EventEnvelope>(line) else {
            return;
        };
        if !selection.matches(&event) {
            return;
        }
        count(&mut history.summary, &event);
        if history.lines.len() == limit {
            history.lines.pop_front();
            history.omitted += 1;
        }
        history.lines.push_back(line.to_owned());
        if let Ok(at) = event.timestamp.parse::<jiff::Timestamp>() {
            recent.push_back((at, line.to_owned()));
            let newest = at;
            while recent.front().is_some_and(|(first, _)| {
                newest.duration_since(*first) > jiff::SignedDuration::from_secs(2)
            }) || recent.len() > MAX_RECENT_KEPT
            {
                recent.pop_front();
            }
        }
    };
    match source {
        Source::Log(path) => {
            let outcome =
                ds01_host::event_history::scan(path, selection.query.since, deadline, &mut on_line);
            if outcome.timed_out {
                history.summary.incomplete = Some("time".to_owned());
            }
            for error in &outcome.errors {
                tracing::warn!(%error, "part of the event history could not be read");
            }
        }
        Source::Memory(lines) => lines.iter().for_each(|line| on_line(line)),
    }
    history.recent = recent.into_iter().map(|(_, line)| line).collect();
    history
}

fn count(summary: &mut EventSummary, event: &EventEnvelope) {
    summary.total += 1;
    *summary.by_type.entry(event.event_type.clone()).or_default() += 1;
    let user = event.user.clone().unwrap_or_else(|| "-".to_owned());
    let key = if summary.by_user.contains_key(&user) || summary.by_user.len() < MAX_SUMMARY_USERS {
        user
    } else {
        "(other)".to_owned()
    };
    *summary.by_user.entry(key).or_default() += 1;
    if summary.first.is_none() {
        summary.first = Some(event.timestamp.clone());
    }
    summary.last = Some(event.timestamp.clone());
}

/// A history read in progress for one user; ends the user's slot on drop.
pub struct ReadSlot {
    uid: Option<u32>,
    _permit: tokio::sync::SemaphorePermit<'static>,
}

static READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_READS);
static READERS: Mutex<BTreeSet<Option<u32>>> = Mutex::new(BTreeSet::new());

impl ReadSlot {
    /// A slot for `uid`, waiting up to `wait` for a free one; `None` when the user already
    /// reads or none frees up in time.
    pub async fn take(uid: Option<u32>, wait: Duration) -> Option<ReadSlot> {
        {
            let mut readers = READERS.lock().unwrap_or_else(PoisonError::into_inner);
            if readers.contains(&uid) {
                return None;
            }
            readers.insert(uid);
        }
        match tokio::time::timeout(wait, READS.acquire()).await {
            Ok(Ok(permit)) => Some(ReadSlot {
                uid,
                _permit: permit,
            }),
            _ => {
                READERS
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&uid);
                None
            }
        }
    }
}

impl Drop for ReadSlot {
    fn drop(&mut self) {
        READERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: &str, kind: &str, user: &str) -> String {
        serde_json::json!({"timestamp": at, "event_type": kind, "schema_version": "1",
            "user": user, "source": "ds01-controller", "details": {}})
        .to_string()
    }

    fn selection(query: EventQuery, only_user: Option<&str>) -> Selection {
        Selection {
            query,
            only_user: only_user.map(str::to_owned),
        }
    }

    #[test]
    fn the_newest_are_kept_the_rest_counted_and_non_admins_see_their_own() {
        let lines: Vec<String> = (0..10)
            .map(|second| {
                line(
                    &format!("2026-01-01T10:00:0{second}.000Z"),
                    if second % 2 == 0 {
                        "lifecycle.idle_stop"
                    } else {
                        "spec.applied"
                    },
                    if second < 5 { "alice" } else { "bob" },
                )
            })
            .collect();
        let far = Instant::now() + Duration::from_secs(60);
        let query = EventQuery {
            limit: Some(3),
            ..EventQuery::default()
        };
        let history = read(&Source::Memory(lines.clone()), &selection(query, None), far);
        assert_eq!(history.lines.len(), 3);
        assert_eq!(history.omitted, 7);
        assert!(history.lines[2].contains("10:00:09"));
        assert_eq!(history.summary.total, 10);
        assert_eq!(history.summary.by_type["lifecycle.idle_stop"], 5);
        assert_eq!(history.summary.by_user["bob"], 5);
        assert_eq!(
            history.summary.first.as_deref(),
            Some("2026-01-01T10:00:00.000Z")
        );

        let theirs = read(
            &Source::Memory(lines),
            &selection(EventQuery::default(), Some("alice")),
            far,
        );
        assert_eq!(theirs.summary.total, 5);
        assert!(theirs.lines.iter().all(|line| line.contains("alice")));
    }

    #[tokio::test]
    async fn one_read_per_user_at_a_time() {
        let first = ReadSlot::take(Some(4242), Duration::from_secs(1))
            .await
            .expect("first");
        assert!(
            ReadSlot::take(Some(4242), Duration::from_secs(1))
                .await
                .is_none()
        );
        let other = ReadSlot::take(Some(4343), Duration::from_secs(1)).await;
        assert!(other.is_some());
        drop(first);
        assert!(
            ReadSlot::take(Some(4242), Duration::from_secs(1))
                .await
                .is_some()
        );
    }
}
