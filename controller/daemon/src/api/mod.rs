//! The control API: HTTP/1.1 on a Unix socket (mode 0666; authorization by peer credentials),
//! versioned under `/v1`, errors as JSON with a stable shape.

mod apply;
mod auth;
mod budget;
mod events;
mod failure;
mod filters;
mod gate;
mod gpu_views;
mod history;
mod limits;
mod listener;
mod lookup;
mod notices;
mod redact;
mod routes;
mod state;
mod status;
mod stop;
mod views;

use std::{path::Path, sync::Arc};

use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

pub use auth::AdminPolicy;
pub use state::ApiState;

/// Who is on the other end of a connection: SO_PEERCRED read once at accept, the name and
/// admin status resolved then (see `auth`).
#[derive(Clone, Debug)]
pub struct Peer {
    /// Effective uid.
    pub uid: Option<u32>,
    /// Effective gid.
    pub gid: Option<u32>,
    /// Pid at connect time (logs only: pids can be reused).
    pub pid: Option<i32>,
    /// User name (the uid as text when it has none, `?` without credentials).
    pub name: String,
    /// Root or a member of the admin group.
    pub admin: bool,
}

impl Peer {
    /// Whose details this peer may see: `None` for everything (admins), else their own name.
    #[must_use]
    pub fn viewer(&self) -> Option<&str> {
        (!self.admin).then_some(self.name.as_str())
    }
}

/// Binds the socket (replacing a stale one), makes it usable by every local user, and serves
/// until `shutdown`.
///
/// # Errors
/// When the socket cannot be bound.
pub async fn serve(
    socket: &Path,
    state: Arc<ApiState>,
    shutdown: CancellationToken,
    bound: tokio::sync::oneshot::Sender<()>,
) -> std::io::Result<()> {
    if let Some(parent) = socket.parent().filter(|parent| !parent.exists()) {
        std::fs::create_dir_all(parent)?;
        // Every local user must reach the socket, whatever the umask (027 at start).
        std::fs::set_permissions(parent, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    match std::fs::remove_file(socket) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let listener = UnixListener::bind(socket)?;
    let admin = state.admin.clone();
    std::fs::set_permissions(socket, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
    tracing::info!(socket = %socket.display(), "control API listening");
    let _ = bound.send(());
    listener::accept_loop(listener, routes::router(state), admin, shutdown).await;
    Ok(())
}
