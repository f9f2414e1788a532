//! Each group's `membersFile`, read off the async workers with bounded work (a regular file
//! only, opened without blocking, at most 1 MiB). A file that cannot be read keeps the
//! membership last read from it and is reported; one never read makes the membership
//! incomplete, and incomplete data holds stops back rather than moving users to other limits.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use ds01_spec::ContainerLifecyclePolicySpec;

/// The largest members file read.
pub const MAX_BYTES: u64 = 1 << 20;
/// The longest a read may take before it counts as failed.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What a pass knows of group membership from files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Members by group.
    pub by_group: HashMap<String, Vec<String>>,
    /// Files that could not be read now (path and why).
    pub problems: Vec<String>,
    /// Files never read: the membership is incomplete.
    pub incomplete: bool,
}

/// The last good reading of each file, by path.
#[derive(Debug, Default)]
pub struct MembersFiles {
    last: Mutex<HashMap<String, Vec<String>>>,
}

impl MembersFiles {
    /// Reads every group's `membersFile` of `spec`.
    pub async fn read(&self, spec: &ContainerLifecyclePolicySpec) -> Membership {
        let mut membership = Membership::default();
        for (group, path) in spec
            .groups
            .iter()
            .filter_map(|(group, spec)| Some((group, spec.members_file.clone()?)))
        {
            let reading = {
                let path = path.clone();
                tokio::time::timeout(
                    READ_TIMEOUT,
                    tokio::task::spawn_blocking(move || read_members(&path)),
                )
                .await
            };
            let result = match reading {
                Ok(Ok(result)) => result.map_err(|error| error.to_string()),
                Ok(Err(error)) => Err(format!("the reading thread failed: {error}")),
                Err(_) => Err(format!("not read within {} s", READ_TIMEOUT.as_secs())),
            };
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            match result {
                Ok(members) => {
                    last.insert(path, members.clone());
                    membership.by_group.insert(group.clone(), members);
                }
                Err(why) => {
                    membership
                        .problems
                        .push(format!("membersFile {path} of group {group}: {why}"));
                    match last.get(&path) {
                        Some(members) => {
                            membership.by_group.insert(group.clone(), members.clone());
                        }
                        None => membership.incomplete = true,
                    }
                }
            }
        }
        membership
    }
}

/// The members a file lists: a regular file of at most [`MAX_BYTES`] (never a FIFO, device or
/// symlink: see `ds01_host::safe_read`), one user a line, `#` comments.
///
/// # Errors
/// Why it could not be read.
pub fn read_members(path: &str) -> Result<Vec<String>, ds01_host::safe_read::SafeReadError> {
    ds01_host::safe_read::read_regular_file(std::path::Path::new(path), MAX_BYTES)
        .map(|content| member_lines(&String::from_utf8_lossy(&content)))
}

/// A members file's users: one a line, `#` comments, blank lines ignored.
#[must_use]
pub fn member_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_huge_files_are_refused_without_blocking() {
        let directory = tempfile::tempdir().expect("tempdir");
        let fifo = directory.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let big = directory.path().join("big");
        std::fs::write(
            &big,
            vec![b'a'; usize::try_from(MAX_BYTES).unwrap_or(0) + 2],
        )
        .expect("write");
        let good = directory.path().join("good");
        std::fs::write(&good, "alice\n# a comment\n bob # trailing\n\n").expect("write");
        for (path, why) in [
            (fifo.display().to_string(), "not a regular file"),
            ("/dev/zero".to_owned(), "not a regular file"),
            (big.display().to_string(), "bytes"),
        ] {
            let error = read_members(&path).expect_err(&path).to_string();
            assert!(error.contains(why), "{path}: {error}");
        }
        assert_eq!(
            read_members(&good.display().to_string()).expect("read"),
            ["alice", "bob"]
        );
        assert_eq!(
            member_lines("# students\nalice\n\n  bob  # TA\n"),
            ["alice", "bob"]
        );
    }
}
