//! `ds01ctl events [--follow] [--type PREFIX] [--user U] [--since D]`.

use hyper::StatusCode;
use serde_json::Value;

use crate::{
    cli::{EventsArgs, OutputFormat},
    client,
    exit::ExitStatus,
    printer,
};

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Prints matching events, then follows new ones with `--follow`.
pub async fn events(
    args: &EventsArgs,
    socket: &std::path::Path,
    output: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let mut query = Vec::new();
    if let Some(prefix) = &args.event_type {
        query.push(format!("type={}", encode(prefix)));
    }
    if let Some(user) = &args.user {
        query.push(format!("user={}", encode(user)));
    }
    if let Some(since) = args.since {
        let from = jiff::Timestamp::now()
            .checked_sub(
                jiff::SignedDuration::try_from(since.std()).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(jiff::Timestamp::MIN);
        query.push(format!("since={}", encode(&from.to_string())));
    }
    if args.follow {
        query.push("follow=true".to_owned());
    }
    let path = if query.is_empty() {
        "/v1/events".to_owned()
    } else {
        format!("/v1/events?{}", query.join("&"))
    };
    let machine = matches!(output, OutputFormat::Json | OutputFormat::Yaml);
    let mut error_body = String::new();
    let result = client::stream_lines(socket, &path, |line| {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            error_body.push_str(line);
            return;
        };
        if event.get("error").is_some() {
            error_body.push_str(line);
        } else if machine {
            printer::data(line);
        } else {
            printer::data(&render(&event));
        }
    })
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

fn render(event: &Value) -> String {
    let details = event["details"].as_object().map(|details| {
        details
            .iter()
            .filter(|(_, value)| !value.is_object() && !value.is_array())
            .map(|(key, value)| {
                format!(
                    "{key}={}",
                    value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    });
    format!(
        "{}  {:<40} {:<10} {}",
        event["timestamp"].as_str().unwrap_or_default(),
        event["event_type"].as_str().unwrap_or_default(),
        event["user"].as_str().unwrap_or("-"),
        details.unwrap_or_default()
    )
}
