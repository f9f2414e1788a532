//! The notices kept for users who were away: every warning, exempt notice and "was stopped"
//! notice sent to a container's owner is also kept here, per user, in the controller state
//! file (section `notices`), until `ds01ctl notices` shows it.
//!
//! # Guarantees
//! - Bounded: the last [`MAX_NOTICES_PER_USER`] notices per user, [`MAX_USERS`] users (the user
//!   whose newest notice is oldest goes first), each text cut at [`MAX_MESSAGE_BYTES`].
//! - Ids increase per user and are never reused, so marking "seen up to id N" never marks a
//!   notice the user was not shown.
//! - A state file that cannot be written loses nothing already delivered; the notice stays in
//!   memory and the failure is logged.

use std::sync::{Arc, Mutex, PoisonError};

use ds01_spec::{
    EventType,
    api::{ApiTime, MAX_NOTICES_PER_USER, NoticeView},
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::state_file::{Section, StateFile};

/// The state file section.
pub const SECTION: &str = "notices";
/// Users kept at most.
pub const MAX_USERS: usize = 1000;
/// Longest text kept, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 2000;

/// One kept notice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredNotice {
    /// Per-user id.
    pub id: u64,
    /// When it was sent.
    pub at: Timestamp,
    /// The event it was sent with.
    pub event_type: EventType,
    /// Container name.
    pub container: String,
    /// Short id.
    pub container_id: String,
    /// Text.
    pub message: String,
    /// Shown by `ds01ctl notices`.
    #[serde(default)]
    pub seen: bool,
}

/// One user's notices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserNotices {
    /// The id the next notice gets.
    pub next_id: u64,
    /// Oldest first.
    pub notices: Vec<StoredNotice>,
}

/// A notice to keep.
#[derive(Clone, Debug)]
pub struct Notice<'a> {
    /// The owner.
    pub user: &'a str,
    /// The event it goes with.
    pub event_type: EventType,
    /// Container name.
    pub container: &'a str,
    /// Short id.
    pub container_id: &'a str,
    /// Text.
    pub message: &'a str,
    /// When.
    pub at: Timestamp,
}

