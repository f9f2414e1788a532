//! Files inside a running container, as the container sees them: resolved inside its root
//! (`/proc/<pid>/root`) without following any symlink, checked to be regular files, and
//! written with the container's owner's filesystem uid — never through a host path a user
//! controls.
//!
//! # Guarantees
//! - The process directory is opened once and checked to belong to the container (its cgroup
//!   names the container id), so a reused pid never lends another process's root.
//! - Paths resolve with `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`: no
//!   component may be a symlink, and nothing resolves outside the container's root.
//! - Writes run with the fsuid/fsgid of the container's init process, which drops the
//!   capabilities that bypass file permissions; the thread's ids are restored afterwards.

use std::{
    io::{Read, Write},
    os::fd::{AsRawFd, OwnedFd},
    path::Path,
    time::SystemTime,
};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Why a file inside a container could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ContainerFsError {
    /// Its init process is gone.
    #[error("the container is not running (no process {pid})")]
    NotRunning {
        /// The pid tried.
        pid: u32,
    },
    /// The pid belongs to a process of another container or of the host.
    #[error("process {pid} is no longer this container's")]
    NotThatContainer {
        /// The pid tried.
        pid: u32,
    },
    /// A component of the path is a symlink.
    #[error("{path} goes through a symlink inside the container; not followed")]
    Symlink {
        /// The path inside the container.
        path: String,
    },
    /// The file is not a regular file.
    #[error("{path} is not a regular file")]
    NotRegular {
        /// The path inside the container.
        path: String,
    },
    /// The path is not absolute.
    #[error("{path} is not an absolute path")]
    NotAbsolute {
        /// The path.
        path: String,
    },
    /// Another failure.
    #[error("{path}: {source}")]
    Io {
        /// The path inside the container.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The root of a running container, pinned.
#[derive(Debug)]
pub struct ContainerRoot {
    root: OwnedFd,
    uid: u32,
    gid: u32,
}

fn io(path: &str) -> impl Fn(rustix::io::Errno) -> ContainerFsError + '_ {
    move |errno| match errno {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => ContainerFsError::Symlink {
            path: path.to_owned(),
        },
        other => ContainerFsError::Io {
            path: path.to_owned(),
            source: other.into(),
        },
    }
}

/// Opens the root of the container `container_id` whose init process is `pid`.
///
/// # Errors
/// When the process is gone or is not that container's.
pub fn open_root(
    proc_root: &Path,
    pid: u32,
    container_id: &str,
) -> Result<ContainerRoot, ContainerFsError> {
    let directory = proc_root.join(pid.to_string());
    let process = rustix::fs::open(
        &directory,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| ContainerFsError::NotRunning { pid })?;
    let read = |name: &str| -> Option<String> {
        let fd = rustix::fs::openat(
            &process,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).ok()?;
        Some(text)
    };
    let cgroup = read("cgroup").ok_or(ContainerFsError::NotRunning { pid })?;
    let ours = match crate::cgroup::placement_from_cgroup(&cgroup) {
        crate::cgroup::CgroupPlacement::Containers(ids) => ids.iter().any(|id| id == container_id),
        _ => false,
    };
    if !ours {
        return Err(ContainerFsError::NotThatContainer { pid });
    }
    let status = read("status").ok_or(ContainerFsError::NotRunning { pid })?;
    let id_of = |key: &str| {
        status.lines().find_map(|line| {
            line.strip_prefix(key)?
                .split_whitespace()
                .next()?
                .parse::<u32>()
                .ok()
        })
    };
    let (Some(uid), Some(gid)) = (id_of("Uid:"), id_of("Gid:")) else {
        return Err(ContainerFsError::NotRunning { pid });
    };
    let root = rustix::fs::openat(
        &process,
        "root",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| ContainerFsError::NotRunning { pid })?;
    Ok(ContainerRoot { root, uid, gid })
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

fn relative(path: &str) -> Result<&str, ContainerFsError> {
    path.strip_prefix('/')
        .ok_or_else(|| ContainerFsError::NotAbsolute {
            path: path.to_owned(),
        })
}

impl ContainerRoot {
    /// The owner (uid, gid) of the container's init process.
    #[must_use]
    pub fn owner(&self) -> (u32, u32) {
        (self.uid, self.gid)
    }

    /// When the regular file at `path` (inside the container) was last modified; `Ok(None)`
    /// when there is no such file.
    ///
    /// # Errors
    /// A symlink on the way, something other than a regular file, or another failure.
    pub fn modified(&self, path: &str) -> Result<Option<SystemTime>, ContainerFsError> {
        let fd = match rustix::fs::openat2(
            &self.root,
            relative(path)?,
            OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            RESOLVE,
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(errno) => return Err(io(path)(errno)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(io(path))?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(ContainerFsError::NotRegular {
                path: path.to_owned(),
            });
        }
        let seconds = u64::try_from(stat.st_mtime).unwrap_or(0);
        let nanos = u32::try_from(stat.st_mtime_nsec).unwrap_or(0);
        Ok(SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::new(seconds, nanos)))
    }

    /// Appends `text` to the regular file at `path` (inside the container), creating it when
    /// its directory exists, as the container's owner. Blocking: call from a blocking thread
    /// (it changes this thread's filesystem ids for the duration).
    ///
    /// # Errors
    /// A symlink on the way, something other than a regular file, no permission for the
    /// owner, or another failure.
    pub fn append_as_owner(&self, path: &str, text: &str) -> Result<(), ContainerFsError> {
        let relative = relative(path)?;
        let _as_owner = FsIds::switch(self.uid, self.gid);
        let fd = open_for_append(&self.root, relative, path)?;
        write_regular(fd, path, text)
    }
}

/// The directory of a file inside a container, pinned while the container ran, so a notice can
/// still be appended after the container stopped (the directory is usually a bind mount).
#[derive(Debug)]
pub struct PinnedDirectory {
    directory: OwnedFd,
    name: String,
    path: String,
    uid: u32,
    gid: u32,
}

impl ContainerRoot {
    /// Pins the directory that holds `path` (inside the container), resolved as
    /// [`ContainerRoot::append_as_owner`] resolves it.
    ///
    /// # Errors
    /// A symlink on the way, no such directory, or another failure.
    pub fn pin_directory_of(&self, path: &str) -> Result<PinnedDirectory, ContainerFsError> {
        let relative = relative(path)?;
        let (parent, name) = relative.rsplit_once('/').unwrap_or(("", relative));
        if name.is_empty() || name == ".." || name == "." {
            return Err(ContainerFsError::NotRegular {
                path: path.to_owned(),
            });
        }
        let parent = if parent.is_empty() { "." } else { parent };
        let directory = rustix::fs::openat2(
            &self.root,
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(io(path))?;
        Ok(PinnedDirectory {
            directory,
            name: name.to_owned(),
            path: path.to_owned(),
            uid: self.uid,
            gid: self.gid,
        })
    }
}

impl PinnedDirectory {
    /// Appends `text` to the file in the pinned directory as the container's owner (not
    /// following a symlink there; a regular file only). Blocking, as
    /// [`ContainerRoot::append_as_owner`].
    ///
    /// # Errors
    /// As [`ContainerRoot::append_as_owner`].
    pub fn append_as_owner(&self, text: &str) -> Result<(), ContainerFsError> {
        let _as_owner = FsIds::switch(self.uid, self.gid);
        let fd = open_for_append(&self.directory, &self.name, &self.path)?;
        write_regular(fd, &self.path, text)
    }
}

/// Opens `relative` under `directory` for appending, never opening anything but a regular
/// file: an existing entry is first opened as a bare `O_PATH` reference (which acts on nothing,
/// not even a FIFO or a device), checked to be a regular file, and only then reopened for
/// writing through that same reference; a missing one is created exclusively (a new regular
/// file, nothing else can be created that way).
fn open_for_append(
    directory: &OwnedFd,
    relative: &str,
    path: &str,
) -> Result<OwnedFd, ContainerFsError> {
    const WRITE: OFlags = OFlags::WRONLY
        .union(OFlags::APPEND)
        .union(OFlags::NOCTTY)
        .union(OFlags::NONBLOCK)
        .union(OFlags::CLOEXEC);
    for _ in 0..2 {
        match rustix::fs::openat2(
            directory,
            relative,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        ) {
            Ok(reference) => {
                let stat = rustix::fs::fstat(&reference).map_err(io(path))?;
                if rustix::fs::FileType::from_raw_mode(stat.st_mode)
                    != rustix::fs::FileType::RegularFile
                {
                    return Err(ContainerFsError::NotRegular {
                        path: path.to_owned(),
                    });
                }
                let reopen = format!("/proc/self/fd/{}", reference.as_raw_fd());
                return rustix::fs::open(reopen.as_str(), WRITE, Mode::empty()).map_err(io(path));
            }
            Err(rustix::io::Errno::NOENT) => match rustix::fs::openat2(
                directory,
                relative,
                WRITE | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o644),
                RESOLVE,
            ) {
                // Created between the two opens by someone else: look at it again.
                Err(rustix::io::Errno::EXIST) => {}
                created => return created.map_err(io(path)),
            },
            Err(errno) => return Err(io(path)(errno)),
        }
    }
    Err(ContainerFsError::Io {
        path: path.to_owned(),
        source: std::io::Error::other("the file kept appearing and disappearing"),
    })
}

fn write_regular(fd: OwnedFd, path: &str, text: &str) -> Result<(), ContainerFsError> {
    let stat = rustix::fs::fstat(&fd).map_err(io(path))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(ContainerFsError::NotRegular {
            path: path.to_owned(),
        });
    }
    std::fs::File::from(fd)
        .write_all(text.as_bytes())
        .map_err(|source| ContainerFsError::Io {
            path: path.to_owned(),
            source,
        })
}

/// This thread's filesystem uid and gid, switched until dropped.
struct FsIds {
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
}

impl FsIds {
    fn switch(uid: u32, gid: u32) -> FsIds {
        // The group first: with the fsuid no longer 0 the thread could not change it back.
        let gid = nix::unistd::setfsgid(nix::unistd::Gid::from_raw(gid));
        let uid = nix::unistd::setfsuid(nix::unistd::Uid::from_raw(uid));
        FsIds { uid, gid }
    }
}

impl Drop for FsIds {
    fn drop(&mut self) {
        nix::unistd::setfsuid(self.uid);
        nix::unistd::setfsgid(self.gid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(path: &Path) -> OwnedFd {
        rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("open the directory")
    }

    #[test]
    fn only_regular_files_are_opened_for_appending_and_a_missing_one_is_created() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let root = directory(temporary.path());
        nix::unistd::mkfifo(
            &temporary.path().join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o666),
        )
        .expect("mkfifo");
        std::os::unix::fs::symlink("/etc/hostname", temporary.path().join("link"))
            .expect("symlink");
        std::fs::create_dir(temporary.path().join("dir")).expect("mkdir");
        for (name, expected) in [
            ("fifo", "not a regular file"),
            ("dir", "not a regular file"),
        ] {
            let error = open_for_append(&root, name, name)
                .expect_err(name)
                .to_string();
            assert!(error.contains(expected), "{name}: {error}");
        }
        // A symlink is refused (as a symlink, or as not a regular file), never followed.
        assert!(open_for_append(&root, "link", "link").is_err());
        let created = open_for_append(&root, "alerts", "alerts").expect("created");
        write_regular(created, "alerts", "one\n").expect("write");
        let again = open_for_append(&root, "alerts", "alerts").expect("opened");
        write_regular(again, "alerts", "two\n").expect("append");
        assert_eq!(
            std::fs::read_to_string(temporary.path().join("alerts")).expect("read"),
            "one\ntwo\n"
        );
    }
}
