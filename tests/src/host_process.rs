//! Real host processes for orphan tests, and cgroups that place them where a test needs them:
//! in a container's cgroup (one Docker knows as stopped or removed) or nested inside a running
//! container's cgroup.

use std::{
    path::PathBuf,
    process::{Child, Command},
    time::{Duration, Instant},
};

/// A process the test owns; killed on drop.
pub struct Proc(Child);

impl Proc {
    /// Runs `script` with `sh -c`, through `wrapper` (e.g. `setpriv --reuid=…`) when given.
    ///
    /// # Panics
    /// When it cannot be started.
    #[must_use]
    pub fn spawn(wrapper: &[&str], script: &str) -> Self {
        let mut command = Command::new(wrapper.first().copied().unwrap_or("sh"));
        if wrapper.is_empty() {
            command.args(["-c", script]);
        } else {
            command.args(&wrapper[1..]).args(["sh", "-c", script]);
        }
        Proc(command.spawn().expect("spawn"))
    }

    /// Its pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Waits until it exits; `false` when it still runs after `deadline`.
    pub fn wait_dead(&mut self, deadline: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < deadline {
            if !self.alive() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A cgroup directory the test made; processes moved in look like they live there. Removed on
/// drop (after the processes in it are gone).
pub struct TestCgroup {
    directories: Vec<PathBuf>,
    procs: PathBuf,
}

fn v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

impl TestCgroup {
    /// A cgroup named like container `id` under a parent of the test's own
    /// (`/ds01test-<tag>-<pid>/<id>`): a container Docker knows as stopped, or saw removed.
    ///
    /// # Panics
    /// When it cannot be created (needs root).
    #[must_use]
    pub fn named_like(id: &str, tag: &str) -> Self {
        let base = if v2() {
            PathBuf::from(format!(
                "/sys/fs/cgroup/ds01test-{tag}-{}",
                std::process::id()
            ))
        } else {
            PathBuf::from(format!(
                "/sys/fs/cgroup/pids/ds01test-{tag}-{}",
                std::process::id()
            ))
        };
        let leaf = base.join(id);
        std::fs::create_dir_all(&leaf).expect("create the test cgroup (needs root)");
        TestCgroup {
            directories: vec![leaf.clone(), base],
            procs: leaf.join("cgroup.procs"),
        }
    }

    /// A cgroup `child` nested inside the cgroup of the running container whose init process
    /// is `container_pid` (`/docker/<id>/<child>`).
    ///
    /// # Panics
    /// When it cannot be created (needs root).
    #[must_use]
    pub fn nested_in(container_pid: u32, child: &str) -> Self {
        let text = std::fs::read_to_string(format!("/proc/{container_pid}/cgroup"))
            .expect("the container's cgroup");
        let (hierarchy, path) = if v2() {
            let path = text
                .lines()
                .find_map(|line| line.strip_prefix("0::"))
                .expect("a v2 cgroup line");
            (PathBuf::from("/sys/fs/cgroup"), path.to_owned())
        } else {
            let path = text
                .lines()
                .find_map(|line| {
                    let mut parts = line.splitn(3, ':');
                    let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                    (controllers == "pids").then(|| path.to_owned())
                })
                .expect("a v1 pids cgroup line");
            (PathBuf::from("/sys/fs/cgroup/pids"), path)
        };
        let leaf = hierarchy.join(path.trim_start_matches('/')).join(child);
        std::fs::create_dir_all(&leaf).expect("create the nested cgroup (needs root)");
        TestCgroup {
            directories: vec![leaf.clone()],
            procs: leaf.join("cgroup.procs"),
        }
    }

    /// Moves `pid` in.
    ///
    /// # Panics
    /// When it cannot.
    pub fn adopt(&self, pid: u32) {
        std::fs::write(&self.procs, pid.to_string()).expect("move the process into the cgroup");
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for directory in &self.directories {
            for _ in 0..50 {
                if std::fs::remove_dir(directory).is_ok() || !directory.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
