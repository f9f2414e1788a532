//! User names from uids and group lists (through NSS, so LDAP/AD users resolve as they do for
//! `ls -l` and `id`). Every function here may block on a directory service: call them from a
//! blocking thread in async code.

/// The user name of `uid`, or the uid as text when it has none.
#[must_use]
pub fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

/// The uid of a user name, if it exists.
#[must_use]
pub fn user_id(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|user| user.uid.as_raw())
}

/// The gid of a group name, if it exists.
#[must_use]
pub fn group_id(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|group| group.gid.as_raw())
}

/// The groups of user `name` whose primary group is `gid` (`getgrouplist`: the group
/// database's answer now, `gid` included); just `gid` when the user has no name.
#[must_use]
pub fn group_list(name: &str, gid: u32) -> Vec<u32> {
    let primary = nix::unistd::Gid::from_raw(gid);
    std::ffi::CString::new(name)
        .ok()
        .and_then(|name| nix::unistd::getgrouplist(&name, primary).ok())
        .map_or_else(
            || vec![gid],
            |groups| groups.into_iter().map(nix::unistd::Gid::as_raw).collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_and_unknown_uids_fall_back_to_numbers() {
        assert_eq!(user_name(0), "root");
        assert_eq!(user_id("root"), Some(0));
        assert_eq!(user_name(4_000_000_000), "4000000000");
    }

    #[test]
    fn root_is_in_its_own_group() {
        assert_eq!(group_id("root"), Some(0));
        assert!(group_list("root", 0).contains(&0));
        assert_eq!(group_list("no-such-user-ds01", 12345), vec![12345]);
    }
}