/// The store (cheap to clone; one lock for every read-modify-write).
#[derive(Clone, Debug)]
pub struct NoticeStore {
    section: Section<UserNotices>,
    lock: Arc<Mutex<()>>,
    max_users: usize,
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl NoticeStore {
    /// The store in `file`.
    #[must_use]
    pub fn new(file: &Arc<StateFile>) -> Self {
        NoticeStore {
            section: file.section(SECTION),
            lock: Arc::default(),
            max_users: MAX_USERS,
        }
    }

    /// Keeps `notice` for its user (blocking: writes the state file). Owners the controller
    /// could not name (`unknown`) get none.
    pub fn keep(&self, notice: &Notice<'_>) {
        if notice.user.is_empty() || notice.user == "unknown" {
            return;
        }
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut kept = self.section.get(notice.user).unwrap_or_default();
        let mut changes = Vec::new();
        if kept.notices.is_empty() && self.section.keys().len() >= self.max_users {
            changes.extend(self.least_recent_user().map(|user| (user, None)));
        }
        kept.notices.push(StoredNotice {
            id: kept.next_id,
            at: notice.at,
            event_type: notice.event_type,
            container: notice.container.to_owned(),
            container_id: notice.container_id.to_owned(),
            message: cut(notice.message),
            seen: false,
        });
        kept.next_id += 1;
        let excess = kept.notices.len().saturating_sub(MAX_NOTICES_PER_USER);
        kept.notices.drain(..excess);
        changes.push((notice.user.to_owned(), Some(&kept)));
        if let Err(error) = self.section.apply(changes) {
            tracing::warn!(%error, user = notice.user, "cannot keep the notice in the state file");
        }
    }

    /// The user whose newest notice is the oldest.
    fn least_recent_user(&self) -> Option<String> {
        self.section.keys().into_iter().min_by_key(|user| {
            self.section
                .get(user)
                .and_then(|kept| kept.notices.last().map(|notice| notice.at))
        })
    }

    /// `user`'s notices, oldest first: the unseen ones, or all kept with `all`.
    #[must_use]
    pub fn list(&self, user: &str, all: bool) -> Vec<NoticeView> {
        self.section
            .get(user)
            .unwrap_or_default()
            .notices
            .into_iter()
            .filter(|notice| all || !notice.seen)
            .map(|notice| NoticeView {
                id: notice.id,
                at: ApiTime(notice.at),
                event_type: notice.event_type.as_str().to_owned(),
                container: notice.container,
                container_id: notice.container_id,
                message: notice.message,
                seen: notice.seen,
            })
            .collect()
    }

    /// Marks `user`'s notices up to `up_to` seen (blocking: writes the state file when any
    /// changed); returns how many were newly marked.
    ///
    /// # Errors
    /// When the state file cannot be written.
    pub fn mark_seen(&self, user: &str, up_to: u64) -> std::io::Result<usize> {
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mut kept) = self.section.get(user) else {
            return Ok(0);
        };
        let mut marked = 0;
        for notice in kept
            .notices
            .iter_mut()
            .filter(|notice| notice.id <= up_to && !notice.seen)
        {
            notice.seen = true;
            marked += 1;
        }
        if marked > 0 {
            self.section.set(user, &kept)?;
        }
        Ok(marked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(directory: &std::path::Path) -> NoticeStore {
        let (file, _) = StateFile::open(directory).expect("state");
        NoticeStore {
            max_users: 5,
            ..NoticeStore::new(&Arc::new(file))
        }
    }

    fn notice<'a>(user: &'a str, message: &'a str, second: i64) -> Notice<'a> {
        Notice {
            user,
            event_type: EventType::IdleWarning,
            container: "box",
            container_id: "0123456789ab",
            message,
            at: Timestamp::from_second(1_800_000_000 + second).expect("time"),
        }
    }

    #[test]
    fn unseen_notices_are_listed_oldest_first_then_marked_seen_up_to_the_id_shown() {
        let directory = tempfile::tempdir().expect("tempdir");
        let store = store(directory.path());
        store.keep(&notice("alice", "first", 1));
        store.keep(&notice("alice", "second", 2));
        store.keep(&notice("bob", "for bob", 3));
        let shown = store.list("alice", false);
        assert_eq!(
            shown.iter().map(|n| n.message.as_str()).collect::<Vec<_>>(),
            ["first", "second"]
        );
        // A notice sent after the listing is not marked with the ones shown.
        store.keep(&notice("alice", "third", 4));
        assert_eq!(store.mark_seen("alice", shown[1].id).expect("mark"), 2);
        let unseen = store.list("alice", false);
        assert_eq!(unseen.len(), 1);
        assert_eq!(unseen[0].message, "third");
        assert_eq!(store.list("alice", true).len(), 3);
        assert_eq!(
            store.list("bob", false).len(),
            1,
            "another user's are apart"
        );
        assert_eq!(store.mark_seen("alice", shown[1].id).expect("again"), 0);
        // Kept across a restart (the state file).
        let reopened = self::store(directory.path());
        assert_eq!(reopened.list("alice", false).len(), 1);
    }

    #[test]
    fn the_store_is_bounded_per_user_in_users_and_in_text_and_ids_are_never_reused() {
        let directory = tempfile::tempdir().expect("tempdir");
        let store = store(directory.path());
        for second in 0..60 {
            store.keep(&notice("alice", "x", second));
        }
        let kept = store.list("alice", true);
        assert_eq!(kept.len(), MAX_NOTICES_PER_USER);
        assert_eq!(kept[0].id, 10, "the oldest went first");
        assert_eq!(kept.last().map(|n| n.id), Some(59));
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        store.keep(&notice("bob", &long, 0));
        assert!(store.list("bob", false)[0].message.len() <= MAX_MESSAGE_BYTES + 3);
        store.keep(&notice("unknown", "nobody to tell", 0));
        assert!(store.list("unknown", true).is_empty());
        let users: Vec<String> = (0..5).map(|n| format!("u{n}")).collect();
        for (n, user) in users.iter().enumerate() {
            store.keep(&notice(user, "y", 100 + i64::try_from(n).expect("small")));
        }
        assert_eq!(store.section.keys().len(), 5);
        assert!(
            store.list("bob", true).is_empty(),
            "the user with the oldest newest notice went first"
        );
        assert_eq!(store.list(&users[4], false).len(), 1);
    }
}
