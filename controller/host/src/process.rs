//! Host processes from `/proc`: identity (pid + start time), state, owner uid, command line,
//! and network counters of the namespace a process lives in.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A process as it can be told apart from a later process with the same pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
}

/// What `/proc` says about one process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Identity.
    pub identity: ProcessIdentity,
    /// State letter (`R`, `S`, `Z` zombie, …).
    pub state: char,
    /// Real uid.
    pub uid: u32,
    /// Short name (`comm`).
    pub name: String,
    /// Command line, arguments joined by spaces.
    pub cmdline: String,
}

impl ProcessInfo {
    /// A zombie: exited, waiting to be reaped; signals cannot affect it.
    #[must_use]
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// Parses `/proc/<pid>/stat`: returns (state, start time). The command name may contain
/// spaces and parentheses, so fields are counted after the last `)`.
#[must_use]
pub fn parse_stat(text: &str) -> Option<(char, u64)> {
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, start_time))
}

/// Reads a process; `Ok(None)` when it does not exist (any more).
///
/// # Errors
/// Other I/O errors (e.g. permission).
pub fn read_process(proc_root: &Path, pid: u32) -> std::io::Result<Option<ProcessInfo>> {
    let directory = proc_root.join(pid.to_string());
    let stat = match std::fs::read_to_string(directory.join("stat")) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let Some((state, start_time)) = parse_stat(&stat) else {
        return Ok(None);
    };
    let status = std::fs::read_to_string(directory.join("status")).unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|line| {
            line.strip_prefix("Uid:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(u32::MAX);
    let name = std::fs::read_to_string(directory.join("comm"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let cmdline = std::fs::read(directory.join("cmdline"))
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .split('\0')
                .filter(|arg| !arg.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Ok(Some(ProcessInfo {
        identity: ProcessIdentity { pid, start_time },
        state,
        uid,
        name,
        cmdline,
    }))
}

/// A signal to a process known by its identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentitySignal {
    /// SIGTERM.
    Terminate,
    /// SIGKILL.
    Kill,
}

/// What became of a signal sent by identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalOutcome {
    /// Delivered to that very process.
    Sent,
    /// No process has that pid any more: nothing was sent.
    Gone,
    /// The pid now belongs to another process (another start time) or a zombie: nothing was sent.
    NotTheSame,
}

/// Sends `signal` to the process `identity` names, and only to it: the pid is pinned with a
/// pidfd first, then its start time is checked, then the signal goes through the pidfd — so a
/// pid reused at any moment can never receive it.
///
/// # Errors
/// When the pidfd cannot be opened or the signal cannot be sent for another reason
/// (permission, an old kernel without pidfds).
pub fn signal_identity(
    proc_root: &Path,
    identity: ProcessIdentity,
    signal: IdentitySignal,
) -> std::io::Result<SignalOutcome> {
    let Some(pid) = i32::try_from(identity.pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Ok(SignalOutcome::Gone);
    };
    let pidfd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(SignalOutcome::Gone),
        Err(error) => return Err(error.into()),
    };
    // The pidfd now refers to whatever process had the pid when it was opened; if that is
    // still our identity, the signal below can only reach it.
    match read_process(proc_root, identity.pid)? {
        None => return Ok(SignalOutcome::Gone),
        Some(process) if process.identity != identity || process.is_zombie() => {
            return Ok(SignalOutcome::NotTheSame);
        }
        Some(_) => {}
    }
    let signal = match signal {
        IdentitySignal::Terminate => rustix::process::Signal::TERM,
        IdentitySignal::Kill => rustix::process::Signal::KILL,
    };
    match rustix::process::pidfd_send_signal(&pidfd, signal) {
        Ok(()) => Ok(SignalOutcome::Sent),
        Err(rustix::io::Errno::SRCH) => Ok(SignalOutcome::Gone),
        Err(error) => Err(error.into()),
    }
}

/// Most bytes of a process environment read (the kernel's default limit for arguments and
/// environment together is 2 MiB; GPU variables sit near the start).
const MAX_ENVIRON: u64 = 1 << 20;

/// The `KEY=value` entries of `/proc/<pid>/environ` whose names are in `keys`, in order;
/// nothing else is kept (an environment may hold its owner's secrets). `Ok(None)` when the
/// process is gone.
///
/// # Errors
/// Other I/O errors (e.g. permission).
pub fn read_environ(
    proc_root: &Path,
    pid: u32,
    keys: &[&str],
) -> std::io::Result<Option<Vec<String>>> {
    use std::io::Read;
    let path = proc_root.join(pid.to_string()).join("environ");
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut bytes = Vec::new();
    file.take(MAX_ENVIRON).read_to_end(&mut bytes)?;
    Ok(Some(parse_environ(&bytes, keys)))
}

/// The NUL-separated `KEY=value` entries of an environment whose names are in `keys`, in order
/// (duplicates kept: the last one is the one that counts).
#[must_use]
pub fn parse_environ(bytes: &[u8], keys: &[&str]) -> Vec<String> {
    bytes
        .split(|byte| *byte == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .filter(|entry| {
            entry
                .split_once('=')
                .is_some_and(|(name, _)| keys.contains(&name))
        })
        .map(str::to_owned)
        .collect()
}

/// Received plus sent bytes on every interface but loopback, from `/proc/<pid>/net/dev`
/// (the network namespace of `pid`). Cumulative: callers keep deltas.
///
/// # Errors
/// When the process is gone.
pub fn network_bytes(proc_root: &Path, pid: u32) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("net/dev"))?;
    Ok(parse_net_dev(&text))
}

fn parse_net_dev(text: &str) -> u64 {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (interface, counters) = line.split_once(':')?;
            if interface.trim() == "lo" {
                return None;
            }
            let fields: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            Some(fields.first()?.saturating_add(*fields.get(8)?))
        })
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let text = "4242 (python3 (worker) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 4 0 987654 1000 200 18446744073709551615";
        assert_eq!(parse_stat(text), Some(('S', 987_654)));
        assert_eq!(parse_stat("1 (z) Z 0"), None);
    }

    #[test]
    fn network_counters_add_receive_and_transmit_and_skip_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n  eth0: 2048 5 0 0 0 0 0 0 512 4 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(text), 2560);
    }

    #[test]
    fn environ_keeps_only_the_asked_variables_in_order_with_duplicates() {
        let bytes = b"PATH=/bin\0NVIDIA_VISIBLE_DEVICES=all\0SECRET=x\0NVIDIA_VISIBLE_DEVICES=GPU-1\0CUDA_VISIBLE_DEVICES=\0NVIDIA_VISIBLE_DEVICES_X=1\0\0broken\0";
        assert_eq!(
            parse_environ(bytes, &["NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"]),
            [
                "NVIDIA_VISIBLE_DEVICES=all",
                "NVIDIA_VISIBLE_DEVICES=GPU-1",
                "CUDA_VISIBLE_DEVICES="
            ]
        );
        assert!(parse_environ(b"", &["A"]).is_empty());
    }

    #[test]
    fn reads_the_environment_of_this_process_and_none_for_a_missing_one() {
        let me = std::process::id();
        let path = read_environ(Path::new("/proc"), me, &["PATH"])
            .expect("read")
            .expect("exists");
        assert!(
            path.iter().all(|entry| entry.starts_with("PATH=")),
            "{path:?}"
        );
        assert_eq!(
            read_environ(Path::new("/proc"), u32::MAX - 1, &["PATH"]).expect("read"),
            None
        );
    }

    #[test]
    fn a_signal_reaches_only_the_process_of_that_identity() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let identity = read_process(Path::new("/proc"), pid)
            .expect("read")
            .expect("exists")
            .identity;
        let older = ProcessIdentity {
            pid,
            start_time: identity.start_time - 1,
        };
        assert_eq!(
            signal_identity(Path::new("/proc"), older, IdentitySignal::Kill).expect("signal"),
            SignalOutcome::NotTheSame,
            "a process with another start time under the same pid was signalled"
        );
        assert!(matches!(child.try_wait(), Ok(None)), "the child was killed");
        assert_eq!(
            signal_identity(Path::new("/proc"), identity, IdentitySignal::Terminate)
                .expect("signal"),
            SignalOutcome::Sent
        );
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
        assert_eq!(
            signal_identity(Path::new("/proc"), identity, IdentitySignal::Kill).expect("signal"),
            SignalOutcome::Gone
        );
    }

    #[test]
    fn reads_this_process_and_reports_a_missing_one_as_none() {
        let me = std::process::id();
        let info = read_process(Path::new("/proc"), me)
            .expect("read")
            .expect("exists");
        assert_eq!(info.identity.pid, me);
        assert!(info.identity.start_time > 0);
        assert!(!info.is_zombie());
        assert_eq!(
            read_process(Path::new("/proc"), u32::MAX - 1).expect("read"),
            None
        );
    }
}
