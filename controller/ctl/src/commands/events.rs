//! `ds01ctl events [--follow] [--type PREFIX] [--user U] [--container C] [--since T] [--until T]
//! [--limit N] [--summary]`: the controller's event log on disk (rotated files included), the
//! newest `--limit` of the matching events, then new ones with `--follow`.

use ds01_spec::api::{EventEnvelope, EventSummary, INCOMPLETE_HEADER, OMITTED_HEADER};
use hyper::StatusCode;

use super::{cell, decode, get_bytes, with_query};
use crate::{
    cli::{EventsArgs, OutputFormat},
    client,
    exit::ExitStatus,
    printer,
};

fn parameters(args: &EventsArgs) -> Vec<(&'static str, String)> {
    let now = jiff::Timestamp::now();
    let mut parameters = Vec::new();
    if let Some(prefix) = &args.event_type {
        parameters.push(("type", prefix.clone()));
    }
    if let Some(user) = &args.user {
        parameters.push(("user", user.clone()));
    }
    if let Some(container) = &args.container {
        parameters.push(("container", container.clone()));
    }
    if let Some(since) = args.since {
        parameters.push(("since", since.resolve(now).to_string()));
    }
    if let Some(until) = args.until {
        parameters.push(("until", until.resolve(now).to_string()));
    }
    parameters
}

/// Prints matching events (or their counts), then follows new ones with `--follow`.
pub async fn events(
    args: &EventsArgs,
    socket: &std::path::Path,
    output: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let mut parameters = parameters(args);
    if args.summary {
        return summary(socket, &parameters, output).await;
    }
    parameters.push(("limit", args.limit.to_string()));
    if args.follow {
        parameters.push(("follow", "true".to_owned()));
    }
    let path = with_query("/v1/events", &parameters);
    let machine = matches!(output, OutputFormat::Json | OutputFormat::Yaml);
    let mut error_body = String::new();
    let limit = args.limit;
    let result = client::stream_lines(
        socket,
        &path,
        |status, headers| {
            let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
            if status != StatusCode::OK {
                return;
            }
            // Said on stderr before the events, so a follower sees it at once.
            if let Some(count) = header(OMITTED_HEADER).and_then(|count| count.parse::<u64>().ok())
            {
                printer::hint(&format!(
                    "{count} older matching events not shown (--limit {limit}; narrow with --since or --type)"
                ));
            }
            if header(INCOMPLETE_HEADER).is_some() {
                printer::hint("the history took too long to read; older events may be missing");
            }
        },
        |line| {
            match serde_json::from_str::<EventEnvelope>(line) {
                Ok(_) if machine => printer::json_line(line),
                Ok(event) => printer::data(&render(&event)),
                Err(_) => error_body.push_str(line),
            }
        },
    )
    .await;
    match result {
        Ok(StatusCode::OK) => Ok(ExitStatus::Success),
        Ok(status) => Ok(super::report_error_body(status, error_body.as_bytes())),
        Err(error) => {
            super::unreachable_hint(socket, &anyhow::Error::from(error));
            Ok(ExitStatus::Failure)
        }
    }
}

async fn summary(
    socket: &std::path::Path,
    parameters: &[(&'static str, String)],
    output: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let bytes = match get_bytes(socket, &with_query("/v1/events/summary", parameters)).await {
        Ok(bytes) => bytes,
        Err(status) => return Ok(status),
    };
    if matches!(output, OutputFormat::Json | OutputFormat::Yaml) {
        match decode::<serde_json::Value>(&bytes) {
            Ok(body) => printer::structured(&body, output),
            Err(status) => return Ok(status),
        }
        return Ok(ExitStatus::Success);
    }
    let summary: EventSummary = match decode(&bytes) {
        Ok(summary) => summary,
        Err(status) => return Ok(status),
    };
    let mut lines = vec![format!(
        "{} events{}",
        summary.total,
        match (&summary.first, &summary.last) {
            (Some(first), Some(last)) => format!(" from {} to {}", cell(first), cell(last)),
            _ => String::new(),
        }
    )];
    lines.push(String::new());
    lines.push(format!("{:<44} {:>8}", "TYPE", "COUNT"));
    for (kind, count) in &summary.by_type {
        lines.push(format!("{:<44} {count:>8}", cell(kind)));
    }
    lines.push(String::new());
    lines.push(format!("{:<44} {:>8}", "USER", "COUNT"));
    for (user, count) in &summary.by_user {
        lines.push(format!("{:<44} {count:>8}", cell(user)));
    }
    printer::data(&lines.join("\n"));
    if summary.incomplete.is_some() {
        printer::hint("the history took too long to read; the counts cover the newest files");
    }
    Ok(ExitStatus::Success)
}

fn render(event: &EventEnvelope) -> String {
    let details = event.details.as_object().map(|details| {
        details
            .iter()
            .filter(|(_, value)| !value.is_object() && !value.is_array())
            .map(|(key, value)| {
                format!(
                    "{}={}",
                    cell(key),
                    cell(
                        &value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned)
                    )
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    });
    format!(
        "{}  {:<40} {:<10} {}",
        cell(&event.timestamp),
        cell(&event.event_type),
        cell(event.user.as_deref().unwrap_or("-")),
        details.unwrap_or_default()
    )
}
