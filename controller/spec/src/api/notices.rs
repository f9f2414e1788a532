//! `GET /v1/notices` and `POST /v1/notices/seen`: the warnings and notices the controller sent
//! to the calling user (by peer credentials), kept for users who were away.

use serde::{Deserialize, Serialize};

use super::ApiTime;

/// Notices kept per user (the oldest go first).
pub const MAX_NOTICES_PER_USER: usize = 50;

/// One notice as the controller sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeView {
    /// Increases with every notice of the user; `POST /v1/notices/seen` takes it.
    pub id: u64,
    /// When it was sent.
    pub at: ApiTime,
    /// The event it was sent with (`lifecycle.idle_warning`, `lifecycle.idle_stop`,
    /// `lifecycle.manual_stop`, `lifecycle.exempt_notice`, …).
    pub event_type: String,
    /// The container's name.
    pub container: String,
    /// Its short id.
    pub container_id: String,
    /// The text as the terminals and the alert file got it.
    pub message: String,
    /// Marked seen by an earlier `ds01ctl notices`.
    pub seen: bool,
}

/// `GET /v1/notices[?all=true]`: the caller's notices not yet seen (all kept ones with
/// `all=true`), oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeList {
    /// The user they are for.
    pub user: String,
    /// The notices, oldest first.
    pub notices: Vec<NoticeView>,
}

/// `POST /v1/notices/seen`: marks the caller's notices up to `upTo` (inclusive) seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoticesSeenRequest {
    /// The highest id shown.
    pub up_to: u64,
}

/// The answer to `POST /v1/notices/seen`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticesSeenResponse {
    /// How many were newly marked seen.
    pub marked: usize,
}
