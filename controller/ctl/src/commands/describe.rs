//! `ds01ctl describe container NAME|ID`: everything the controller knows about one container.

use super::{get_json, text};
use crate::{
    cli::{DescribeArgs, DescribeTarget, OutputFormat},
    exit::ExitStatus,
    printer,
};

/// Describes one container.
pub async fn describe(
    args: &DescribeArgs,
    socket: &std::path::Path,
    output: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let DescribeTarget::Container = args.target;
    let path = format!(
        "/v1/containers/{}",
        args.name
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            })
            .collect::<String>()
    );
    let body = match get_json(socket, &path).await {
        Ok(body) => body,
        Err(status) => return Ok(status),
    };
    if matches!(output, OutputFormat::Json | OutputFormat::Yaml) {
        printer::structured(&body, output);
        return Ok(ExitStatus::Success);
    }
    let mut lines = vec![
        format!("Name:          {}", text(&body["name"])),
        format!("ID:            {}", text(&body["id"])),
        format!(
            "Owner:         {} (from {})",
            text(&body["user"]),
            text(&body["ownerSource"])
        ),
        format!("Origin:        {}", text(&body["origin"])),
        format!("Image:         {}", text(&body["image"])),
        format!(
            "Status:        {}{}",
            text(&body["status"]),
            body["exitCode"]
                .as_i64()
                .filter(|_| body["status"] == "exited")
                .map(|code| format!(" (exit code {code})"))
                .unwrap_or_default()
        ),
        format!("Created:       {}", text(&body["createdAt"])),
        format!("Started:       {}", text(&body["startedAt"])),
        format!("Finished:      {}", text(&body["finishedAt"])),
        format!("Detected:      {}", text(&body["detectedAt"])),
    ];
    let gpus = body["gpus"]
        .as_array()
        .map(|gpus| gpus.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    let via = body["gpuAccess"]["via"]
        .as_array()
        .map(|via| via.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    lines.push(format!(
        "GPUs:          {}",
        if gpus.is_empty() {
            "none".to_owned()
        } else {
            format!("{gpus} (via {via})")
        }
    ));
    lines.push("GPU processes:".to_owned());
    let processes = body["gpuProcesses"].as_array().cloned().unwrap_or_default();
    if processes.is_empty() {
        lines.push("  none".to_owned());
    }
    for process in processes {
        lines.push(format!(
            "  pid {} {} on {} ({} MiB)",
            text(&process["pid"]),
            text(&process["name"]),
            text(&process["gpu"]),
            text(&process["memoryMiB"])
        ));
    }
    lines.push("Labels:".to_owned());
    for (key, value) in body["labels"].as_object().into_iter().flatten() {
        lines.push(format!("  {key}={}", text(value)));
    }
    lines.push("Events:".to_owned());
    let events = body["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        lines.push("  none since the controller started".to_owned());
    }
    for event in events {
        lines.push(format!(
            "  {}  {}",
            text(&event["timestamp"]),
            text(&event["type"])
        ));
    }
    printer::data(&lines.join("\n"));
    Ok(ExitStatus::Success)
}
