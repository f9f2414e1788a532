//! Reading a file named by a spec (`membersFile`) without trusting the path: only a regular
//! file is opened (`O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`, checked before and after opening),
//! at most a size cap is read, and the async entry point reads on a blocking thread. A FIFO,
//! a device (`/dev/zero`), a symlink or an oversized file is refused without being read —
//! a device is not even opened, since opening some devices has effects.

use std::{
    io::Read,
    os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

/// Largest file [`read_regular_file`] reads when the caller has no better cap.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 20;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum SafeReadError {
    /// It does not exist or cannot be looked at.
    #[error("cannot read {path}")]
    Unreadable {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// It is not a regular file.
    #[error("{path} is {kind}, not a regular file")]
    NotRegular {
        /// Path.
        path: PathBuf,
        /// `a FIFO`, `a character device`, `a symbolic link`, …
        kind: &'static str,
    },
    /// It is larger than the cap.
    #[error("{path} is {size} bytes, more than the {limit} bytes allowed")]
    TooLarge {
        /// Path.
        path: PathBuf,
        /// Its size (or the bytes seen before giving up).
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// It changed between the check and the open (replaced by something else).
    #[error("{path} was replaced while being opened")]
    Replaced {
        /// Path.
        path: PathBuf,
    },
    /// The blocking reader thread could not run.
    #[error("the reader thread for {path} failed")]
    Thread {
        /// Path.
        path: PathBuf,
    },
}

fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Looks at `path` without opening or following it: `Ok(size)` when it is a regular file of
/// at most `max_bytes`.
///
/// # Errors
/// When it is missing, not a regular file, or too large.
pub fn check_regular_file(path: &Path, max_bytes: u64) -> Result<u64, SafeReadError> {
    let metadata = std::fs::symlink_metadata(path).map_err(|source| SafeReadError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    if !metadata.file_type().is_file() {
        return Err(SafeReadError::NotRegular {
            path: path.to_owned(),
            kind: kind_of(metadata.file_type()),
        });
    }
    if metadata.len() > max_bytes {
        return Err(SafeReadError::TooLarge {
            path: path.to_owned(),
            size: metadata.len(),
            limit: max_bytes,
        });
    }
    Ok(metadata.len())
}

/// Reads `path` when it is a regular file of at most `max_bytes` (blocking: call it from a
/// blocking thread, or use [`read_regular_file_off_thread`]).
///
/// # Errors
/// When it is missing, not a regular file, too large, or replaced while being opened.
pub fn read_regular_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, SafeReadError> {
    let unreadable = |source| SafeReadError::Unreadable {
        path: path.to_owned(),
        source,
    };
    check_regular_file(path, max_bytes)?;
    let before = std::fs::symlink_metadata(path).map_err(unreadable)?;
    let flags = nix::fcntl::OFlag::O_NOFOLLOW
        | nix::fcntl::OFlag::O_NONBLOCK
        | nix::fcntl::OFlag::O_CLOEXEC
        | nix::fcntl::OFlag::O_NOCTTY;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(unreadable)?;
    let opened = file.metadata().map_err(unreadable)?;
    if !opened.file_type().is_file() {
        return Err(SafeReadError::NotRegular {
            path: path.to_owned(),
            kind: kind_of(opened.file_type()),
        });
    }
    if (opened.dev(), opened.ino()) != (before.dev(), before.ino()) {
        return Err(SafeReadError::Replaced {
            path: path.to_owned(),
        });
    }
    let mut content = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(unreadable)?;
    let size = u64::try_from(content.len()).unwrap_or(u64::MAX);
    if size > max_bytes {
        return Err(SafeReadError::TooLarge {
            path: path.to_owned(),
            size,
            limit: max_bytes,
        });
    }
    Ok(content)
}

/// [`read_regular_file`] on a blocking thread, so a slow file system never stalls the async
/// workers.
///
/// # Errors
/// As [`read_regular_file`], or when the thread cannot run.
pub async fn read_regular_file_off_thread(
    path: PathBuf,
    max_bytes: u64,
) -> Result<Vec<u8>, SafeReadError> {
    let for_error = path.clone();
    tokio::task::spawn_blocking(move || read_regular_file(&path, max_bytes))
        .await
        .unwrap_or(Err(SafeReadError::Thread { path: for_error }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("members");
        std::fs::write(&path, "alice\nbob\n").expect("write");
        assert_eq!(
            read_regular_file(&path, 100).expect("read"),
            b"alice\nbob\n"
        );
        assert_eq!(check_regular_file(&path, 100).expect("check"), 10);
    }

    #[test]
    fn devices_fifos_symlinks_and_large_files_are_refused_without_blocking() {
        let directory = tempfile::tempdir().expect("tempdir");
        let fifo = directory.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let link = directory.path().join("link");
        std::os::unix::fs::symlink("/etc/hostname", &link).expect("symlink");
        let large = directory.path().join("large");
        std::fs::write(&large, vec![b'a'; 2000]).expect("write");
        let started = std::time::Instant::now();
        for (path, expected) in [
            (Path::new("/dev/zero"), "a character device"),
            (fifo.as_path(), "a FIFO"),
            (link.as_path(), "a symbolic link"),
            (directory.path(), "a directory"),
        ] {
            match read_regular_file(path, 1000) {
                Err(SafeReadError::NotRegular { kind, .. }) => assert_eq!(kind, expected),
                other => panic!("{}: {other:?}", path.display()),
            }
        }
        assert!(matches!(
            read_regular_file(&large, 1000),
            Err(SafeReadError::TooLarge { size: 2000, .. })
        ));
        assert!(matches!(
            read_regular_file(&directory.path().join("missing"), 1000),
            Err(SafeReadError::Unreadable { .. })
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
