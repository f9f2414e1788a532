//! User names as policies see them: the incumbent's sanitised form (for
//! `nameMatching: sanitized`) and members files (one name a line, `#` comments).

use std::collections::HashMap;

use md5::{Digest, Md5};

use crate::ContainerLifecyclePolicySpec;

/// Longest sanitised name; longer ones are cut and given a hash suffix.
const MAX_SANITIZED: usize = 32;

/// The incumbent's sanitised user name: `h.baker@lab.lan` → `h_baker`.
///
/// The part before the first `@`; every character other than an ASCII letter, digit, `_` or
/// `:` becomes `_`; runs of `_` collapse to one; `_` is trimmed at both ends. A result longer
/// than 32 characters is cut to 27 (trailing `_` trimmed) and given `_` plus the first four
/// hex digits of the MD5 of the full original name.
#[must_use]
pub fn sanitize_user_name(name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let local = name.split('@').next().unwrap_or_default();
    let mut sanitized = String::with_capacity(local.len());
    for character in local.chars() {
        let kept = character.is_ascii_alphanumeric() || character == ':';
        let next = if kept { character } else { '_' };
        if next == '_' && sanitized.ends_with('_') {
            continue;
        }
        sanitized.push(next);
    }
    let trimmed = sanitized.trim_matches('_');
    if trimmed.chars().count() <= MAX_SANITIZED {
        return trimmed.to_owned();
    }
    let digest = Md5::digest(name.as_bytes());
    let suffix: String = digest
        .iter()
        .take(2)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let head: String = trimmed.chars().take(27).collect();
    format!("{}_{suffix}", head.trim_end_matches('_'))
}

/// The names in a members file: one a line, anything after `#` ignored, blank lines skipped.
#[must_use]
pub fn parse_members(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

/// The largest members file read (as the controller reads them).
pub const MAX_MEMBERS_FILE_BYTES: u64 = 1 << 20;

/// Each group's `membersFile` content, by group name: regular files of at most
/// [`MAX_MEMBERS_FILE_BYTES`]. A file that cannot be read is left out and named in the second
/// value (its group then has only its inline `members`).
#[must_use]
pub fn read_members_files(
    spec: &ContainerLifecyclePolicySpec,
) -> (HashMap<String, Vec<String>>, Vec<String>) {
    let mut members = HashMap::new();
    let mut unreadable = Vec::new();
    for (group, block) in &spec.groups {
        let Some(file) = &block.members_file else {
            continue;
        };
        let checked = std::fs::metadata(file).and_then(|metadata| {
            if !metadata.is_file() {
                Err(std::io::Error::other("not a regular file"))
            } else if metadata.len() > MAX_MEMBERS_FILE_BYTES {
                Err(std::io::Error::other(format!(
                    "larger than {MAX_MEMBERS_FILE_BYTES} bytes"
                )))
            } else {
                std::fs::read(file)
            }
        });
        match checked {
            Ok(bytes) => {
                members.insert(
                    group.clone(),
                    parse_members(&String::from_utf8_lossy(&bytes)),
                );
            }
            Err(error) => unreadable.push(format!("{file}: {error}")),
        }
    }
    (members, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitised_names_follow_the_incumbents_rule() {
        for (name, expected) in [
            ("h.baker@hertie-school.lan", "h_baker"),
            ("alice", "alice"),
            ("john.doe", "john_doe"),
            ("12345@lab.lan", "12345"),
            ("..a--b..@x", "a_b"),
            ("a:b", "a:b"),
            ("", ""),
        ] {
            assert_eq!(sanitize_user_name(name), expected, "{name}");
        }
    }

    #[test]
    fn long_names_are_cut_with_the_incumbents_hash_suffix() {
        // Expected values printed by the incumbent's own sanitize_username_for_slice.
        let name = format!("{}@lab.lan", "abcdefghij".repeat(4));
        assert_eq!(
            sanitize_user_name(&name),
            "abcdefghijabcdefghijabcdefg_10f2"
        );
        assert_eq!(sanitize_user_name("Ünïcode.ß@x"), "n_code");
    }

    #[test]
    fn members_files_skip_comments_and_blank_lines() {
        assert_eq!(
            parse_members("alice # PI\n\n# former\n bob \n#carol\n"),
            ["alice", "bob"]
        );
    }
}
