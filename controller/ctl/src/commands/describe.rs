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
    if body["ownerConflict"].is_object() {
        let conflict = &body["ownerConflict"];
        lines.push(format!(
            "Owner conflict: {} claims {}, but {} says {} (the evidence wins)",
            text(&conflict["claimed_by"]),
            text(&conflict["claimed"]),
            text(&conflict["observed"]),
            text(&conflict["evidence"])
        ));
    }
    lines.extend(gpu_lines(&body));
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

/// The granted GPUs with how each was granted, the label claims and the unknown ids.
fn gpu_lines(body: &serde_json::Value) -> Vec<String> {
    let list = |key: &str| body[key].as_array().cloned().unwrap_or_default();
    let grants = list("gpuGrants");
    let mut lines = vec![if grants.is_empty() {
        "GPUs:          none".to_owned()
    } else {
        "GPUs:".to_owned()
    }];
    for grant in grants {
        lines.push(format!(
            "  {} via {} ({}){}",
            text(&grant["uuid"]),
            text(&grant["via"]),
            text(&grant["device"]),
            if grant["narrowed"] == true {
                ", narrowed by CUDA_VISIBLE_DEVICES"
            } else {
                ""
            }
        ));
    }
    let claims = list("gpuClaims");
    if !claims.is_empty() {
        lines.push("GPU claims:    (labels: never a grant)".to_owned());
        for claim in claims {
            lines.push(format!(
                "  {} via label {}{}",
                text(&claim["device"]),
                text(&claim["label"]),
                claim["uuid"]
                    .as_str()
                    .filter(|uuid| *uuid != claim["device"])
                    .map(|uuid| format!(" = {uuid}"))
                    .unwrap_or_default()
            ));
        }
    }
    let unresolved = list("gpuUnresolved");
    if !unresolved.is_empty() {
        lines.push(format!(
            "Unknown GPUs:  {} (NVML reports no such device; not counted)",
            unresolved.iter().map(text).collect::<Vec<_>>().join(", ")
        ));
    }
    lines
}
