//! Telling a container's owner: every pseudo-terminal they are logged into (from utmp) and the
//! container's alert file, resolved inside the container — never, as root, through a path or a
//! terminal line a user controls.
//!
//! # Guarantees
//! - Terminals: only `pts/<n>` lines of utmp, opened as `/dev/pts/<n>` with `O_NOFOLLOW`, and
//!   only when that is a character device owned by the user; anything else is ignored and
//!   reported.
//! - Alert file: see `ds01_host::container_fs` (no symlinks, inside the container's root, a
//!   regular file, written with the owner's fsuid).

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use ds01_host::container_fs::{self, ContainerFsError, PinnedDirectory};
use serde_json::{Value, json};

use crate::inventory::ContainerRecord;

/// Size of one `struct utmp` record on Linux x86-64 and aarch64.
const UTMP_RECORD: usize = 384;
const USER_PROCESS: i16 = 7;

/// The terminal lines (`pts/3`, as written, unchecked) where `user` is logged in, from utmp.
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
        .filter(|line| !line.is_empty())
        .collect()
}

/// What reached the terminals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Terminals {
    /// Terminals written to.
    pub delivered: usize,
    /// Lines not written to, each with why.
    pub ignored: Vec<String>,
}

/// `pts/<digits>` only.
fn pts_number(line: &str) -> Option<&str> {
    line.strip_prefix("pts/")
        .filter(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes `message` to each terminal of `user` (uid `uid`) listed in `utmp` under `/dev`,
/// without ever blocking on one.
#[must_use]
pub fn to_terminals(utmp: &Path, dev: &Path, user: &str, uid: u32, message: &str) -> Terminals {
    let mut result = Terminals::default();
    for line in terminals_of(utmp, user) {
        let Some(number) = pts_number(&line) else {
            result
                .ignored
                .push(format!("{}: not a pseudo-terminal line", escape(&line)));
            continue;
        };
        let path = dev.join("pts").join(number);
        let opened = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
            .open(&path);
        let mut terminal = match opened {
            Ok(terminal) => terminal,
            Err(error) => {
                result.ignored.push(format!("{line}: {error}"));
                continue;
            }
        };
        let owned = terminal.metadata().is_ok_and(|metadata| {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            metadata.file_type().is_char_device() && metadata.uid() == uid
        });
        if !owned {
            result
                .ignored
                .push(format!("{line}: not a terminal owned by {user}"));
            continue;
        }
        if terminal
            .write_all(format!("\r\n{}\r\n", message.replace('\n', "\r\n")).as_bytes())
            .is_ok()
        {
            result.delivered += 1;
        }
    }
    result
}

/// Control characters escaped, for reports of what a user wrote.
fn escape(text: &str) -> String {
    text.chars().flat_map(char::escape_default).collect()
}

/// Appends `message` to the alert file inside the running container.
///
/// # Errors
/// Why it was not delivered (for the event).
pub fn to_container_file(
    proc_root: &Path,
    record: &ContainerRecord,
    file: &str,
    message: &str,
) -> Result<(), ContainerFsError> {
    let pid = record
        .info
        .pid
        .ok_or(ContainerFsError::NotRunning { pid: 0 })?;
    container_fs::open_root(proc_root, pid, &record.info.id)?
        .append_as_owner(file, &format!("{message}\n"))
}

/// Pins the alert file's directory while the container runs, so a notice can follow its stop.
///
/// # Errors
/// Why it could not.
pub fn pin_container_file(
    proc_root: &Path,
    record: &ContainerRecord,
    file: &str,
) -> Result<PinnedDirectory, ContainerFsError> {
    let pid = record
        .info
        .pid
        .ok_or(ContainerFsError::NotRunning { pid: 0 })?;
    container_fs::open_root(proc_root, pid, &record.info.id)?.pin_directory_of(file)
}

/// Where a notice went, for the event's `delivered` details.
#[must_use]
pub fn delivery(terminals: Option<&Terminals>, alert_file: &Result<(), ContainerFsError>) -> Value {
    let mut delivered = json!({
        "alert_file": match alert_file {
            Ok(()) => "appended".to_owned(),
            Err(error) => format!("not written: {error}"),
        },
    });
    if let Some(terminals) = terminals {
        delivered["terminals"] = json!(terminals.delivered);
        if !terminals.ignored.is_empty() {
            delivered["terminals_ignored"] = json!(terminals.ignored);
        }
    }
    delivered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utmp_record(line: &str, user: &str) -> Vec<u8> {
        let mut record = vec![0_u8; UTMP_RECORD];
        record[0..2].copy_from_slice(&USER_PROCESS.to_ne_bytes());
        record[8..8 + line.len()].copy_from_slice(line.as_bytes());
        record[44..44 + user.len()].copy_from_slice(user.as_bytes());
        record
    }

    #[test]
    fn only_pts_lines_owned_by_the_user_are_written_and_the_rest_is_reported() {
        let directory = tempfile::tempdir().expect("tempdir");
        let dev = directory.path().join("dev");
        std::fs::create_dir_all(dev.join("pts")).expect("mkdir");
        // A regular file where a terminal should be, and a symlink to a file of root's.
        std::fs::write(dev.join("pts/4"), b"").expect("write");
        let target = directory.path().join("shadow");
        std::fs::write(&target, b"secret").expect("write");
        std::os::unix::fs::symlink(&target, dev.join("pts/5")).expect("symlink");
        let mut utmp = Vec::new();
        for line in [
            "pts/../../etc/shadow",
            "sda",
            "mem",
            "pts/4",
            "pts/5",
            "pts/x",
        ] {
            utmp.extend(utmp_record(line, "mallory"));
        }
        let utmp_path = directory.path().join("utmp");
        std::fs::write(&utmp_path, utmp).expect("write utmp");
        let result = to_terminals(&utmp_path, &dev, "mallory", 1000, "hello");
        assert_eq!(result.delivered, 0);
        assert_eq!(result.ignored.len(), 6, "{:?}", result.ignored);
        assert!(result.ignored[0].contains("not a pseudo-terminal"));
        assert!(result.ignored[3].contains("not a terminal owned by mallory"));
        assert_eq!(std::fs::read(&target).expect("read"), b"secret");
        assert_eq!(std::fs::read(dev.join("pts/4")).expect("read"), b"");
    }
}
