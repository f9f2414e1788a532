//! Which container a host process belongs to, from `/proc/<pid>/cgroup`, and a container's
//! CPU usage from its cgroup — cgroup v1 and v2, cgroupfs and systemd drivers, custom parents.

use std::path::{Path, PathBuf};

/// The 64-hex container id in a `/proc/<pid>/cgroup` text, if the process is in a container.
///
/// The rule: take the last path component of the v2 line (`0::`) or of a v1 `memory`, `pids`
/// or `name=systemd` line, and match `[docker-]<64 hex>[.scope]`. This covers
/// `/docker/<id>`, `/system.slice/docker-<id>.scope`, `/<custom parent>/<id>` and
/// `/ds01.slice/docker-<id>.scope`.
#[must_use]
pub fn container_id_from_cgroup(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let relevant = controllers.is_empty()
                || controllers
                    .split(',')
                    .any(|c| matches!(c, "memory" | "pids" | "name=systemd" | "cpu" | "cpuacct"));
            relevant.then_some(path)
        })
        .find_map(container_id_from_path)
}

fn container_id_from_path(path: &str) -> Option<String> {
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let candidate = last.strip_prefix("docker-").unwrap_or(last);
    let candidate = candidate.strip_suffix(".scope").unwrap_or(candidate);
    let is_id = candidate.len() == 64
        && candidate
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    is_id.then(|| candidate.to_owned())
}

/// Reads the container id of `pid` under `proc_root` (normally `/proc`).
///
/// # Errors
/// When the process is gone or its cgroup file is unreadable.
pub fn container_of_pid(proc_root: &Path, pid: u32) -> std::io::Result<Option<String>> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"))?;
    Ok(container_id_from_cgroup(&text))
}

/// The cgroup path of `pid` (v2 line, else the v1 `cpuacct` line), for reading its counters.
///
/// # Errors
/// When the process is gone.
pub fn cgroup_paths_of_pid(proc_root: &Path, pid: u32) -> std::io::Result<CgroupPaths> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"))?;
    let mut paths = CgroupPaths::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            paths.unified = Some(path.to_owned());
        } else if controllers.split(',').any(|c| c == "cpuacct") {
            paths.cpuacct = Some(path.to_owned());
        }
    }
    Ok(paths)
}

/// Cgroup paths of a process, relative to the hierarchy roots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupPaths {
    /// Path in the v2 (unified) hierarchy.
    pub unified: Option<String>,
    /// Path in the v1 `cpuacct` hierarchy.
    pub cpuacct: Option<String>,
}

/// Total CPU time used by a cgroup, in nanoseconds: v1 `cpuacct.usage`, else v2 `cpu.stat`
/// `usage_usec`. `cgroup_root` is normally `/sys/fs/cgroup`.
#[must_use]
pub fn cpu_usage_nanos(cgroup_root: &Path, paths: &CgroupPaths) -> Option<u64> {
    let relative = |path: &str| PathBuf::from(path.trim_start_matches('/'));
    if let Some(path) = &paths.cpuacct {
        for hierarchy in ["cpuacct", "cpu,cpuacct"] {
            let file = cgroup_root
                .join(hierarchy)
                .join(relative(path))
                .join("cpuacct.usage");
            if let Ok(text) = std::fs::read_to_string(file) {
                return text.trim().parse().ok();
            }
        }
    }
    let path = paths.unified.as_deref()?;
    for base in [cgroup_root.to_path_buf(), cgroup_root.join("unified")] {
        if let Ok(text) = std::fs::read_to_string(base.join(relative(path)).join("cpu.stat")) {
            let micros: Option<u64> = text
                .lines()
                .find_map(|line| line.strip_prefix("usage_usec ")?.trim().parse().ok());
            if let Some(micros) = micros {
                return Some(micros.saturating_mul(1000));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "004887a52e21a63fb74d2040757d3296e5f4e28600c376fdc9e61e564273e46e";

    #[test]
    fn finds_the_container_in_every_layout_docker_uses() {
        let cases = [
            format!("12:pids:/docker/{ID}\n4:memory:/docker/{ID}\n0::/docker/{ID}\n"),
            format!("0::/system.slice/docker-{ID}.scope\n"),
            format!("0::/ds01.slice/ds01-student.slice/docker-{ID}.scope\n"),
            format!("0::/ds01-alice/{ID}\n"),
            format!("9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n"),
            format!("4:memory:/ds01-alice/{ID}\n0::/\n"),
        ];
        for text in cases {
            assert_eq!(
                container_id_from_cgroup(&text).as_deref(),
                Some(ID),
                "{text}"
            );
        }
    }

    #[test]
    fn host_processes_are_in_no_container() {
        let cases = [
            "0::/\n",
            "0::/user.slice/user-1000.slice/session-3.scope\n",
            "0::/system.slice/nvidia-persistenced.service\n",
            "12:pids:/user.slice\n0::/init.scope\n",
            "0::/docker/not-a-container-id\n",
        ];
        for text in cases {
            assert_eq!(container_id_from_cgroup(text), None, "{text}");
        }
    }

    #[test]
    fn cpu_usage_is_read_from_v1_and_v2_files() {
        let root = tempfile::tempdir().expect("tempdir");
        let v1 = root.path().join("cpuacct/docker/abc");
        std::fs::create_dir_all(&v1).expect("mkdir");
        std::fs::write(v1.join("cpuacct.usage"), "123456789\n").expect("write");
        let paths = CgroupPaths {
            unified: None,
            cpuacct: Some("/docker/abc".into()),
        };
        assert_eq!(cpu_usage_nanos(root.path(), &paths), Some(123_456_789));

        let v2 = root.path().join("system.slice/docker-abc.scope");
        std::fs::create_dir_all(&v2).expect("mkdir");
        std::fs::write(v2.join("cpu.stat"), "usage_usec 2500\nuser_usec 2000\n").expect("write");
        let paths = CgroupPaths {
            unified: Some("/system.slice/docker-abc.scope".into()),
            cpuacct: None,
        };
        assert_eq!(cpu_usage_nanos(root.path(), &paths), Some(2_500_000));
    }
}
