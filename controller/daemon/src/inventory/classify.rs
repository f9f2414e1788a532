//! Container origin and owner, as DESIGN §2.3 defines them.
//!
//! Origin: the `ds01.interface`/`ds01.container_type` label, else `devcontainer`, `compose`,
//! `infrastructure`, `ds01-managed`, `docker` — in that order, so a blanket
//! `ds01.managed=true` never hides a devcontainer or compose origin.
//!
//! Owner: `ds01.user` → `aime.mlc.USER` → name suffix `._.<uid>` → `devcontainer.local_folder`
//! under `/home/<u>/` → a bind mount under `/home/<u>/` → the uid of the init process (not
//! root) → `unknown`.
//!
//! An owner label is a claim: when kernel evidence contradicts it — the uid of the init process
//! (not root), or a per-user cgroup parent `ds01-<group>-<user>.slice` naming another user — the
//! evidence wins (the uid before the slice) and the conflict is reported.

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
    /// `bind-mount`, `init-process`, `cgroup-parent` (after a conflict), `none`.
    pub source: &'static str,
    /// An owner label the kernel's evidence contradicted.
    pub conflict: Option<OwnerConflict>,
    /// The kernel vouches for the owner: the container's init process runs as that user (not
    /// root). Otherwise the owner is a claim, which never borrows a user's looser limits or
    /// exemptions, nor reaches their terminals.
    pub verified: bool,
}

/// An owner label contradicted by kernel evidence; the evidence won.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OwnerConflict {
    /// The user the label names.
    pub claimed: String,
    /// The label (`label:ds01.user`, `label:aime.mlc.USER`).
    pub claimed_by: &'static str,
    /// The user the evidence names.
    pub evidence: String,
    /// The evidence: `init-process` or `cgroup-parent`.
    pub evidence_source: &'static str,
    /// The evidence as observed (`uid 1001`, `cgroup parent ds01-student-bob.slice`).
    pub observed: String,
    /// Which won: always `evidence`.
    pub winner: &'static str,
}

/// The user a per-user cgroup parent names: `ds01-<group>-<user>.slice` (the last path
/// component; the user part is the lab wrapper's sanitized name).
#[must_use]
pub fn slice_user(cgroup_parent: &str) -> Option<&str> {
    let last = cgroup_parent.trim_end_matches('/').rsplit('/').next()?;
    let (_group, user) = last
        .strip_suffix(".slice")?
        .strip_prefix("ds01-")?
        .split_once('-')?;
    (!user.is_empty()).then_some(user)
}

/// The lab wrapper's slice form of a user name (`@` → `-at-`, other characters outside
/// `[A-Za-z0-9_:-]` → `-`, runs of `-` collapsed, trimmed).
fn slice_form(user: &str) -> String {
    let replaced = user.replace('@', "-at-");
    let mut out = String::new();
    for c in replaced.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-') {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').to_owned()
}

/// Kernel evidence against a label's user: (user, source, what was observed).
fn contradicting_evidence(
    container: &ContainerInfo,
    claimed: &str,
    init_uid: Option<u32>,
    user_name: &impl Fn(u32) -> String,
) -> Option<(String, &'static str, String)> {
    if let Some(uid) = init_uid.filter(|uid| *uid != 0) {
        let user = user_name(uid);
        return (user != claimed).then(|| (user, "init-process", format!("uid {uid}")));
    }
    let parent = container.cgroup_parent.as_deref()?;
    let user = slice_user(parent)?;
    (user != slice_form(claimed)).then(|| {
        (
            user.to_owned(),
            "cgroup-parent",
            format!("cgroup parent {parent}"),
        )
    })
}

/// Determines the owner; `init_uid` is the uid of the container's init process when known,
/// `user_name` turns a uid into a name.
#[must_use]
pub fn owner(
    container: &ContainerInfo,
    init_uid: Option<u32>,
    user_name: impl Fn(u32) -> String,
) -> Owner {
    let mut owner = claimed_owner(container, init_uid, &user_name);
    owner.verified = init_uid
        .filter(|uid| *uid != 0)
        .is_some_and(|uid| user_name(uid) == owner.user);
    owner
}

fn claimed_owner(
    container: &ContainerInfo,
    init_uid: Option<u32>,
    user_name: &impl Fn(u32) -> String,
) -> Owner {
    let found = |user: String, source| Owner {
        user,
        source,
        conflict: None,
        verified: false,
    };
    for (key, source) in [
        ("ds01.user", "label:ds01.user"),
        ("aime.mlc.USER", "label:aime.mlc.USER"),
    ] {
        if let Some(user) = container
            .label(key)
            .map(str::trim)
            .filter(|user| !user.is_empty())
        {
            let Some((evidence, evidence_source, observed)) =
                contradicting_evidence(container, user, init_uid, user_name)
            else {
                return found(user.to_owned(), source);
            };
            return Owner {
                user: evidence.clone(),
                source: evidence_source,
                conflict: Some(OwnerConflict {
                    claimed: user.to_owned(),
                    claimed_by: source,
                    evidence,
                    evidence_source,
                    observed,
                    winner: "evidence",
                }),
                verified: false,
            };
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
#[path = "classify_tests.rs"]
mod tests;
