//! A private Docker daemon for one test (own socket, data root, exec root, containerd
//! namespace and network namespace; no container networking), so the test can stop and restart it without disturbing anything.

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
}

impl PrivateEngine {
    /// Starts a daemon and waits until it answers.
    ///
    /// # Panics
    /// When dockerd is missing or does not answer within a minute.
    pub async fn start(name: &str) -> Self {
        let directory = tempfile::Builder::new()
            .prefix("ds01-engine-")
            .tempdir_in("/var/tmp")
            .expect("engine directory");
        let mut engine = PrivateEngine {
            directory,
            child: None,
            name: name.to_owned(),
        };
        engine.spawn().await;
        engine
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
        // which would break the main engine.
        let child = Command::new("unshare")
            .args(["--net", "--", "dockerd"])
            .arg("--host")
            .arg(self.host())
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("docker.pid"))
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-masq=false",
                "--storage-driver",
                "vfs",
                "--log-level",
                "warn",
            ])
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
