//! Fixtures of the `ds01ctl` tests: a controller, spec files, a small policy.

use std::{os::unix::fs::PermissionsExt, time::Duration};

use crate::{Daemon, DaemonOptions};

/// How long CLI tests wait for the controller.
pub const WAIT: Duration = Duration::from_secs(15);

/// A small GpuOrphanPolicy named `orphans`.
pub const ORPHANS: &str = "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata:\n  name: orphans\nspec:\n  gracePeriod: 60s\n";

/// A controller, once its socket accepts connections.
#[must_use]
pub fn started() -> Daemon {
    let daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    daemon
}

/// Writes `text` to `directory/name`; returns the path.
pub fn spec_file(directory: &std::path::Path, name: &str, text: &str) -> String {
    let path = directory.join(name);
    std::fs::write(&path, text).expect("write spec");
    path.display().to_string()
}

/// Runs a command as uid/gid 65534 (`nobody`) without supplementary groups.
pub const NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// A controller started with `options` whose socket every local user can reach (the socket
/// lives in a private temporary directory; `/run/ds01` is traversable the same way).
#[must_use]
pub fn started_for_everyone(options: DaemonOptions) -> Daemon {
    let daemon = Daemon::start(options);
    daemon.wait_for_socket(Duration::from_secs(30));
    let _ = std::fs::set_permissions(daemon.root(), std::fs::Permissions::from_mode(0o755));
    daemon
}
