//! `ds01ctl describe container NAME|ID`: everything the controller knows about one container.

use ds01_spec::api::{ContainerDetail, ContainerLifecycleView, SignalView};

use super::{cell, cell_or_dash, decode, encode, get_bytes};
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
    let path = format!("/v1/containers/{}", encode(&args.name));
    let bytes = match get_bytes(socket, &path).await {
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
    match decode::<ContainerDetail>(&bytes) {
        Ok(detail) => printer::data(&render(&detail)),
        Err(status) => return Ok(status),
    }
    Ok(ExitStatus::Success)
}

fn render(detail: &ContainerDetail) -> String {
    let summary = &detail.summary;
    let mut lines = vec![
        format!("Name:          {}", cell(&summary.name)),
        format!("ID:            {}", cell(&summary.id)),
        format!(
            "Owner:         {} (from {}{})",
            cell(&summary.user),
            cell(&summary.owner_source),
            if summary.owner_verified {
                ", verified: init runs as this user"
            } else {
                ", claimed"
            }
        ),
        format!("Origin:        {}", cell(&summary.origin)),
        format!("Image:         {}", cell(&summary.image)),
        format!(
            "Status:        {}{}",
            cell(&summary.status),
            detail
                .exit_code
                .filter(|_| summary.status == "exited")
                .map(|code| format!(" (exit code {code})"))
                .unwrap_or_default()
        ),
        format!("Created:       {}", cell_or_dash(summary.created_at)),
        format!("Started:       {}", cell_or_dash(summary.started_at)),
        format!("Finished:      {}", cell_or_dash(summary.finished_at)),
        format!("Detected:      {}", summary.detected_at),
    ];
    if let Some(conflict) = &detail.owner_conflict {
        lines.push(format!(
            "Owner conflict: {} claims {}, but {} says {} (the evidence wins)",
            cell(&conflict.claimed_by),
            cell(&conflict.claimed),
            cell(&conflict.observed),
            cell(&conflict.evidence)
        ));
    }
    lines.extend(gpu_lines(detail));
    lines.push("GPU processes:".to_owned());
    if detail.gpu_processes.is_empty() {
        lines.push("  none".to_owned());
    }
    for process in &detail.gpu_processes {
        lines.push(format!(
            "  pid {} {} on {} ({} MiB)",
            process.pid,
            cell(&process.name),
            cell(&process.gpu),
            cell_or_dash(process.memory_mib)
        ));
    }
    if let Some(lifecycle) = &detail.lifecycle {
        lifecycle_lines(lifecycle, &mut lines);
    }
    lines.push("Labels:".to_owned());
    for (key, value) in &detail.labels {
        lines.push(format!("  {}={}", cell(key), cell(value)));
    }
    lines.push("Events:".to_owned());
    if detail.events.is_empty() {
        lines.push("  none since the controller started".to_owned());
    }
    for event in &detail.events {
        lines.push(format!(
            "  {}  {}",
            cell(&event.timestamp),
            cell(&event.event_type)
        ));
    }
    lines.join("\n")
}

fn lifecycle_lines(lifecycle: &ContainerLifecycleView, lines: &mut Vec<String>) {
    lines.push(format!(
        "Lifecycle:     policy {}{}",
        cell(&lifecycle.policy),
        if lifecycle.dry_run { " (dry run)" } else { "" }
    ));
    for (key, limit) in lifecycle.limits.named() {
        let value = limit
            .value
            .as_deref()
            .map_or_else(|| "none".to_owned(), cell);
        lines.push(format!(
            "  {key:<17} {value:<10} from {}",
            cell(&limit.source)
        ));
    }
    for exemption in &lifecycle.exemptions {
        lines.push(format!(
            "  exempt from {} ({}), until {}",
            cell(&exemption.from.join(", ")),
            cell(&exemption.reason),
            exemption
                .expires
                .map_or_else(|| "never".to_owned(), |at| at.to_string())
        ));
    }
    let show = |name: &str, signal: &SignalView| match &signal.value {
        Some(value) => format!(
            "{name} {} ({})",
            cell(value),
            if signal.idle { "idle" } else { "active" }
        ),
        None => format!("{name} unknown"),
    };
    let signals = &lifecycle.signals;
    lines.push(format!(
        "  signals           {}, {}, {}, keep-alive {}",
        show("gpu", &signals.gpu),
        show("cpu", &signals.cpu),
        show("network", &signals.network),
        if signals.keep_alive { "fresh" } else { "none" }
    ));
    lines.push(format!(
        "  idle since        {}",
        cell_or_dash(lifecycle.idle_since)
    ));
    lines.push(format!(
        "  next action at    {}",
        cell_or_dash(lifecycle.next_deadline)
    ));
    lines.push(format!(
        "  warnings sent     idle {}, runtime {}",
        lifecycle.idle_warnings_sent, lifecycle.runtime_warnings_sent
    ));
    if let Some(note) = &lifecycle.note {
        lines.push(format!("  note              {}", cell(note)));
    }
}

/// The granted GPUs with how each was granted, the label claims and the unknown ids.
fn gpu_lines(detail: &ContainerDetail) -> Vec<String> {
    let summary = &detail.summary;
    let mut lines = vec![if summary.gpu_grants.is_empty() {
        "GPUs:          none".to_owned()
    } else {
        "GPUs:".to_owned()
    }];
    for grant in &summary.gpu_grants {
        lines.push(format!(
            "  {} via {} ({}){}",
            cell(&grant.uuid),
            cell(&grant.via),
            cell(&grant.device),
            if grant.narrowed {
                ", narrowed by CUDA_VISIBLE_DEVICES"
            } else {
                ""
            }
        ));
    }
    if !summary.gpu_claims.is_empty() {
        lines.push("GPU claims:    (labels: never a grant)".to_owned());
        for claim in &summary.gpu_claims {
            lines.push(format!(
                "  {} via label {}{}",
                cell(&claim.device),
                cell(&claim.label),
                claim
                    .uuid
                    .as_deref()
                    .filter(|uuid| *uuid != claim.device)
                    .map(|uuid| format!(" = {}", cell(uuid)))
                    .unwrap_or_default()
            ));
        }
    }
    if !summary.gpu_unresolved.is_empty() {
        let unknown: Vec<String> = summary.gpu_unresolved.iter().map(|id| cell(id)).collect();
        lines.push(format!(
            "Unknown GPUs:  {} (NVML reports no such device; not counted)",
            unknown.join(", ")
        ));
    }
    lines
}
