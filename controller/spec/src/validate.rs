//! Collecting semantic problems by field path while a spec checks its own rules.

use crate::Duration;

/// One rule a spec breaks, at a field path such as `spec.restart.backoffInitial`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Field path of the offending value.
    pub path: String,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

/// The problems found so far; validation never stops at the first.
#[derive(Clone, Debug, Default)]
pub struct Report {
    issues: Vec<Issue>,
}

impl Report {
    /// Records that the value at `path` breaks a rule.
    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records an error unless `value` is above zero.
    pub fn positive(&mut self, path: &str, value: Duration) {
        if value.is_zero() {
            self.error(path, "must be above zero");
        }
    }

    /// Records an error at each repeated entry of `items`.
    pub fn no_duplicates(&mut self, path: &str, items: &[String]) {
        for (index, item) in items.iter().enumerate() {
            if items[..index].contains(item) {
                self.error(
                    format!("{path}[{index}]"),
                    format!("`{item}` is listed twice"),
                );
            }
        }
    }

    /// The problems, in the order they were found.
    #[must_use]
    pub fn into_issues(self) -> Vec<Issue> {
        self.issues
    }
}
