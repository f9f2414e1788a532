//! Telling a container's owner what will happen: every terminal they are logged into (from
//! utmp) and the container's alert file (through a bind mount, else `docker exec`).

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use ds01_host::docker::DockerClient;

use super::signals::host_path_parts;
use crate::inventory::ContainerRecord;

/// Size of one `struct utmp` record on Linux x86-64 and aarch64.
const UTMP_RECORD: usize = 384;
const USER_PROCESS: i16 = 7;

/// The terminals (`pts/3`, `tty1`) where `user` is logged in, from a utmp file.
#[must_use]
pub fn terminals_of(utmp: &Path, user: &str) -> Vec<String> {
    let Ok(bytes) = std::fs::read(utmp) else {
        return Vec::new();
    };
    let text = |field: &[u8]| {
        String::from_utf8_lossy(field.split(|byte| *byte == 0).next().unwrap_or_default())
            .into_owned()
    };
    bytes
        .chunks_exact(UTMP_RECORD)
        .filter(|record| i16::from_ne_bytes([record[0], record[1]]) == USER_PROCESS)
        .filter(|record| text(&record[44..76]) == user)
        .map(|record| text(&record[8..40]))
        .filter(|line| !line.is_empty() && !line.contains('/') || line.starts_with("pts/"))
        .collect()
}

/// Writes `message` to each terminal of `user` without ever blocking on one.
pub fn to_terminals(user: &str, message: &str) -> usize {
    let mut delivered = 0;
    for line in terminals_of(Path::new("/var/run/utmp"), user) {
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
            .open(Path::new("/dev").join(&line));
        if let Ok(mut terminal) = opened
            && terminal
                .write_all(format!("\r\n{message}\r\n").as_bytes())
                .is_ok()
        {
            delivered += 1;
        }
    }
    delivered
}

/// How a warning reached the container's alert file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Appended through the host path of a bind mount.
    Mount,
    /// Appended by a command run inside the container (its CPU use is the controller's).
    Exec,
}

/// Appends `message` to the container's alert file. Through a bind mount the file is opened
/// without following symlinks (the directory belongs to the user), else a command inside the
/// container appends it.
///
/// # Errors
/// A sentence saying why it could not.
pub async fn to_container(
    client: &DockerClient,
    record: &ContainerRecord,
    file: &str,
    message: &str,
) -> Result<Delivery, String> {
    if let Some((source, rest)) = host_path_parts(record, file) {
        let path = std::path::PathBuf::from(format!("{}{rest}", source.display()));
        let refuse = |why: &str| format!("not appending to {}: {why}", path.display());
        // The directories below the mount point belong to the container's user: none of them
        // may be a symlink leading out of it.
        let mut inside = source.clone();
        let components: Vec<&str> = rest.split('/').filter(|part| !part.is_empty()).collect();
        let symlink_on_the_way = components
            .iter()
            .take(components.len().saturating_sub(1))
            .any(|part| {
                inside.push(part);
                std::fs::symlink_metadata(&inside)
                    .is_ok_and(|metadata| metadata.file_type().is_symlink())
            });
        if symlink_on_the_way {
            return Err(refuse("a directory on the way is a symlink"));
        }
        let mut handle = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|error| refuse(&error.to_string()))?;
        handle
            .write_all(format!("{message}\n").as_bytes())
            .map_err(|error| refuse(&error.to_string()))?;
        return Ok(Delivery::Mount);
    }
    let script = "mkdir -p \"$(dirname \"$2\")\" 2>/dev/null; printf '%s\\n' \"$1\" >> \"$2\"";
    let command = ["sh", "-c", script, "ds01-notify", message, file]
        .map(str::to_owned)
        .to_vec();
    client
        .exec_detached(&record.info.id, command)
        .await
        .map_err(|error| ds01_runtime::error_chain(&error))?;
    Ok(Delivery::Exec)
}
