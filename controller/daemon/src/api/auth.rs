//! Who is on the other end and what they may do: root and members of `--admin-group` may
//! change things; anyone may read. Decided once per connection, at accept time, from the
//! kernel's peer credentials (SO_PEERCRED uid and gid) and the uid's group list as the group
//! database gives it then (`getgrouplist`) — never from `/proc/<pid>` of a pid that may have
//! been reused since.

use super::Peer;

/// The admin rule.
#[derive(Clone, Debug)]
pub struct AdminPolicy {
    /// The admin group's name.
    pub group: String,
}

/// The kernel's credentials of a connection's peer (SO_PEERCRED).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Effective uid.
    pub uid: Option<u32>,
    /// Effective gid.
    pub gid: Option<u32>,
    /// Pid at connect time (for logs only).
    pub pid: Option<i32>,
}

impl AdminPolicy {
    /// Resolves the peer's name and groups and decides whether it is an admin. Blocking (NSS):
    /// call it from a blocking thread.
    #[must_use]
    pub fn resolve(&self, credentials: Credentials) -> Peer {
        let name = credentials
            .uid
            .map_or_else(|| "?".to_owned(), ds01_host::users::user_name);
        let admin = match (credentials.uid, credentials.gid) {
            (Some(0), _) => true,
            (Some(_), Some(gid)) => {
                let groups = ds01_host::users::group_list(&name, gid);
                admits(
                    credentials.uid,
                    gid,
                    &groups,
                    ds01_host::users::group_id(&self.group),
                )
            }
            _ => false,
        };
        Peer {
            uid: credentials.uid,
            gid: credentials.gid,
            pid: credentials.pid,
            name,
            admin,
        }
    }

    /// The peer when its names could not be resolved: a reader, never an admin (root stays
    /// root: uid 0 needs no look-up).
    #[must_use]
    pub fn unresolved(credentials: Credentials) -> Peer {
        Peer {
            uid: credentials.uid,
            gid: credentials.gid,
            pid: credentials.pid,
            name: credentials
                .uid
                .map_or_else(|| "?".to_owned(), |uid| uid.to_string()),
            admin: credentials.uid == Some(0),
        }
    }
}

/// The rule itself: root, or the admin group as primary or supplementary group.
fn admits(uid: Option<u32>, gid: u32, groups: &[u32], admin_gid: Option<u32>) -> bool {
    match uid {
        Some(0) => true,
        Some(_) => admin_gid.is_some_and(|admin| gid == admin || groups.contains(&admin)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_members_of_the_admin_group_are_admins() {
        assert!(admits(Some(0), 0, &[], None));
        assert!(admits(Some(1000), 500, &[1000], Some(500)), "primary group");
        assert!(
            admits(Some(1000), 1000, &[1000, 27, 500], Some(500)),
            "supplementary group"
        );
        assert!(!admits(Some(1000), 1000, &[1000, 27], Some(500)));
        assert!(
            !admits(Some(1000), 1000, &[1000], None),
            "no such admin group"
        );
        assert!(!admits(None, 500, &[500], Some(500)), "no credentials");
    }

    #[test]
    fn resolving_root_needs_no_group() {
        let policy = AdminPolicy {
            group: "no-such-group-ds01".to_owned(),
        };
        let root = policy.resolve(Credentials {
            uid: Some(0),
            gid: Some(0),
            pid: None,
        });
        assert!(root.admin);
        assert_eq!(root.name, "root");
        let nobody = policy.resolve(Credentials {
            uid: Some(65534),
            gid: Some(65534),
            pid: None,
        });
        assert!(!nobody.admin);
        assert!(!AdminPolicy::unresolved(Credentials::default()).admin);
    }
}
