//! Where a host process lives, from `/proc/<pid>/cgroup` (the host, containers on the path
//! outermost first, or another engine), and a container's
//! CPU usage from its cgroup — cgroup v1 and v2, cgroupfs and systemd drivers, custom parents.

use std::path::{Path, PathBuf};

/// Where a process's cgroup places it, as far as the path alone can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupPlacement {
    /// No container on the path: a host process (`/`, `/user.slice/…`, `/system.slice/x.service`).
    Host,
    /// Docker-style container ids on the path, outermost first (`/docker/<a>/<b>` → `[a, b]`;
    /// Docker-in-Docker and systemd inside a container nest like this). Which of them this
    /// engine knows is for the caller to check.
    Containers(Vec<String>),
    /// The cgroup of another container engine (containerd/Kubernetes, CRI-O, Podman, LXC,
    /// rootless Docker under a user's systemd): never this engine's to judge.
    Foreign(String),
}

/// Components that mark a cgroup as another engine's.
const FOREIGN_MARKERS: [&str; 8] = [
    "kubepods",
    "containerd",
    "cri-containerd-",
    "crio-",
    "libpod",
    "podman",
    "lxc",
    "machine.slice",
];

/// Reads a `/proc/<pid>/cgroup` text. Every line that places processes (the v2 line `0::`, and
/// the v1 `memory`, `pids`, `cpu`, `cpuacct` and `name=systemd` lines) is read; a container on
/// any of them wins over a foreign engine, which wins over the host.
#[must_use]
pub fn placement_from_cgroup(text: &str) -> CgroupPlacement {
    let mut best = CgroupPlacement::Host;
    for path in text.lines().filter_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let relevant = controllers.is_empty()
            || controllers
                .split(',')
                .any(|c| matches!(c, "memory" | "pids" | "name=systemd" | "cpu" | "cpuacct"));
        relevant.then_some(path)
    }) {
        let placement = placement_from_path(path);
        let rank = |placement: &CgroupPlacement| match placement {
            CgroupPlacement::Host => 0,
            CgroupPlacement::Foreign(_) => 1,
            CgroupPlacement::Containers(ids) => 2 + ids.len(),
        };
        if rank(&placement) > rank(&best) {
            best = placement;
        }
    }
    best
}

/// Reads one cgroup path.
#[must_use]
pub fn placement_from_path(path: &str) -> CgroupPlacement {
    let components: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    // Rootless Docker and Podman run under a user's systemd instance.
    let under_user_manager = components
        .iter()
        .any(|part| part.starts_with("user@") && part.ends_with(".service"));
    let foreign = under_user_manager
        || components.iter().any(|part| {
            FOREIGN_MARKERS
                .iter()
                .any(|marker| part.starts_with(marker) || part.contains(&format!("-{marker}")))
        });
    let ids: Vec<String> = components
        .iter()
        .filter_map(|part| container_id_from_component(part))
        .collect();
    if foreign {
        return CgroupPlacement::Foreign(path.to_owned());
    }
    if ids.is_empty() {
        CgroupPlacement::Host
    } else {
        CgroupPlacement::Containers(ids)
    }
}

/// `<64 hex>` or `docker-<64 hex>.scope`.
fn container_id_from_component(component: &str) -> Option<String> {
    let candidate = component.strip_prefix("docker-").unwrap_or(component);
    let candidate = candidate.strip_suffix(".scope").unwrap_or(candidate);
    let is_id = candidate.len() == 64
        && candidate
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    is_id.then(|| candidate.to_owned())
}

/// Reads the cgroup placement of `pid` under `proc_root` (normally `/proc`).
///
/// # Errors
/// When the process is gone or its cgroup file is unreadable.
pub fn placement_of_pid(proc_root: &Path, pid: u32) -> std::io::Result<CgroupPlacement> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"))?;
    Ok(placement_from_cgroup(&text))
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

    fn containers(ids: &[&str]) -> CgroupPlacement {
        CgroupPlacement::Containers(ids.iter().map(|id| (*id).to_owned()).collect())
    }

    const INNER: &str = "99aa7a52e21a63fb74d2040757d3296e5f4e28600c376fdc9e61e564273e4600";

    #[test]
    fn finds_the_container_in_every_layout_docker_uses() {
        let cases = [
            format!("12:pids:/docker/{ID}\n4:memory:/docker/{ID}\n0::/docker/{ID}\n"),
            format!("0::/system.slice/docker-{ID}.scope\n"),
            format!("0::/ds01.slice/ds01-student.slice/docker-{ID}.scope\n"),
            format!("0::/ds01.slice/ds01-student-alice.slice/docker-{ID}.scope\n"),
            format!("0::/ds01.slice/{ID}\n"),
            format!("0::/ds01-alice/{ID}\n"),
            format!("9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n"),
            format!("4:memory:/ds01-alice/{ID}\n0::/\n"),
        ];
        for text in cases {
            assert_eq!(placement_from_cgroup(&text), containers(&[ID]), "{text}");
        }
    }

    #[test]
    fn nested_cgroups_name_every_container_on_the_path_outermost_first() {
        let cases = [
            (format!("0::/docker/{ID}/job1\n"), vec![ID]),
            (format!("0::/docker/{ID}/{INNER}\n"), vec![ID, INNER]),
            (format!("0::/docker/{ID}/docker/{INNER}\n"), vec![ID, INNER]),
            (
                format!("0::/ds01.slice/docker-{ID}.scope/init.scope\n"),
                vec![ID],
            ),
            (
                format!("0::/ds01.slice/docker-{ID}.scope/system.slice/docker-{INNER}.scope\n"),
                vec![ID, INNER],
            ),
            // A process moved in one v1 hierarchy only: that hierarchy still places it.
            (
                format!("12:pids:/docker/{ID}/job1\n4:memory:/user.slice\n0::/user.slice\n"),
                vec![ID],
            ),
        ];
        for (text, ids) in cases {
            assert_eq!(placement_from_cgroup(&text), containers(&ids), "{text}");
        }
    }

    #[test]
    fn other_engines_cgroups_are_foreign() {
        let cases = [
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope\n"
            ),
            format!("0::/kubepods/besteffort/pod1/{ID}\n"),
            format!("0::/system.slice/containerd.service/k8s.io/{ID}\n"),
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
            format!(
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker.service/docker/{ID}\n"
            ),
            format!(
                "0::/user.slice/user-1000.slice/user@1000.service/user.slice/docker-{ID}.scope\n"
            ),
            "0::/lxc.payload.web/init.scope\n".to_owned(),
        ];
        for text in cases {
            assert!(
                matches!(placement_from_cgroup(&text), CgroupPlacement::Foreign(_)),
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
            assert_eq!(placement_from_cgroup(text), CgroupPlacement::Host, "{text}");
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
