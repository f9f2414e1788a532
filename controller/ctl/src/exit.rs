//! Exit statuses of `ds01ctl`, per the contract: 0 ok, 1 user or spec error, 2 unexpected or
//! daemon unreachable, 64 usage.

use std::process::ExitCode;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success,
    /// The user's input or specs are wrong.
    UserError,
    /// Something unexpected failed, or the daemon is unreachable.
    Failure,
    /// The command line itself is wrong.
    Usage,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(match status {
            ExitStatus::Success => 0,
            ExitStatus::UserError => 1,
            ExitStatus::Failure => 2,
            ExitStatus::Usage => 64,
        })
    }
}
