//! Who may change things: root and members of `--admin-group`; anyone may read.

use super::Peer;

/// The admin rule.
#[derive(Clone, Debug)]
pub struct AdminPolicy {
    /// The admin group's name.
    pub group: String,
}

impl AdminPolicy {
    /// Whether `peer` may apply and delete.
    #[must_use]
    pub fn is_admin(&self, peer: &Peer) -> bool {
        let Some(uid) = peer.uid else { return false };
        if uid == 0 {
            return true;
        }
        let Ok(Some(group)) = nix::unistd::Group::from_name(&self.group) else {
            return false;
        };
        let admin_gid = group.gid.as_raw();
        if peer.gid == Some(admin_gid) {
            return true;
        }
        let name = ds01_host::users::user_name(uid);
        if group.mem.contains(&name) {
            return true;
        }
        // Supplementary groups of the connecting process.
        peer.pid
            .is_some_and(|pid| supplementary_groups(pid).contains(&admin_gid))
    }
}

fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Groups:").map(str::to_owned))
        })
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|gid| gid.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
