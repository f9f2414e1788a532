//! Errors and diagnostics of the spec crate: where a problem is (file, line, column, field
//! path, document) and what it is.

use std::{fmt, path::PathBuf};

use crate::yaml::Position;

/// One problem in a submitted spec, located as precisely as the input allows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    /// File name as given (`<stdin>` for standard input).
    pub file: String,
    /// Line and column, when known.
    pub position: Option<Position>,
    /// 1-based index of the document within the file.
    pub document: usize,
    /// `kind/name` of the document, when it got that far.
    pub resource: Option<String>,
    /// Field path such as `spec.groups.student.idleTimeout` (empty for the document itself).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(position) = self.position {
            write!(f, ":{position}")?;
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        match &self.resource {
            Some(resource) => write!(f, " (document {}, {resource})", self.document),
            None => write!(f, " (document {})", self.document),
        }
    }
}

impl serde::Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut state = serializer.serialize_struct("Position", 2)?;
        state.serialize_field("line", &self.line)?;
        state.serialize_field("column", &self.column)?;
        state.end()
    }
}

impl<'de> serde::Deserialize<'de> for Position {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Raw {
            line: usize,
            column: usize,
        }
        let raw = Raw::deserialize(deserializer)?;
        Ok(Position {
            line: raw.line,
            column: raw.column,
        })
    }
}

/// Every problem of a rejected spec set. Nothing of such a set may be applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("{} error(s) in the submitted specs", .0.len())]
pub struct Diagnostics(pub Vec<Diagnostic>);

/// Why spec sources could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than a spec file may be.
    #[error("{path} is {size} bytes; spec files may be at most {limit} bytes")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A directory holds no `.yaml`/`.yml` file.
    #[error("no spec files (*.yaml, *.yml) in {path}")]
    NoSpecFiles {
        /// The directory.
        path: PathBuf,
    },
    /// A file is not UTF-8.
    #[error("{path} is not UTF-8 text")]
    NotText {
        /// The path.
        path: PathBuf,
    },
}
