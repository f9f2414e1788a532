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
    let lifecycle = &body["lifecycle"];
    if lifecycle.is_object() {
        lines.push(format!(
            "Lifecycle:     policy {}{}",
            text(&lifecycle["policy"]),
            if lifecycle["dryRun"] == true {
                " (dry run)"
            } else {
                ""
            }
        ));
        for key in [
            "idleTimeout",
            "maxRuntime",
            "stopGracePeriod",
            "onIdle",
            "startupGrace",
            "removeAfterStop",
            "gpuHoldAfterStop",
            "createdTimeout",
            "gpuUtilBelow",
            "cpuBelow",
            "networkBelow",
        ] {
            let limit = &lifecycle["limits"][key];
            let value = limit["value"]
                .as_str()
                .map_or_else(|| "none".to_owned(), str::to_owned);
            lines.push(format!(
                "  {key:<17} {value:<10} from {}",
                text(&limit["source"])
            ));
        }
        for exemption in lifecycle["exemptions"].as_array().into_iter().flatten() {
            lines.push(format!(
                "  exempt from {} ({}), until {}",
                exemption["from"],
                text(&exemption["reason"]),
                text(&exemption["expires"])
            ));
        }
        let signals = &lifecycle["signals"];
        let show = |name: &str| {
            let signal = &signals[name];
            match signal["value"].as_str() {
                Some(value) => format!(
                    "{name} {value} ({})",
                    if signal["idle"] == true {
                        "idle"
                    } else {
                        "active"
                    }
                ),
                None => format!("{name} unknown"),
            }
        };
        lines.push(format!(
            "  signals           {}, {}, {}, keep-alive {}",
            show("gpu"),
            show("cpu"),
            show("network"),
            if signals["keepAlive"] == true {
                "fresh"
            } else {
                "none"
            }
        ));
        lines.push(format!(
            "  idle since        {}",
            text(&lifecycle["idleSince"])
        ));
        lines.push(format!(
            "  next action at    {}",
            text(&lifecycle["nextDeadline"])
        ));
        lines.push(format!(
            "  warnings sent     idle {}, runtime {}",
            text(&lifecycle["idleWarningsSent"]),
            text(&lifecycle["runtimeWarningsSent"])
        ));
        if let Some(note) = lifecycle["note"].as_str() {
            lines.push(format!("  note              {note}"));
        }
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
