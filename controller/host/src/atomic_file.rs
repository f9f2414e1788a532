//! Writing a file so that readers see the old or the new content, never a mix: write a
//! temporary file in the same directory, fsync it, rename it over, fsync the directory. The
//! file is created with an explicit mode (0600 unless the caller asks otherwise), so nothing
//! the controller writes is world-readable whatever the umask.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Mode of files written by [`write_atomic`]: owner only.
pub const PRIVATE_MODE: u32 = 0o600;

/// Atomically replaces `path` with `content` (mode 0600), creating parent directories.
///
/// # Errors
/// Any I/O error; the old file is then left untouched.
pub fn write_atomic(path: &Path, content: &[u8]) -> std::io::Result<()> {
    write_atomic_with_mode(path, content, PRIVATE_MODE)
}

/// Atomically replaces `path` with `content`, the new file having `mode` (less the umask).
///
/// # Errors
/// Any I/O error; the old file is then left untouched.
pub fn write_atomic_with_mode(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per write: two writers of one file never share a temporary file.
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = directory.join(format!(
        ".{file_name}.tmp-{}-{sequence}",
        std::process::id()
    ));
    let result = (|| {
        // A temporary file left by a crash may have another mode: start afresh.
        match std::fs::remove_file(&temporary) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(directory)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("state/inventory.json");
        write_atomic(&path, b"one").expect("first write");
        write_atomic(&path, b"two").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn files_are_private_unless_a_mode_is_given() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().expect("tempdir");
        let private = directory.path().join("state.json");
        write_atomic(&private, b"{}").expect("write");
        let shared = directory.path().join("inventory.json");
        write_atomic_with_mode(&shared, b"{}", 0o640).expect("write");
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&private), 0o600);
        assert_eq!(mode(&shared) & 0o007, 0, "{:o}", mode(&shared));
    }
}
