//! `ds01ctl stop CONTAINER --reason TEXT [--force]`: an admin stops a container; the owner is
//! told why. Returns once the stop is issued (the grace period runs on the controller).

use ds01_spec::api::{StopRequest, StopResponse};
use hyper::{Method, StatusCode};

use super::{api_call, cell, decode, encode, report_error_body};
use crate::{
    cli::{OutputFormat, StopArgs},
    exit::ExitStatus,
    printer,
};

/// Asks the controller to stop the container.
pub async fn stop(
    args: &StopArgs,
    socket: &std::path::Path,
    output: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let request = StopRequest {
        reason: args.reason.clone(),
        force: args.force,
    };
    let path = format!("/v1/containers/{}/stop", encode(&args.container));
    let body = serde_json::to_vec(&request)?;
    let Some((status, bytes)) = api_call(socket, Method::POST, &path, Some(body)).await else {
        return Ok(ExitStatus::Failure);
    };
    if status != StatusCode::ACCEPTED {
        return Ok(report_error_body(status, &bytes));
    }
    let response: StopResponse = match decode(&bytes) {
        Ok(response) => response,
        Err(status) => return Ok(status),
    };
    if matches!(output, OutputFormat::Json | OutputFormat::Yaml) {
        printer::structured(&serde_json::to_value(&response)?, output);
        return Ok(ExitStatus::Success);
    }
    if response.dry_run {
        printer::data(&format!(
            "container {} ({}) of {}: stop recorded, nothing stopped (the controller runs with --dry-run)",
            cell(&response.container),
            cell(&response.id),
            cell(&response.user)
        ));
    } else {
        printer::data(&format!(
            "container {} ({}) of {} is being stopped: SIGTERM now, SIGKILL after {} ({}); {} is told why",
            cell(&response.container),
            cell(&response.id),
            cell(&response.user),
            cell(&response.grace),
            cell(&response.grace_source),
            cell(&response.user)
        ));
        printer::hint(&format!(
            "follow it with: ds01ctl events --container {} --type lifecycle.manual_stop",
            cell(&response.id)
        ));
    }
    Ok(ExitStatus::Success)
}
