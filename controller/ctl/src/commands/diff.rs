//! `ds01ctl diff -f PATH…`: what applying would change, as a unified diff of the resolved specs
//! (defaults filled in). Exit 0: no change; 1: changes; 2: error.

use std::collections::BTreeMap;

use ds01_spec::{parse_sources, read_sources};
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::api_call;
use crate::{cli::DiffArgs, exit::ExitStatus, printer, yaml_out::to_yaml};

/// Prints the differences between the applied and the submitted specs.
pub async fn diff(args: &DiffArgs, socket: &std::path::Path) -> anyhow::Result<ExitStatus> {
    let sources = match read_sources(&args.paths) {
        Ok(sources) => sources,
        Err(error) => {
            printer::error(&format!("{:#}", anyhow::Error::from(error)));
            return Ok(ExitStatus::Failure);
        }
    };
    let submitted = match parse_sources(&sources) {
        Ok(parsed) => parsed,
        Err(diagnostics) => {
            for diagnostic in &diagnostics.0 {
                printer::error(&diagnostic.to_string());
            }
            return Ok(ExitStatus::Failure);
        }
    };
    let Some((status, bytes)) = api_call(socket, Method::GET, "/v1/specs", None).await else {
        return Ok(ExitStatus::Failure);
    };
    if status != StatusCode::OK {
        printer::error(&format!(
            "the controller answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
        return Ok(ExitStatus::Failure);
    }
    let applied: Value = serde_json::from_slice(&bytes)?;
    let applied: BTreeMap<String, Value> = applied["specs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|spec| {
            let kind = spec["kind"].as_str()?.to_ascii_lowercase();
            Some((
                format!("{kind}/{}", spec["name"].as_str()?),
                spec["resolved"].clone(),
            ))
        })
        .collect();
    let mut changed = false;
    for item in &submitted {
        let reference = item.resource.reference();
        let new = to_yaml(&item.resource.to_json());
        let old = applied.get(&reference).map(to_yaml).unwrap_or_default();
        if old == new {
            continue;
        }
        changed = true;
        let diff = similar::TextDiff::from_lines(&old, &new);
        let label_old = if applied.contains_key(&reference) {
            format!("applied/{reference}")
        } else {
            "/dev/null".to_owned()
        };
        printer::data(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&label_old, &format!("submitted/{reference}"))
                .to_string(),
        );
    }
    Ok(if changed {
        ExitStatus::UserError
    } else {
        ExitStatus::Success
    })
}
