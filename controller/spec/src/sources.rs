//! Reading spec sources from files, directories (every `*.yaml`/`*.yml`, recursively, in name
//! order) and standard input (`-`).

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use crate::{LoadError, Source};

/// Largest spec file accepted; larger input is refused before parsing.
pub const MAX_SPEC_FILE_BYTES: u64 = 4 << 20;

/// Reads every source named by `paths`; `-` reads standard input once.
///
/// # Errors
/// The first path that cannot be read, is too large, is not text, or is a directory without
/// spec files.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>, LoadError> {
    let mut sources = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .take(MAX_SPEC_FILE_BYTES + 1)
                .read_to_string(&mut text)
                .map_err(|source| LoadError::Read {
                    path: path.clone(),
                    source,
                })?;
            if text.len() as u64 > MAX_SPEC_FILE_BYTES {
                return Err(LoadError::TooLarge {
                    path: path.clone(),
                    size: text.len() as u64,
                    limit: MAX_SPEC_FILE_BYTES,
                });
            }
            sources.push(Source {
                name: "<stdin>".to_owned(),
                text,
            });
        } else if path.is_dir() {
            let mut files = Vec::new();
            collect_spec_files(path, &mut files)?;
            if files.is_empty() {
                return Err(LoadError::NoSpecFiles { path: path.clone() });
            }
            for file in files {
                sources.push(read_file(&file)?);
            }
        } else {
            sources.push(read_file(path)?);
        }
    }
    Ok(sources)
}

/// Reads one spec file.
///
/// # Errors
/// When it cannot be read, is too large or is not UTF-8.
pub fn read_file(path: &Path) -> Result<Source, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_SPEC_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size,
            limit: MAX_SPEC_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    let text = String::from_utf8(bytes).map_err(|_| LoadError::NotText {
        path: path.to_owned(),
    })?;
    Ok(Source {
        name: path.display().to_string(),
        text,
    })
}

fn collect_spec_files(directory: &Path, files: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let read_error = |source| LoadError::Read {
        path: directory.to_owned(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(directory)
        .map_err(read_error)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(read_error)?;
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if entry.is_dir() {
            collect_spec_files(&entry, files)?;
        } else if entry
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(entry);
        }
    }
    Ok(())
}
