//! A private Docker daemon for one test (own socket, data root, exec root, containerd
//! namespace and network namespace), so the test can stop and restart it without disturbing
//! anything — plain (no container networking) or shaped like the lab's engine.
//!
//! The lab shape is the lab's `daemon.json`: default runtime `nvidia` (here a shim that execs
//! `runc`), a no-op `nvidia-container-runtime-hook` on dockerd's PATH (so dockerd registers its
//! NVIDIA device driver and `--gpus` works), and `cgroup-parent: ds01.slice` (cgroupfs driver
//! here, so container cgroups are `/ds01.slice/<id>`). Its network namespace has loopback up and
//! its own default bridge, so user-defined networks and published ports work inside it; run
//! the controller there with [`PrivateEngine::enter_network`] to reach published ports.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bollard::Docker;

/// A dockerd process the test owns.
pub struct PrivateEngine {
    directory: tempfile::TempDir,
    child: Option<Child>,
    name: String,
    lab: bool,
}

/// The shim registered as runtime `nvidia`: the real toolkit's runtime adds the hook and execs
/// runc; the hook itself comes from dockerd's device driver (`--gpus`) or not at all.
const RUNTIME_SHIM: &str = "#!/bin/sh\nexec runc \"$@\"\n";
/// A hook that grants nothing and succeeds (it reads the container state on stdin).
const NOOP_HOOK: &str = "#!/bin/sh\ncat >/dev/null 2>&1\nexit 0\n";

impl PrivateEngine {
    /// Starts a daemon and waits until it answers.
    ///
    /// # Panics
    /// When dockerd is missing or does not answer within a minute.
    pub async fn start(name: &str) -> Self {
        Self::start_shaped(name, false).await
    }

    /// Starts a daemon shaped like the lab's (see the module documentation).
    ///
    /// # Panics
    /// When dockerd is missing or does not answer within a minute.
    pub async fn start_lab(name: &str) -> Self {
        Self::start_shaped(name, true).await
    }

    async fn start_shaped(name: &str, lab: bool) -> Self {
        let directory = tempfile::Builder::new()
            .prefix("ds01-engine-")
            .tempdir_in("/var/tmp")
            .expect("engine directory");
        let mut engine = PrivateEngine {
            directory,
            child: None,
            name: name.to_owned(),
            lab,
        };
        if lab {
            engine.write_lab_files();
        }
        engine.spawn().await;
        engine
    }

    fn write_lab_files(&self) {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.directory.path().join("bin");
        std::fs::create_dir_all(&bin).expect("engine bin directory");
        for (name, text) in [
            ("nvidia-container-runtime", RUNTIME_SHIM),
            ("nvidia-container-runtime-hook", NOOP_HOOK),
        ] {
            let path = bin.join(name);
            std::fs::write(&path, text).expect("write a lab shim");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("make a lab shim executable");
        }
        let config = serde_json::json!({
            "default-runtime": "nvidia",
            "runtimes": { "nvidia": { "path": bin.join("nvidia-container-runtime"), "runtimeArgs": [] } },
            "cgroup-parent": "ds01.slice",
        });
        std::fs::write(
            self.directory.path().join("daemon.json"),
            config.to_string(),
        )
        .expect("write daemon.json");
    }

    /// dockerd's pid (it runs in its own network namespace).
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A command prefix that runs a program in the engine's network namespace, where its
    /// published ports are (`nsenter --net=/proc/<dockerd>/ns/net --`).
    ///
    /// # Panics
    /// When the engine is not running.
    #[must_use]
    pub fn enter_network(&self) -> Vec<String> {
        let pid = self.pid().expect("the engine is running");
        vec![
            "nsenter".to_owned(),
            format!("--net=/proc/{pid}/ns/net"),
            "--".to_owned(),
        ]
    }

    /// `unix://…` address of its socket.
    #[must_use]
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.directory.path().join("docker.sock")
    }

    /// A client for it.
    ///
    /// # Panics
    /// When the socket path is unusable.
    #[must_use]
    pub fn docker(&self) -> Docker {
        Docker::connect_with_unix(
            &self.socket().display().to_string(),
            120,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("client for the private engine")
    }

    async fn spawn(&mut self) {
        let root = self.directory.path();
        let namespace = format!("ds01test-{}-{}", self.name, std::process::id());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("dockerd.log"))
            .expect("dockerd log");
        // Its own network namespace: with `--bridge none` dockerd deletes the host's `docker0`,
        // which would break the main engine. Loopback is brought up first (published ports
        // listen on it), then the shell becomes dockerd (same pid).
        let mut command = Command::new("unshare");
        command
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec dockerd \"$@\"",
                "sh",
            ])
            .arg("--host")
            .arg(self.host())
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("docker.pid"))
            .args([
                "--iptables=false",
                "--ip-masq=false",
                "--storage-driver",
                "vfs",
                "--log-level",
                "warn",
            ]);
        if self.lab {
            let path = format!(
                "{}:{}",
                root.join("bin").display(),
                std::env::var("PATH")
                    .unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".to_owned())
            );
            command
                .arg("--config-file")
                .arg(root.join("daemon.json"))
                .env("PATH", path);
        } else {
            command.args(["--bridge", "none"]);
        }
        let child = command
            .arg("--containerd-namespace")
            .arg(&namespace)
            .arg("--containerd-plugins-namespace")
            .arg(format!("{namespace}-plugins"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd in a new network namespace (needs unshare and docker.io)");
        self.child = Some(child);
        let started = Instant::now();
        while !self.socket().exists() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "private dockerd did not create its socket; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let docker = self.docker();
        while docker.ping().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "private dockerd did not answer; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the daemon (SIGTERM, as systemd would) and waits for it to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while matches!(child.try_wait(), Ok(None)) {
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Starts it again on the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// dockerd's own log.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Its directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        self.directory.path()
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while matches!(child.try_wait(), Ok(None))
                && started.elapsed() < Duration::from_secs(20)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // vfs layers may hold read-only files; make the tree removable before TempDir drops.
        let _ = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(self.directory.path())
            .status();
    }
}
