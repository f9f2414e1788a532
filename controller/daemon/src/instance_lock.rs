//! One controller per state directory and per control socket: an advisory lock file next to
//! each, held for the life of the process and naming its holder.

use std::{
    fs::File,
    io::Read,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};

/// Why the locks could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("another ds01-controller ({holder}) already uses {what}: {path} is locked")]
    Held {
        /// `--state-dir /var/lib/ds01` or `--socket …`.
        what: String,
        /// The lock file.
        path: PathBuf,
        /// What the lock file says of its holder.
        holder: String,
    },
    /// The lock file could not be created or locked.
    #[error("cannot lock {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The held locks; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct InstanceLock {
    _held: Vec<Flock<File>>,
}

/// The lock file for the state directory.
#[must_use]
pub fn state_dir_lock(state_dir: &Path) -> PathBuf {
    state_dir.join("controller.lock")
}

/// The lock file for a socket path.
#[must_use]
pub fn socket_lock(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes every lock, each described (`--state-dir /var/lib/ds01`), or none.
///
/// # Errors
/// When one is held by another process, or cannot be created.
pub fn acquire(locks: &[(String, PathBuf)]) -> Result<InstanceLock, LockError> {
    let mut held = Vec::new();
    for (what, path) in locks {
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // The lock is held through a read-only descriptor: a writable one open for the life of
        // the process would keep the state directory's filesystem from being remounted
        // read-only (which the controller must survive, not prevent).
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(io)?;
        }
        let file = std::fs::File::open(path).map_err(io)?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    what: what.clone(),
                    path: path.clone(),
                    holder: if holder.is_empty() {
                        "a process that has not written its pid yet".to_owned()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err((_, errno)) => return Err(io(std::io::Error::from(errno))),
        };
        // Only the holder writes its pid, through a short-lived descriptor.
        std::fs::write(path, format!("pid {}\n", std::process::id())).map_err(io)?;
        held.push(lock);
    }
    Ok(InstanceLock { _held: held })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_and_may_lock_once_it_is_gone() {
        let directory = tempfile::tempdir().expect("tempdir");
        let locks = [(
            "--state-dir here".to_owned(),
            state_dir_lock(directory.path()),
        )];
        let first = acquire(&locks).expect("first");
        // flock locks belong to the open file description: a second open in this process
        // conflicts just as another process would.
        let refused = acquire(&locks).expect_err("second must be refused");
        let message = refused.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("--state-dir here"), "{message}");
        drop(first);
        acquire(&locks).expect("free again");
    }

    #[test]
    fn the_socket_lock_sits_beside_the_socket() {
        assert_eq!(
            socket_lock(Path::new("/run/ds01/controller.sock")),
            PathBuf::from("/run/ds01/controller.sock.lock")
        );
    }
}
