//! The control API: HTTP/1.1 on a Unix socket (mode 0666; authorization by peer credentials),
//! versioned under `/v1`, errors as JSON with a stable shape.

mod auth;
mod events;
mod limits;
mod listener;
mod routes;
mod views;

use std::{path::Path, sync::Arc};

use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

pub use auth::AdminPolicy;
pub use routes::ApiState;

/// Who is on the other end of a connection (SO_PEERCRED, read once at accept).
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// Effective uid.
    pub uid: Option<u32>,
    /// Effective gid.
    pub gid: Option<u32>,
    /// Pid at connect time (logs and supplementary groups only: pids can be reused).
    pub pid: Option<i32>,
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
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::remove_file(socket) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
    tracing::info!(socket = %socket.display(), "control API listening");
    let _ = bound.send(());
    listener::accept_loop(listener, routes::router(state), shutdown).await;
    Ok(())
}
