//! The event history behind `GET /v1/events` and `/v1/events/summary`: the log on disk,
//! rotated files included (or the in-memory ring when there is no log file), filtered, the
//! newest `limit` kept, counted. Blocking and bounded: it streams the files, keeps at most
//! `limit` lines and at most [`MAX_ANSWER_BYTES`] of them, stops at a deadline, and runs on a
//! blocking thread, one read per user and [`MAX_CONCURRENT_READS`] in all at a time.

use std::{
    collections::{HashSet, VecDeque},
    path::PathBuf,
    time::{Duration, Instant},
};

use ds01_spec::api::{EventEnvelope, EventQuery, EventSummary};

use super::gate::Gate;

/// History reads running at once, all users together.
pub const MAX_CONCURRENT_READS: usize = 4;
/// Bytes of event lines one answer holds at most: the newest lines that fit are sent, the rest
/// counted as omitted (an answer a client does not read must not hold much memory).
pub const MAX_ANSWER_BYTES: usize = 4 << 20;
/// How long one history read may take before it answers with what it found.
pub const READ_DEADLINE: Duration = Duration::from_secs(20);
/// Distinct users counted separately in a summary; the rest count as `(other)`.
const MAX_SUMMARY_USERS: usize = 1000;
/// Lines kept to recognise, in a follow stream, events already sent from the backlog (those of
/// its last two seconds): at most this many, and at most [`MAX_RECENT_BYTES`] of them.
const MAX_RECENT_KEPT: usize = 1000;
/// Bytes of such lines kept at most (a follow stream keeps them as long as it lasts).
const MAX_RECENT_BYTES: usize = 256 << 10;

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
    let mut held_bytes = 0_usize;
    let mut recent_bytes = 0_usize;
    let mut recent: VecDeque<(jiff::Timestamp, String)> = VecDeque::new();
    let mut on_line = |line: &str| {
        let Ok(event) = serde_json::from_str::<EventEnvelope>(line) else {
            return;
        };
        if !selection.matches(&event) {
            return;
        }
        count(&mut history.summary, &event);
        held_bytes += line.len();
        while history.lines.len() >= limit || held_bytes > MAX_ANSWER_BYTES {
            let Some(oldest) = history.lines.pop_front() else {
                break;
            };
            held_bytes -= oldest.len();
            history.omitted += 1;
        }
        if held_bytes > MAX_ANSWER_BYTES {
            // A single line larger than the whole answer: counted, not sent.
            held_bytes -= line.len();
            history.omitted += 1;
        } else {
            history.lines.push_back(line.to_owned());
        }
        if !selection.query.follow {
            return;
        }
        if let Ok(at) = event.timestamp.parse::<jiff::Timestamp>() {
            recent_bytes += line.len();
            recent.push_back((at, line.to_owned()));
            let newest = at;
            while recent.front().is_some_and(|(first, _)| {
                newest.duration_since(*first) > jiff::SignedDuration::from_secs(2)
            }) || recent.len() > MAX_RECENT_KEPT
                || recent_bytes > MAX_RECENT_BYTES
            {
                let Some((_, dropped)) = recent.pop_front() else {
                    break;
                };
                recent_bytes -= dropped.len();
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

/// History reads: one per user at a time (until its answer's backlog is handed over), and
/// [`MAX_CONCURRENT_READS`] users at once; root is not counted.
pub static READS: Gate = Gate::new(MAX_CONCURRENT_READS);

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

    #[test]
    fn an_answer_holds_at_most_its_byte_cap_of_the_newest_lines() {
        let padding = "x".repeat(3000);
        let lines: Vec<String> = (0..3000)
            .map(|index| {
                serde_json::json!({"timestamp": format!("2026-01-01T10:00:00.{index:03}Z"),
                    "event_type": "spec.applied", "schema_version": "1", "source": "s",
                    "details": {"n": index, "pad": padding}})
                .to_string()
            })
            .collect();
        let far = Instant::now() + Duration::from_secs(60);
        let query = EventQuery {
            limit: Some(10_000),
            ..EventQuery::default()
        };
        let history = read(&Source::Memory(lines.clone()), &selection(query, None), far);
        let held: usize = history.lines.iter().map(String::len).sum();
        assert!(held <= MAX_ANSWER_BYTES, "{held}");
        assert!(held > MAX_ANSWER_BYTES - 4000, "as many as fit: {held}");
        assert_eq!(history.lines.back(), lines.last(), "the newest kept");
        assert_eq!(
            history.omitted + history.lines.len() as u64,
            3000,
            "the rest counted"
        );
        assert_eq!(history.summary.total, 3000);
    }
}
