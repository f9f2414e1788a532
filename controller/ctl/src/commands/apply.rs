//! `ds01ctl apply -f PATH… [--dry-run]` and `ds01ctl delete KIND NAME`.

use ds01_spec::{
    Kind,
    api::{ApplyRequest, ApplyResponse, SourceFile},
    parse_sources, read_sources,
};
use hyper::{Method, StatusCode};

use super::{api_call, cell, report_error_body};
use crate::{
    cli::{ApplyArgs, DeleteArgs, OutputFormat},
    exit::ExitStatus,
    printer,
};

/// Validates locally, then submits the set in one request, all or nothing.
pub async fn apply(
    args: &ApplyArgs,
    socket: &std::path::Path,
    output: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let sources = match read_sources(&args.paths) {
        Ok(sources) => sources,
        Err(error) => {
            printer::error(&format!("{:#}", anyhow::Error::from(error)));
            return Ok(ExitStatus::UserError);
        }
    };
    if let Err(diagnostics) = parse_sources(&sources) {
        for diagnostic in &diagnostics.0 {
            printer::error(&diagnostic.to_string());
        }
        printer::hint("nothing was applied; fix every problem and apply again");
        return Ok(ExitStatus::UserError);
    }
    let request = ApplyRequest {
        files: sources
            .into_iter()
            .map(|source| SourceFile {
                name: source.name,
                text: source.text,
            })
            .collect(),
        dry_run: args.dry_run,
    };
    let body = serde_json::to_vec(&request)?;
    let Some((status, bytes)) = api_call(socket, Method::POST, "/v1/apply", Some(body)).await
    else {
        return Ok(ExitStatus::Failure);
    };
    if status != StatusCode::OK {
        return Ok(report_error_body(status, &bytes));
    }
    let response: ApplyResponse = serde_json::from_slice(&bytes)?;
    if matches!(output, OutputFormat::Json | OutputFormat::Yaml) {
        printer::structured(&serde_json::to_value(&response)?, output);
    } else {
        let suffix = if response.dry_run { " (dry run)" } else { "" };
        for result in &response.results {
            printer::data(&format!(
                "{} {}{suffix}",
                cell(&result.resource),
                cell(&result.outcome)
            ));
        }
        if !response.preview.is_empty() {
            printer::data("\nWould act on containers there now (soonest first):");
            for action in &response.preview {
                printer::data(&format!(
                    "  {}  {} {} (owner {}): {}",
                    cell(&action.at),
                    cell(&action.action),
                    cell(&action.container),
                    cell(&action.user),
                    cell(&action.reason)
                ));
            }
        }
        for note in &response.preview_notes {
            printer::hint(note);
        }
    }
    Ok(ExitStatus::Success)
}

/// Deletes one applied resource; what it already did stays done.
pub async fn delete(args: &DeleteArgs, socket: &std::path::Path) -> anyhow::Result<ExitStatus> {
    let kind: Kind = match args.kind.parse() {
        Ok(kind) => kind,
        Err(message) => {
            printer::error(&message);
            return Ok(ExitStatus::UserError);
        }
    };
    let path = format!("/v1/specs/{}/{}", kind.as_str(), args.name);
    let Some((status, bytes)) = api_call(socket, Method::DELETE, &path, None).await else {
        return Ok(ExitStatus::Failure);
    };
    if status != StatusCode::OK {
        return Ok(report_error_body(status, &bytes));
    }
    printer::data(&format!("{}/{} deleted", kind.lowercase(), args.name));
    Ok(ExitStatus::Success)
}
