//! What an import changes or leaves behind, collected while converting and printed once each
//! on standard error: values that keep their meaning are silent; values whose meaning or
//! effect changes show old → new; values that cannot be carried over say why.

use indexmap::IndexSet;

use crate::printer;

/// The notices of one import, in the order they arose, without repeats.
#[derive(Debug, Default)]
pub struct Notices {
    lines: IndexSet<String>,
}

impl Notices {
    /// `old` is carried over as `new`, but what it does changes: `why`.
    pub fn changed(&mut self, old: &str, new: &str, why: &str) {
        self.lines
            .insert(format!("changes meaning: {old} → {new} ({why})"));
    }

    /// `old` is not carried over: `why`.
    pub fn dropped(&mut self, old: &str, why: &str) {
        self.lines
            .insert(format!("not carried over: {old} ({why})"));
    }

    /// Anything else worth knowing.
    pub fn note(&mut self, text: &str) {
        self.lines.insert(format!("note: {text}"));
    }

    /// Prints every notice as a hint on standard error.
    pub fn print(&self) {
        for line in &self.lines {
            printer::hint(line);
        }
    }
}
