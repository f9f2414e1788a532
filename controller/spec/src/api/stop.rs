//! `POST /v1/containers/{name-or-id}/stop`: an admin stops a container, with a reason, the
//! grace period and the owner's notice of a policy stop.

use serde::{Deserialize, Serialize};

/// Longest reason accepted, in characters.
pub const MAX_STOP_REASON_CHARS: usize = 500;

/// The request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopRequest {
    /// Why, for the event and the owner's notice (1 to 500 characters, no control characters).
    pub reason: String,
    /// Stop it even when a protected label matches.
    #[serde(default)]
    pub force: bool,
}

/// The answer (202): the stop was issued and runs in the background; its outcome is the
/// `lifecycle.manual_stop` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopResponse {
    /// The container's name.
    pub container: String,
    /// Its short id.
    pub id: String,
    /// Its owner (who is notified).
    pub user: String,
    /// SIGTERM-to-SIGKILL grace period.
    pub grace: String,
    /// Where the grace period comes from (`stopGracePeriod from users.alice in
    /// containerlifecyclepolicy/lab`, or the built-in default).
    pub grace_source: String,
    /// A `--dry-run` controller records the stop and changes nothing.
    pub dry_run: bool,
}
