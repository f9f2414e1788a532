//! User names from uids (through NSS, so LDAP/AD users resolve as they do for `ls -l`).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_and_unknown_uids_fall_back_to_numbers() {
        assert_eq!(user_name(0), "root");
        assert_eq!(user_id("root"), Some(0));
        assert_eq!(user_name(4_000_000_000), "4000000000");
    }
}
