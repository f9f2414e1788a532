//! A real `ds01-controller` process for a test: private state dir, event log and socket, the
//! fake NVML library with its state file, and helpers that wait for observable effects.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::binaries::{binary, fake_nvml_library};

/// A running controller; stopped (SIGKILL if it must) when dropped.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Temporary directory holding state, log, socket and NVML state.
    pub directory: tempfile::TempDir,
    /// Extra arguments it was started with.
    pub arguments: Vec<String>,
    /// `--metrics-addr`.
    pub metrics_addr: String,
    /// `--event-log`.
    pub event_log: PathBuf,
}

/// How to start the controller.
#[derive(Clone, Debug, Default)]
pub struct DaemonOptions {
    /// `--docker-host`.
    pub docker_host: Option<String>,
    /// Fake NVML state (YAML); `None` runs with `--gpu-backend none`.
    pub nvml_state: Option<String>,
    /// More flags.
    pub extra: Vec<String>,
    /// More environment (e.g. `NOTIFY_SOCKET`).
    pub env: Vec<(String, String)>,
    /// `--event-log` (default: `events.jsonl` in the directory).
    pub event_log: Option<PathBuf>,
    /// `--metrics-addr` (default: a free local port, so daemons can run side by side).
    pub metrics_addr: Option<String>,
    /// `--state-dir` (default: `state` in the directory).
    pub state_dir: Option<PathBuf>,
    /// A command prefix the controller runs under (e.g. a private engine's
    /// `nsenter --net=… --`, to reach its published ports).
    pub wrapper: Vec<String>,
    /// The controller's open-file limit (soft and hard, set with `prlimit`), e.g. 1024, the
    /// soft limit a service gets from systemd unless its unit raises it.
    pub open_files_limit: Option<u64>,
}

