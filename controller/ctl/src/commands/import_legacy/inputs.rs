//! Reading the incumbent's configuration the way its resolver does: `resource-limits.yaml`,
//! and beside it `groups/<group>.members`, `user-overrides.yaml` and
//! `lifecycle-exemptions.yaml` (each path can be given instead), plus a Compose file.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::cli::ImportLegacyArgs;

/// Everything an import reads.
#[derive(Debug)]
pub struct Legacy {
    /// `resource-limits.yaml`.
    pub limits: Map<String, Value>,
    /// `user_overrides` from `resource-limits.yaml` merged with `user-overrides.yaml` (the
    /// file's entry wins for a user listed in both, as in the incumbent).
    pub overrides: IndexMap<String, Value>,
    /// Per group defined in `resource-limits.yaml`: its members file, if there is one.
    pub member_files: IndexMap<String, MembersFile>,
    /// The entries of `lifecycle-exemptions.yaml`.
    pub exemptions: Vec<Value>,
    /// The Compose file, when one was given.
    pub compose: Option<(PathBuf, Map<String, Value>)>,
}

/// One `groups/<group>.members` file.
#[derive(Debug)]
pub struct MembersFile {
    /// Its absolute path.
    pub path: PathBuf,
    /// The names in it, in file order.
    pub members: Vec<String>,
}

/// Reads one YAML file as a JSON value (the first document; empty = null). Problems such as
/// duplicate keys come back as warnings.
fn read_yaml(path: &Path, warnings: &mut Vec<String>) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let stream = ds01_spec::yaml::parse_stream(&text);
    if let Some(problem) = stream.syntax_error {
        return Err(format!(
            "{}:{}: {}",
            path.display(),
            problem.position,
            problem.message
        ));
    }
    let Some(document) = stream.documents.into_iter().next() else {
        return Ok(Value::Null);
    };
    for problem in &document.problems {
        warnings.push(format!(
            "{}:{}: {}",
            path.display(),
            problem.position,
            problem.message
        ));
    }
    Ok(document.value)
}

fn as_object(value: Value, path: &Path) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(format!("{} is not a YAML mapping", path.display())),
    }
}

/// `given`, else `default` when it exists, else nothing.
fn companion(given: Option<&PathBuf>, default: PathBuf) -> Option<PathBuf> {
    given
        .cloned()
        .or_else(|| default.is_file().then_some(default))
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Reads the incumbent's files.
///
/// # Errors
/// A message naming the file that cannot be read or parsed.
pub fn read(args: &ImportLegacyArgs, warnings: &mut Vec<String>) -> Result<Legacy, String> {
    let config_dir = args
        .resource_limits
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned);
    let limits = as_object(
        read_yaml(&args.resource_limits, warnings)?,
        &args.resource_limits,
    )?;
    let mut overrides: IndexMap<String, Value> = limits
        .get("user_overrides")
        .and_then(Value::as_object)
        .map(|inline| inline.clone().into_iter().collect())
        .unwrap_or_default();
    if let Some(path) = companion(
        args.user_overrides.as_ref(),
        config_dir.join("user-overrides.yaml"),
    ) {
        for (user, block) in as_object(read_yaml(&path, warnings)?, &path)? {
            overrides.insert(user, block);
        }
    }
    let groups_dir = args
        .groups_dir
        .clone()
        .unwrap_or_else(|| config_dir.join("groups"));
    let mut member_files = IndexMap::new();
    for group in limits
        .get("groups")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(Map::keys)
    {
        let path = groups_dir.join(format!("{group}.members"));
        if path.is_file() {
            let text = std::fs::read_to_string(&path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            member_files.insert(
                group.clone(),
                MembersFile {
                    path: absolute(&path),
                    members: ds01_spec::names::parse_members(&text),
                },
            );
        }
    }
    let mut exemptions = Vec::new();
    if let Some(path) = companion(
        args.exemptions.as_ref(),
        config_dir.join("lifecycle-exemptions.yaml"),
    ) {
        let file = as_object(read_yaml(&path, warnings)?, &path)?;
        exemptions = file
            .get("exemptions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
    }
    let compose = match &args.compose {
        Some(path) => Some((absolute(path), as_object(read_yaml(path, warnings)?, path)?)),
        None => None,
    };
    Ok(Legacy {
        limits,
        overrides,
        member_files,
        exemptions,
        compose,
    })
}
