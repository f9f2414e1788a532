//! `ds01ctl status`: controller health, each resource with generations and conditions, counts.

use serde_json::Value;

use super::{get_json, text};
use crate::{cli::OutputFormat, exit::ExitStatus, printer};

/// Prints the controller's status.
pub async fn status(socket: &std::path::Path, output: OutputFormat) -> anyhow::Result<ExitStatus> {
    let body = match get_json(socket, "/v1/status").await {
        Ok(body) => body,
        Err(status) => return Ok(status),
    };
    if matches!(output, OutputFormat::Json | OutputFormat::Yaml) {
        printer::structured(&body, output);
        return Ok(ExitStatus::Success);
    }
    printer::data(&render(&body));
    Ok(ExitStatus::Success)
}

fn render(body: &Value) -> String {
    let controller = &body["controller"];
    let docker = &controller["docker"];
    let gpu = &controller["gpu"];
    let mut lines = vec![
        format!(
            "Controller   ds01-controller {} up {}s",
            text(&controller["version"]),
            text(&controller["uptimeSeconds"])
        ),
        format!(
            "Docker       {} since {}{}",
            if docker["connected"] == true {
                "connected"
            } else {
                "DISCONNECTED"
            },
            text(&docker["since"]),
            docker["lastError"]
                .as_str()
                .map(|error| format!(" ({error})"))
                .unwrap_or_default()
        ),
        format!(
            "             last relist {}, event lag {} ms",
            text(&docker["lastRelist"]),
            text(&docker["eventLagMs"])
        ),
        format!(
            "GPU backend  {}{}",
            text(&gpu["backend"]),
            gpu["lastError"]
                .as_str()
                .map(|error| format!(" — {error}"))
                .unwrap_or_default()
        ),
    ];
    if let Some(error) = controller["eventLogError"].as_str() {
        lines.push(format!("Event log    {error}"));
    }
    let counts = &body["counts"];
    lines.push(format!(
        "Workloads    {} containers ({} running, {} with GPUs), {} GPUs, {} host GPU processes",
        text(&counts["containers"]),
        text(&counts["running"]),
        text(&counts["withGpu"]),
        text(&counts["gpus"]),
        text(&counts["hostGpuProcesses"])
    ));
    lines.push(String::new());
    let resources = body["resources"].as_array().cloned().unwrap_or_default();
    if resources.is_empty() {
        lines.push("No specs applied (ds01ctl apply -f specs/).".to_owned());
    } else {
        lines.push(format!(
            "{:<26} {:<22} {:>3} {:>3} {:<7} {}",
            "KIND", "NAME", "GEN", "OBS", "READY", "REASON"
        ));
        for resource in resources {
            let ready = resource["conditions"]
                .as_array()
                .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"))
                .cloned()
                .unwrap_or(Value::Null);
            lines.push(format!(
                "{:<26} {:<22} {:>3} {:>3} {:<7} {}",
                text(&resource["kind"]),
                text(&resource["name"]),
                text(&resource["generation"]),
                text(&resource["observedGeneration"]),
                text(&ready["status"]),
                text(&ready["reason"])
            ));
        }
    }
    lines.join("\n")
}
