//! `ds01ctl get specs|containers|gpus|processes`: tables that fit 80 columns (`-o wide` for
//! more), or the API's JSON with `-o json`.

use serde_json::Value;

use super::{get_json, text};
use crate::{
    cli::{GetArgs, OutputFormat, Resource},
    exit::ExitStatus,
    printer,
};

/// Cuts `value` to `width` characters, marking the cut.
fn fit(value: &str, width: usize) -> String {
    if value.chars().count() <= width {
        value.to_owned()
    } else {
        let kept: String = value.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// Cuts `value` to `width` characters in the middle, keeping its start and its end (names
/// often differ only at the end).
fn fit_middle(value: &str, width: usize) -> String {
    let count = value.chars().count();
    if count <= width || width < 5 {
        return fit(value, width);
    }
    let tail = (width - 1) / 2;
    let head = width - 1 - tail;
    let start: String = value.chars().take(head).collect();
    let end: String = value.chars().skip(count - tail).collect();
    format!("{start}…{end}")
}

fn age(timestamp: &Value) -> String {
    let Some(at) = timestamp
        .as_str()
        .and_then(|text| text.parse::<jiff::Timestamp>().ok())
    else {
        return "-".to_owned();
    };
    let seconds = jiff::Timestamp::now().duration_since(at).as_secs().max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// Lists one kind of thing.
pub async fn get(
    args: &GetArgs,
    socket: &std::path::Path,
    output: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let path = match args.resource {
        Resource::Specs => "/v1/specs",
        Resource::Containers => "/v1/containers",
        Resource::Gpus => "/v1/gpus",
        Resource::Processes => "/v1/processes",
    };
    let body = match get_json(socket, path).await {
        Ok(body) => body,
        Err(status) => return Ok(status),
    };
    if matches!(output, OutputFormat::Json | OutputFormat::Yaml) {
        printer::structured(&body, output);
        return Ok(ExitStatus::Success);
    }
    let wide = output == OutputFormat::Wide;
    let table = match args.resource {
        Resource::Specs => specs(&body),
        Resource::Containers => containers(&body, wide),
        Resource::Gpus => gpus(&body, wide),
        Resource::Processes => processes(&body, wide),
    };
    let hidden = body["othersHidden"].as_u64().unwrap_or(0);
    if table.lines().count() <= 1 && hidden == 0 {
        // Like kubectl: an empty list is a remark on stderr, not a lone header.
        let noun = match args.resource {
            Resource::Specs => "specs applied (ds01ctl apply -f specs/)",
            Resource::Containers => "containers found",
            Resource::Gpus => "GPUs found",
            Resource::Processes => "GPU processes found",
        };
        eprintln!("No {noun}.");
        return Ok(ExitStatus::Success);
    }
    printer::data(&table);
    if hidden > 0 {
        printer::hint(&format!(
            "{hidden} more belong to other users (only admins see them in detail)"
        ));
    }
    Ok(ExitStatus::Success)
}

fn specs(body: &Value) -> String {
    let mut lines = vec![format!(
        "{:<26} {:<30} {:>4} {:>6}",
        "KIND", "NAME", "GEN", "AGE"
    )];
    for spec in body["specs"].as_array().into_iter().flatten() {
        lines.push(format!(
            "{:<26} {:<30} {:>4} {:>6}",
            text(&spec["kind"]),
            fit_middle(&text(&spec["name"]), 30),
            text(&spec["generation"]),
            age(&spec["appliedAt"])
        ));
    }
    lines.join("\n")
}

/// Time until `timestamp`, compact (`in 5m`), or `-`.
fn until(timestamp: &Value) -> String {
    let Some(at) = timestamp
        .as_str()
        .and_then(|text| text.parse::<jiff::Timestamp>().ok())
    else {
        return "-".to_owned();
    };
    let seconds = at.duration_since(jiff::Timestamp::now()).as_secs().max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

fn containers(body: &Value, wide: bool) -> String {
    let header = format!(
        "{:<20} {:<12} {:<11} {:<8} {:>4} {:>5} {:>5} {:>8}",
        "NAME", "USER", "ORIGIN", "STATUS", "GPUS", "AGE", "IDLE", "DEADLINE"
    );
    let mut lines = vec![if wide {
        format!("{header}  ID            IMAGE")
    } else {
        header
    }];
    for container in body["containers"].as_array().into_iter().flatten() {
        let gpus = container["gpus"].as_array().map_or(0, Vec::len);
        let extra = if wide {
            format!(
                "  {:<12}  {}",
                text(&container["id"]),
                text(&container["image"])
            )
        } else {
            String::new()
        };
        lines.push(format!(
            "{:<20} {:<12} {:<11} {:<8} {:>4} {:>5} {:>5} {:>8}{extra}",
            fit_middle(&text(&container["name"]), 20),
            fit(&text(&container["user"]), 12),
            fit(&text(&container["origin"]), 11),
            text(&container["status"]),
            gpus,
            age(&container["createdAt"]),
            age(&container["idleSince"]),
            until(&container["nextDeadline"]),
        ));
    }
    lines.join("\n")
}

fn gpus(body: &Value, wide: bool) -> String {
    let mut lines = vec![format!(
        "{:<3} {:<14} {:>9} {:>5} {:<4} {:>4} {:>4} {:<30}",
        "IDX", "UUID", "MEM-USED", "UTIL", "MIG", "CTR", "HOST", "HOLDERS"
    )];
    let mib = |value: &Value| {
        value
            .as_u64()
            .map_or_else(|| "-".to_owned(), |bytes| format!("{}Mi", bytes >> 20))
    };
    for gpu in body["gpus"].as_array().into_iter().flatten() {
        let uuid = text(&gpu["uuid"]);
        let holders = gpu["holders"]
            .as_array()
            .map(|names| names.iter().map(text).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let mig = match gpu["migEnabled"].as_bool() {
            Some(true) => "on",
            Some(false) => "off",
            None => "-",
        };
        let utilization = gpu["utilizationGpu"]
            .as_u64()
            .map_or_else(|| "-".to_owned(), |percent| format!("{percent}%"));
        let uuid_shown = if wide { uuid.clone() } else { fit(&uuid, 14) };
        lines.push(format!(
            "{:<3} {:<14} {:>9} {:>5} {:<4} {:>4} {:>4} {}",
            text(&gpu["index"]),
            uuid_shown,
            mib(&gpu["memoryUsedBytes"]),
            if gpu["lost"] == true {
                "LOST".to_owned()
            } else {
                utilization
            },
            mig,
            text(&gpu["processes"]["container"]),
            text(&gpu["processes"]["host"]),
            if wide {
                holders
            } else {
                fit_middle(&holders, 30)
            }
        ));
        for mig_device in gpu["migDevices"].as_array().into_iter().flatten() {
            let mig_holders = mig_device["holders"]
                .as_array()
                .map(|names| names.iter().map(text).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            lines.push(format!(
                " └  {:<14} {:>9} {:>5} {:<4} {:>4} {:>4} {}",
                fit(&text(&mig_device["uuid"]), 14),
                "",
                "",
                "",
                text(&mig_device["processes"]["container"]),
                text(&mig_device["processes"]["host"]),
                fit_middle(&mig_holders, 30)
            ));
        }
    }
    lines.join("\n")
}

fn processes(body: &Value, wide: bool) -> String {
    let mut lines = vec![format!(
        "{:>7} {:<12} {:<14} {:<17} {:<18} {:>7}",
        "PID", "USER", "GPU", "CLASS", "CONTAINER", "MEM"
    )];
    for process in body["processes"].as_array().into_iter().flatten() {
        let command = if wide {
            format!("  {}", text(&process["cmdline"]))
        } else {
            String::new()
        };
        lines.push(format!(
            "{:>7} {:<12} {:<14} {:<17} {:<18} {:>7}{command}",
            text(&process["pid"]),
            fit(&text(&process["user"]), 12),
            fit(&text(&process["gpu"]), 14),
            text(&process["class"]),
            fit_middle(&text(&process["container"]), 18),
            process["memoryMiB"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |mib| format!("{mib}Mi"))
        ));
    }
    lines.join("\n")
}
