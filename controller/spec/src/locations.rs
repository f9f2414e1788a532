//! Where each field path of a YAML document came from: lines and columns of keys and values,
//! and how field paths are written (`spec.groups.student.idleTimeout`, `spec.exemptions[0]`).

use std::collections::HashMap;
use std::fmt;

/// A 1-based line and column in a source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line, counting from 1.
    pub line: usize,
    /// Column in characters, counting from 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl From<saphyr_parser::Marker> for Position {
    fn from(marker: saphyr_parser::Marker) -> Self {
        Position {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// Where each field path of one document sits in the source.
#[derive(Clone, Debug, Default)]
pub struct Locations {
    pub(crate) keys: HashMap<String, Position>,
    pub(crate) values: HashMap<String, Position>,
}

impl Locations {
    /// Position of the value at `path`, or of the nearest ancestor that has one.
    #[must_use]
    pub fn value(&self, path: &str) -> Option<Position> {
        ancestors(path).find_map(|candidate| self.values.get(candidate).copied())
    }

    /// Position of the key of `path` (the field name), falling back to its value.
    #[must_use]
    pub fn key(&self, path: &str) -> Option<Position> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

/// `a.b[0].c`, `a.b[0]`, `a.b`, `a`, `` in that order.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = if current.is_empty() {
            None
        } else {
            Some(current.rfind(['.', '[']).map_or("", |cut| &current[..cut]))
        };
        Some(current)
    })
}

/// Appends a map key to a field path (`spec` + `defaults` = `spec.defaults`).
#[must_use]
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a sequence index to a field path (`spec.exemptions` + 0 = `spec.exemptions[0]`).
#[must_use]
pub fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}
