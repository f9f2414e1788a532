//! `ds01ctl status`: controller health, each resource with generations and conditions, counts.

use ds01_spec::api::StatusView;

use super::{cell, cell_or_dash, decode, get_bytes};
use crate::{cli::OutputFormat, exit::ExitStatus, printer};

/// Prints the controller's status.
pub async fn status(socket: &std::path::Path, output: OutputFormat) -> anyhow::Result<ExitStatus> {
    let bytes = match get_bytes(socket, "/v1/status").await {
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
    match decode::<StatusView>(&bytes) {
        Ok(view) => printer::data(&render(&view)),
        Err(status) => return Ok(status),
    }
    Ok(ExitStatus::Success)
}

fn render(view: &StatusView) -> String {
    let controller = &view.controller;
    let docker = &controller.docker;
    let gpu = &controller.gpu;
    let mut lines = vec![
        format!(
            "Controller   ds01-controller {} up {}s",
            cell(&controller.version),
            controller.uptime_seconds
        ),
        format!(
            "Docker       {} since {}{}",
            if docker.connected {
                "connected"
            } else {
                "DISCONNECTED"
            },
            cell_or_dash(docker.since),
            docker
                .last_error
                .as_deref()
                .map(|error| format!(" ({})", cell(error)))
                .unwrap_or_default()
        ),
        format!(
            "             last relist {}, event lag {} ms",
            cell_or_dash(docker.last_relist),
            cell_or_dash(docker.event_lag_ms)
        ),
        format!(
            "GPU backend  {}{}",
            cell(&gpu.backend),
            gpu.last_error
                .as_deref()
                .map(|error| format!(" — {}", cell(error)))
                .unwrap_or_default()
        ),
    ];
    if let Some(error) = &controller.event_log_error {
        lines.push(format!("Event log    {}", cell(error)));
    }
    for condition in &controller.conditions {
        lines.push(format!(
            "Condition    {}={} ({}){}",
            cell(&condition.kind),
            condition.status,
            cell(&condition.reason),
            if condition.message.is_empty() {
                String::new()
            } else {
                format!(": {}", cell(&condition.message))
            }
        ));
    }
    let counts = &view.counts;
    lines.push(format!(
        "Workloads    {} containers ({} running, {} with GPUs), {} GPUs, {} host GPU processes",
        counts.containers, counts.running, counts.with_gpu, counts.gpus, counts.host_gpu_processes
    ));
    lines.push(String::new());
    if view.resources.is_empty() {
        lines.push("No specs applied (ds01ctl apply -f specs/).".to_owned());
    } else {
        lines.push(format!(
            "{:<26} {:<22} {:>3} {:>3} {:<7} {}",
            "KIND", "NAME", "GEN", "OBS", "READY", "REASON"
        ));
        for resource in &view.resources {
            let ready = resource.condition("Ready");
            lines.push(format!(
                "{:<26} {:<22} {:>3} {:>3} {:<7} {}",
                cell(&resource.kind),
                cell(&resource.name),
                resource.generation,
                cell_or_dash(resource.observed_generation),
                cell_or_dash(ready.map(|condition| condition.status)),
                cell_or_dash(ready.map(|condition| condition.reason.as_str()))
            ));
        }
    }
    lines.join("\n")
}
