//! Wire types of the control API (`/v1/…` on the controller's Unix socket), shared by the
//! daemon and `ds01ctl` so both sides agree by construction: apply and errors here, one module
//! per resource view. JSON field names are a contract (`-o json` is read by scripts): fields
//! are added, never renamed.

mod condition;
mod containers;
mod events;
mod gpu_access;
mod gpus;
mod notices;
mod processes;
mod status;
mod stop;
mod time;

pub use condition::{Condition, ConditionStatus};
pub use containers::{
    ContainerDetail, ContainerEvent, ContainerGpuProcess, ContainerLifecycleView, ContainerList,
    ContainerSummary, ExemptionView, GpuAccessView, LifecycleLimitsView, MountView, SignalView,
    SignalsView, SourcedValue,
};
pub use events::{
    DEFAULT_EVENT_LIMIT, EventEnvelope, EventQuery, EventSummary, INCOMPLETE_HEADER,
    MAX_EVENT_LIMIT, OMITTED_HEADER,
};
pub use gpu_access::{GpuClaimView, GpuGrantView, GpuGrantWritten, OwnerConflictView};
pub use gpus::{GpuList, GpuView, MigDeviceView, ProcessCounts};
pub use notices::{
    MAX_NOTICES_PER_USER, NoticeList, NoticeView, NoticesSeenRequest, NoticesSeenResponse,
};
pub use processes::{ProcessList, ProcessView};
pub use status::{
    ControllerHealth, Counts, DockerHealthView, GpuBackendView, ResourceView, StatusView,
};
pub use stop::{MAX_STOP_REASON_CHARS, StopRequest, StopResponse};
pub use time::ApiTime;

use serde::{Deserialize, Serialize};

use crate::Diagnostic;

/// Largest request body the daemon accepts (from root and the admin group).
pub const MAX_REQUEST_BYTES: usize = 8 << 20;
/// Largest request body the daemon accepts from anyone else (their dry runs): a spec set of
/// a few hundred kilobytes is already far larger than any real one.
pub const MAX_NON_ADMIN_REQUEST_BYTES: usize = 256 << 10;

/// One spec file as the client read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path as the user gave it (for error messages).
    pub name: String,
    /// YAML text.
    pub text: String,
}

/// `POST /v1/apply`, `POST /v1/diff`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyRequest {
    /// The files of the set.
    pub files: Vec<SourceFile>,
    /// Validate and report without storing.
    #[serde(default)]
    pub dry_run: bool,
}

/// The outcome for one resource of an apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResult {
    /// `kind/name`, lowercase kind.
    pub resource: String,
    /// `created`, `configured` or `unchanged`.
    pub outcome: String,
    /// Generation after the apply (what it would be, in a dry run).
    pub generation: u64,
}

/// Response of `POST /v1/apply`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResponse {
    /// One entry per resource, in submission order.
    pub results: Vec<ApplyResult>,
    /// Whether nothing was stored.
    pub dry_run: bool,
    /// With a dry run of a lifecycle policy: what it would do to the containers there now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preview: Vec<PreviewAction>,
    /// With a dry run: what the preview could not take into account, and why (a non-admin's
    /// dry run reads no server file, so `membersFile` groups are previewed as empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preview_notes: Vec<String>,
}

/// One action a policy would take, as previewed by `apply --dry-run`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewAction {
    /// The policy.
    pub resource: String,
    /// Container name.
    pub container: String,
    /// Its owner.
    pub user: String,
    /// `stop`, `stop and remove`, `remove`.
    pub action: String,
    /// When (RFC 3339), or the earliest time for idle stops.
    pub at: String,
    /// Why, with the limit and its source.
    pub reason: String,
}

/// The error body of every failed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ApiError,
}

/// A failed request: a stable machine code, a sentence, and spec diagnostics when relevant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// `invalid_specs`, `forbidden`, `bad_request`, `not_found`, `payload_too_large`, `internal`,
    /// `timeout`, `too_many_connections`, `too_much_in_flight`, `busy`; for a stop:
    /// `not_running`, `own_container`, `protected`, `in_progress`, `cannot_record`.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// Every problem of an invalid spec set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
}
