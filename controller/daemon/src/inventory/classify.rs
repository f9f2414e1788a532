//! Container origin and owner, as DESIGN §2.3 defines them.
//!
//! Origin: the `ds01.interface`/`ds01.container_type` label, else `devcontainer`, `compose`,
//! `infrastructure`, `ds01-managed`, `docker` — in that order, so a blanket
//! `ds01.managed=true` never hides a devcontainer or compose origin.
//!
//! Owner: `ds01.user` → `aime.mlc.USER` → name suffix `._.<uid>` → `devcontainer.local_folder`
//! under `/home/<u>/` → a bind mount under `/home/<u>/` → the uid of the init process (not
//! root) → `unknown`.

use ds01_host::ContainerInfo;
use ds01_spec::resolve::UNKNOWN_OWNER;

/// The origins [`origin`] gives when no label names one.
pub const BUILT_IN_ORIGINS: [&str; 5] = [
    "devcontainer",
    "compose",
    "infrastructure",
    "ds01-managed",
    "docker",
];

/// The origin of a container (`containerTypes` key).
#[must_use]
pub fn origin(container: &ContainerInfo) -> String {
    for key in ["ds01.interface", "ds01.container_type"] {
        if let Some(value) = container
            .label(key)
            .map(str::trim)
            .filter(|value| !value.is_empty())
        {
            return value.to_owned();
        }
    }
    if container
        .labels
        .keys()
        .any(|key| key.starts_with("devcontainer."))
        || container.name.starts_with("vsc-")
    {
        return "devcontainer".to_owned();
    }
    if container.labels.contains_key("com.docker.compose.project") {
        return "compose".to_owned();
    }
    if container.label("ds01.monitoring") == Some("true") {
        return "infrastructure".to_owned();
    }
    if container.label("ds01.managed") == Some("true") {
        return "ds01-managed".to_owned();
    }
    "docker".to_owned()
}

/// Who owns a container and which rule said so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// User name, or `unknown`.
    pub user: String,
    /// The rule: `label:ds01.user`, `label:aime.mlc.USER`, `name-suffix`, `devcontainer-folder`,
    /// `bind-mount`, `init-process`, `none`.
    pub source: &'static str,
}

/// Determines the owner; `init_uid` is the uid of the container's init process when known,
/// `user_name` turns a uid into a name.
#[must_use]
pub fn owner(
    container: &ContainerInfo,
    init_uid: Option<u32>,
    user_name: impl Fn(u32) -> String,
) -> Owner {
    let found = |user: String, source| Owner { user, source };
    for (key, source) in [
        ("ds01.user", "label:ds01.user"),
        ("aime.mlc.USER", "label:aime.mlc.USER"),
    ] {
        if let Some(user) = container
            .label(key)
            .map(str::trim)
            .filter(|user| !user.is_empty())
        {
            return found(user.to_owned(), source);
        }
    }
    if let Some((_, uid)) = container.name.rsplit_once("._.")
        && let Ok(uid) = uid.parse::<u32>()
    {
        return found(user_name(uid), "name-suffix");
    }
    if let Some(user) = container
        .label("devcontainer.local_folder")
        .and_then(home_user)
    {
        return found(user, "devcontainer-folder");
    }
    if let Some(user) = container
        .mounts
        .iter()
        .filter(|mount| mount.kind == "bind")
        .find_map(|mount| home_user(&mount.source))
    {
        return found(user, "bind-mount");
    }
    if let Some(uid) = init_uid.filter(|uid| *uid != 0) {
        return found(user_name(uid), "init-process");
    }
    found(UNKNOWN_OWNER.to_owned(), "none")
}

/// `alice` from `/home/alice/…`.
fn home_user(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/home/")?;
    let user = rest.split('/').next()?;
    (!user.is_empty()).then(|| user.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ds01_host::{ContainerState, GpuAccess, Mount};

    use super::*;

    type Labels = &'static [(&'static str, &'static str)];

    fn container(name: &str, labels: &[(&str, &str)], mounts: &[&str]) -> ContainerInfo {
        ContainerInfo {
            id: "a".repeat(64),
            name: name.to_owned(),
            image: "img".to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            state: ContainerState::Running,
            pid: Some(1),
            created_at: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            user: None,
            mounts: mounts
                .iter()
                .map(|source| Mount {
                    source: (*source).to_owned(),
                    destination: "/w".to_owned(),
                    kind: "bind".to_owned(),
                })
                .collect(),
            gpu: GpuAccess::default(),
            cgroup_parent: None,
        }
    }

    #[test]
    fn origin_follows_the_documented_order() {
        let cases: [(&str, Labels, &str); 9] = [
            (
                "jobs-1",
                &[("ds01.interface", "api"), ("ds01.managed", "true")],
                "api",
            ),
            (
                "x",
                &[("ds01.container_type", "orchestration")],
                "orchestration",
            ),
            (
                "x",
                &[
                    ("devcontainer.local_folder", "/home/a/p"),
                    ("ds01.managed", "true"),
                ],
                "devcontainer",
            ),
            ("vsc-project-abc", &[], "devcontainer"),
            (
                "x",
                &[
                    ("com.docker.compose.project", "p"),
                    ("ds01.managed", "true"),
                ],
                "compose",
            ),
            ("x", &[("ds01.monitoring", "true")], "infrastructure"),
            ("x", &[("ds01.managed", "true")], "ds01-managed"),
            ("x", &[("ds01.managed", "false")], "docker"),
            ("x", &[], "docker"),
        ];
        for (name, labels, expected) in cases {
            assert_eq!(
                origin(&container(name, labels, &[])),
                expected,
                "{name} {labels:?}"
            );
            let named = labels
                .iter()
                .any(|(key, _)| ["ds01.interface", "ds01.container_type"].contains(key));
            assert!(
                named || BUILT_IN_ORIGINS.contains(&expected),
                "{expected} is not in BUILT_IN_ORIGINS"
            );
        }
    }

    #[test]
    fn owner_follows_the_documented_chain() {
        let names = |uid: u32| format!("user{uid}");
        type Case = (
            &'static str,
            Labels,
            &'static [&'static str],
            Option<u32>,
            &'static str,
            &'static str,
        );
        let cases: [Case; 8] = [
            (
                "x",
                &[("ds01.user", "alice"), ("aime.mlc.USER", "bob")],
                &[],
                Some(1000),
                "alice",
                "label:ds01.user",
            ),
            (
                "x",
                &[("aime.mlc.USER", "bob")],
                &[],
                None,
                "bob",
                "label:aime.mlc.USER",
            ),
            (
                "train._.1001",
                &[],
                &["/home/carol/x"],
                None,
                "user1001",
                "name-suffix",
            ),
            (
                "x",
                &[("devcontainer.local_folder", "/home/dave/proj")],
                &[],
                None,
                "dave",
                "devcontainer-folder",
            ),
            (
                "x",
                &[],
                &["/data/shared", "/home/erin/work"],
                Some(0),
                "erin",
                "bind-mount",
            ),
            ("x", &[], &[], Some(1002), "user1002", "init-process"),
            ("x", &[], &[], Some(0), "unknown", "none"),
            ("x", &[], &["/var/lib/x"], None, "unknown", "none"),
        ];
        for (name, labels, mounts, uid, user, source) in cases {
            let found = owner(&container(name, labels, mounts), uid, names);
            assert_eq!(
                found,
                Owner {
                    user: user.to_owned(),
                    source
                },
                "{name} {labels:?} {mounts:?}"
            );
        }
    }
}
