//! `ds01ctl wait --for=condition=TYPE[=STATUS] KIND/NAME --timeout D`: returns as soon as the
//! resource's condition holds; exit 1 when it does not within the timeout.

use std::time::Duration;

use ds01_spec::api::{ConditionStatus, StatusView};
use hyper::{Method, StatusCode};

use super::api_call;
use crate::{cli::WaitArgs, exit::ExitStatus, printer};

const POLL: Duration = Duration::from_millis(200);

/// Polls the status until the condition holds or the timeout passes.
pub async fn wait(args: &WaitArgs, socket: &std::path::Path) -> anyhow::Result<ExitStatus> {
    let Some(condition) = args.condition.strip_prefix("condition=") else {
        printer::error(&format!(
            "--for must be `condition=TYPE` or `condition=TYPE=STATUS`, not `{}`",
            args.condition
        ));
        return Ok(ExitStatus::Usage);
    };
    let (condition_type, wanted) = condition.split_once('=').unwrap_or((condition, "True"));
    let wanted_status = ConditionStatus::parse(wanted);
    if wanted_status == ConditionStatus::Unknown && !wanted.eq_ignore_ascii_case("unknown") {
        printer::error(&format!(
            "a condition's status is True, False or Unknown, not `{wanted}`"
        ));
        return Ok(ExitStatus::Usage);
    }
    let Some((kind, name)) = args.resource.split_once('/') else {
        printer::error(&format!(
            "name the resource as KIND/NAME, not `{}`",
            args.resource
        ));
        return Ok(ExitStatus::Usage);
    };
    let kind: ds01_spec::Kind = match kind.parse() {
        Ok(kind) => kind,
        Err(message) => {
            printer::error(&message);
            return Ok(ExitStatus::UserError);
        }
    };
    let deadline = tokio::time::Instant::now() + args.timeout.std();
    let mut last = String::from("not applied");
    loop {
        let Some((status, bytes)) = api_call(socket, Method::GET, "/v1/status", None).await else {
            return Ok(ExitStatus::Failure);
        };
        if status == StatusCode::OK {
            let view: StatusView = serde_json::from_slice(&bytes)?;
            let resource = view
                .resources
                .iter()
                .find(|r| r.kind == kind.as_str() && r.name == name);
            if let Some(resource) = resource {
                match resource.condition(condition_type) {
                    Some(found) if found.status == wanted_status => {
                        printer::data(&format!("{}/{name} condition met", kind.lowercase()));
                        return Ok(ExitStatus::Success);
                    }
                    Some(found) => {
                        last = format!("{condition_type}={} ({})", found.status, found.reason);
                    }
                    None => last = format!("no {condition_type} condition yet"),
                }
            }
        }
        if tokio::time::Instant::now() + POLL > deadline {
            printer::error(&format!(
                "timed out after {} waiting for {}/{name} {condition_type}={wanted}; last seen: {last}",
                args.timeout,
                kind.lowercase()
            ));
            return Ok(ExitStatus::UserError);
        }
        tokio::time::sleep(POLL).await;
    }
}
