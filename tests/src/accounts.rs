//! Throwaway users (and groups) in the system's databases for tests that need the kernel to
//! vouch for a name — a container running as that user's uid — removed on drop.

use std::process::{Command, Stdio};

/// A user made for one test, with its own primary group and, if asked, a supplementary one.
pub struct TestAccount {
    /// The user's name.
    pub user: String,
    /// The supplementary group, if one was made.
    pub group: Option<String>,
}

fn run(program: &str, arguments: &[&str]) -> bool {
    Command::new(program)
        .args(arguments)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl TestAccount {
    /// A user named `ds01t-<tag><pid>`; `None` when `useradd` fails (not root).
    #[must_use]
    pub fn create(tag: &str) -> Option<Self> {
        let user = format!("ds01t-{tag}{}", std::process::id());
        run("useradd", &["-M", "-U", "-s", "/usr/sbin/nologin", &user])
            .then_some(TestAccount { user, group: None })
    }

    /// As [`TestAccount::create`], and a group `ds01t-adm<pid>` it is a supplementary member of.
    #[must_use]
    pub fn create_in_group(tag: &str) -> Option<Self> {
        let suffix = std::process::id();
        let group = format!("ds01t-adm{suffix}");
        if !run("groupadd", &[&group]) {
            return None;
        }
        let user = format!("ds01t-{tag}{suffix}");
        if !run(
            "useradd",
            &["-M", "-U", "-G", &group, "-s", "/usr/sbin/nologin", &user],
        ) {
            let _ = run("groupdel", &[&group]);
            return None;
        }
        Some(TestAccount {
            user,
            group: Some(group),
        })
    }

    /// `id <flag> <user>` (`-u`, `-g`, `-G`).
    ///
    /// # Panics
    /// When `id` cannot run.
    #[must_use]
    pub fn id(&self, flag: &str) -> String {
        let output = Command::new("id")
            .args([flag, &self.user])
            .output()
            .expect("id");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The user's uid.
    ///
    /// # Panics
    /// When it has none.
    #[must_use]
    pub fn uid(&self) -> u32 {
        self.id("-u").parse().expect("a uid")
    }
}

impl Drop for TestAccount {
    fn drop(&mut self) {
        let _ = run("userdel", &[&self.user]);
        if let Some(group) = &self.group {
            let _ = run("groupdel", &[group]);
        }
    }
}