impl Daemon {
    /// Starts the controller.
    ///
    /// # Panics
    /// When it cannot be started.
    #[must_use]
    pub fn start(options: DaemonOptions) -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        Self::start_in(directory, options)
    }

    /// Starts the controller on an existing directory (a restart keeps state).
    ///
    /// # Panics
    /// When it cannot be started.
    #[must_use]
    pub fn start_in(directory: tempfile::TempDir, options: DaemonOptions) -> Self {
        let root = directory.path();
        let metrics_addr = options
            .metrics_addr
            .clone()
            .unwrap_or_else(free_local_address);
        let event_log = options
            .event_log
            .clone()
            .unwrap_or_else(|| root.join("events.jsonl"));
        let mut arguments: Vec<String> = vec![
            "--state-dir".into(),
            options
                .state_dir
                .clone()
                .unwrap_or_else(|| root.join("state"))
                .display()
                .to_string(),
            "--event-log".into(),
            event_log.display().to_string(),
            "--metrics-addr".into(),
            metrics_addr.clone(),
            "--socket".into(),
            root.join("controller.sock").display().to_string(),
            "--gpu-poll-interval".into(),
            "200ms".into(),
        ];
        // A wrapper first (a network namespace, say), then prlimit, which execs the controller:
        // same pid, the limit already in place.
        let mut prefix: Vec<String> = options.wrapper.clone();
        if let Some(limit) = options.open_files_limit {
            prefix.extend([
                "prlimit".to_owned(),
                format!("--nofile={limit}:{limit}"),
                "--".to_owned(),
            ]);
        }
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary("ds01-controller"));
                command
            }
            None => Command::new(binary("ds01-controller")),
        };
        if let Some(state) = &options.nvml_state {
            std::fs::write(root.join("nvml.yaml"), state).expect("write fake NVML state");
            arguments.extend([
                "--gpu-backend".into(),
                "nvml".into(),
                "--nvml-library".into(),
                fake_nvml_library().display().to_string(),
            ]);
        } else {
            arguments.extend(["--gpu-backend".into(), "none".into()]);
        }
        if let Some(host) = &options.docker_host {
            arguments.extend(["--docker-host".into(), host.clone()]);
        }
        arguments.extend(options.extra.iter().cloned());
        command
            .args(&arguments)
            .env("DS01_FAKE_NVML_STATE", root.join("nvml.yaml"))
            .env("DS01_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(options.env.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(root.join("controller.log"))
                    .map_or(Stdio::inherit(), Stdio::from),
            );
        let child = command.spawn().expect("start ds01-controller");
        Daemon {
            child,
            directory,
            arguments,
            metrics_addr,
            event_log,
        }
    }

    /// The metrics endpoint's body (`GET /metrics`), or `None` while it does not answer.
    #[must_use]
    pub fn metrics(&self) -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.metrics_addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200")
            .then(|| body.to_owned())
            .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
    }

    /// The temporary directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        self.directory.path()
    }

    /// The control socket.
    #[must_use]
    pub fn socket(&self) -> PathBuf {
        self.root().join("controller.sock")
    }

    /// Runs `ds01ctl` against this controller: (exit code, stdout, stderr).
    ///
    /// # Panics
    /// When ds01ctl cannot be run.
    #[must_use]
    pub fn ctl(&self, arguments: &[&str]) -> (i32, String, String) {
        self.ctl_as(&[], arguments)
    }

    /// Runs `ds01ctl` through a wrapper (e.g. `setpriv --reuid=65534 …`).
    ///
    /// # Panics
    /// When ds01ctl cannot be run.
    #[must_use]
    pub fn ctl_as(&self, wrapper: &[&str], arguments: &[&str]) -> (i32, String, String) {
        let ctl = binary("ds01ctl");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(&ctl);
                command
            }
            None => Command::new(&ctl),
        };
        let output = command
            .args(arguments)
            .env("DS01_SOCKET", self.socket())
            .env("NO_COLOR", "1")
            .output()
            .expect("run ds01ctl");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Waits until the control socket accepts connections.
    ///
    /// # Panics
    /// When it does not within `deadline`.
    pub fn wait_for_socket(&self, deadline: Duration) {
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                started.elapsed() < deadline,
                "the control socket never opened; controller output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Rewrites the fake NVML state; the next poll reads it.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn set_nvml_state(&self, state: &str) {
        let path = self.root().join("nvml.yaml");
        let temporary = self.root().join("nvml.yaml.tmp");
        std::fs::write(&temporary, state).expect("write NVML state");
        std::fs::rename(temporary, path).expect("replace NVML state");
    }

    /// Every event logged so far.
    #[must_use]
    pub fn events(&self) -> Vec<Value> {
        read_events(&self.event_log)
    }

    /// Waits until an event matches, returning it.
    ///
    /// # Panics
    /// When none does before `deadline`, showing the log.
    pub fn wait_for_event(
        &self,
        deadline: Duration,
        what: &str,
        predicate: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            if let Some(event) = self.events().into_iter().find(&predicate) {
                return event;
            }
            assert!(
                started.elapsed() < deadline,
                "no event {what} within {deadline:?}; log:\n{}\ncontroller output:\n{}",
                self.events_text(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The inventory file, once it satisfies `predicate`.
    ///
    /// # Panics
    /// When it does not before `deadline`.
    pub fn wait_for_inventory(
        &self,
        deadline: Duration,
        what: &str,
        predicate: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        let path = self.root().join("state/workload-inventory.json");
        loop {
            let inventory = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok());
            if let Some(inventory) = inventory.filter(&predicate) {
                return inventory;
            }
            assert!(
                started.elapsed() < deadline,
                "inventory never showed {what} within {deadline:?}; file:\n{}\ncontroller output:\n{}",
                std::fs::read_to_string(&path).unwrap_or_default(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the controller wrote on stderr.
    #[must_use]
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.root().join("controller.log")).unwrap_or_default()
    }

    fn events_text(&self) -> String {
        std::fs::read_to_string(&self.event_log).unwrap_or_default()
    }

    /// The controller's resident memory in KiB (`VmRSS`), 0 when it cannot be read.
    #[must_use]
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the exit status (SIGKILL after `deadline`).
    pub fn terminate(&mut self, deadline: Duration) -> Option<i32> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status.code();
        }
        let pid = nix_pid(&self.child);
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while started.elapsed() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// SIGKILLs the process (no drain, no last write) and hands back its directory.
    #[must_use]
    pub fn kill_keeping_state(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let directory = tempfile::tempdir().expect("temporary directory");
        std::mem::replace(&mut self.directory, directory)
    }

    /// Stops the process and hands back its directory for a restart.
    #[must_use]
    pub fn stop_keeping_state(mut self) -> tempfile::TempDir {
        self.terminate(Duration::from_secs(10));
        let directory = tempfile::tempdir().expect("temporary directory");
        std::mem::replace(&mut self.directory, directory)
    }
}

/// A local TCP address nothing listens on right now.
fn free_local_address() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_or_else(|_| "127.0.0.1:0".to_owned(), |address| address.to_string())
}

fn nix_pid(child: &Child) -> String {
    child.id().to_string()
}

/// Parses a JSONL event log.
#[must_use]
pub fn read_events(path: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
