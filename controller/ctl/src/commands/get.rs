//! `ds01ctl get specs|containers|gpus|processes [--user U] [--gpu UUID|INDEX] [-l KEY=VALUE]…`:
//! tables that fit 80 columns (`-o wide` for more), or the API's JSON with `-o json`. Filters
//! are applied by the controller.

use ds01_spec::api::{ApiTime, ContainerList, GpuList, ProcessList};
use serde_json::Value;

use super::{cell, cell_or_dash, decode, get_bytes, text, with_query};
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
    age_of(
        timestamp
            .as_str()
            .and_then(|text| text.parse::<jiff::Timestamp>().ok())
            .map(ApiTime),
    )
}

/// Compact seconds: `42s`, `5m`, `3h`, `2d`.
fn compact(seconds: i64) -> String {
    match seconds.max(0) {
        seconds @ 0..60 => format!("{seconds}s"),
        seconds @ 60..3600 => format!("{}m", seconds / 60),
        seconds @ 3600..86_400 => format!("{}h", seconds / 3600),
        seconds => format!("{}d", seconds / 86_400),
    }
}

/// Time since `at`, compact, or `-`.
fn age_of(at: Option<ApiTime>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| compact(jiff::Timestamp::now().duration_since(at.0).as_secs()),
    )
}

/// Time until `at`, compact, or `-`.
fn until(at: Option<ApiTime>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| compact(at.0.duration_since(jiff::Timestamp::now()).as_secs()),
    )
}

/// Lists one kind of thing.
pub async fn get(
    args: &GetArgs,
    socket: &std::path::Path,
    output: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let filtered = args.user.is_some() || args.gpu.is_some() || !args.labels.is_empty();
    if filtered && matches!(args.resource, Resource::Specs | Resource::Gpus) {
        printer::error("--user, --gpu and -l filter containers and processes only");
        return Ok(ExitStatus::Usage);
    }
    let mut parameters = Vec::new();
    if let Some(user) = &args.user {
        parameters.push(("user", user.clone()));
    }
    if let Some(gpu) = &args.gpu {
        parameters.push(("gpu", gpu.clone()));
    }
    for label in &args.labels {
        if !label.contains('=') {
            printer::error(&format!("-l takes KEY=VALUE, not `{label}`"));
            return Ok(ExitStatus::Usage);
        }
        parameters.push(("label", label.clone()));
    }
    let path = match args.resource {
        Resource::Specs => "/v1/specs",
        Resource::Containers => "/v1/containers",
        Resource::Gpus => "/v1/gpus",
        Resource::Processes => "/v1/processes",
    };
    let bytes = match get_bytes(socket, &with_query(path, &parameters)).await {
        Ok(bytes) => bytes,
        Err(status) => return Ok(status),
    };
    if matches!(output, OutputFormat::Json | OutputFormat::Yaml) {
        match decode::<Value>(&bytes) {
            Ok(body) => printer::structured(&body, output),
            Err(status) => return Ok(status),
        }
        return Ok(ExitStatus::Success);
    }
    let wide = output == OutputFormat::Wide;
    let rendered = match args.resource {
        Resource::Specs => decode::<Value>(&bytes).map(|body| (specs(&body), 0)),
        Resource::Containers => decode::<ContainerList>(&bytes)
            .map(|list| (containers(&list, wide), list.others_hidden)),
        Resource::Gpus => decode::<GpuList>(&bytes).map(|list| (gpus(&list, wide), 0)),
        Resource::Processes => {
            decode::<ProcessList>(&bytes).map(|list| (processes(&list, wide), list.others_hidden))
        }
    };
    let (table, hidden) = match rendered {
        Ok(rendered) => rendered,
        Err(status) => return Ok(status),
    };
    if table.lines().count() <= 1 && hidden == 0 {
        // Like kubectl: an empty list is a remark on stderr, not a lone header.
        let noun = match args.resource {
            Resource::Specs => "specs applied (ds01ctl apply -f specs/)",
            Resource::Containers if filtered => "containers match",
            Resource::Processes if filtered => "GPU processes match",
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

fn containers(list: &ContainerList, wide: bool) -> String {
    let header = format!(
        "{:<20} {:<12} {:<11} {:<8} {:>4} {:>5} {:>5} {:>8}",
        "NAME", "USER", "ORIGIN", "STATUS", "GPUS", "AGE", "IDLE", "DEADLINE"
    );
    let mut lines = vec![if wide {
        format!("{header}  ID            IMAGE")
    } else {
        header
    }];
    for container in &list.containers {
        let extra = if wide {
            format!("  {:<12}  {}", cell(&container.id), cell(&container.image))
        } else {
            String::new()
        };
        lines.push(format!(
            "{:<20} {:<12} {:<11} {:<8} {:>4} {:>5} {:>5} {:>8}{extra}",
            fit_middle(&cell(&container.name), 20),
            fit(&cell(&container.user), 12),
            fit(&cell(&container.origin), 11),
            cell(&container.status),
            container.gpus.len(),
            age_of(container.created_at),
            age_of(container.idle_since),
            until(container.next_deadline),
        ));
    }
    lines.join("\n")
}

/// Holders as one cell: own names, then how many belong to others.
fn holders_cell(holders: &[String], others: usize) -> String {
    let mut named: Vec<String> = holders
        .iter()
        .filter(|name| others == 0 || name.as_str() != "(another user)")
        .map(|name| cell(name))
        .collect();
    if others > 0 {
        named.push(format!("+{others} of others"));
    }
    named.join(",")
}

fn gpus(list: &GpuList, wide: bool) -> String {
    let mut lines = vec![format!(
        "{:<3} {:<14} {:>9} {:>5} {:<4} {:>4} {:>4} {:<30}",
        "IDX", "UUID", "MEM-USED", "UTIL", "MIG", "CTR", "HOST", "HOLDERS"
    )];
    for gpu in &list.gpus {
        let uuid = cell(&gpu.uuid);
        let holders = holders_cell(&gpu.holders, gpu.others_holding);
        let mig = match gpu.mig_enabled {
            Some(true) => "on",
            Some(false) => "off",
            None => "-",
        };
        let utilization = if gpu.lost {
            "LOST".to_owned()
        } else {
            gpu.utilization_gpu
                .map_or_else(|| "-".to_owned(), |percent| format!("{percent}%"))
        };
        lines.push(format!(
            "{:<3} {:<14} {:>9} {:>5} {:<4} {:>4} {:>4} {}",
            gpu.index,
            if wide { uuid.clone() } else { fit(&uuid, 14) },
            gpu.memory_used_bytes
                .map_or_else(|| "-".to_owned(), |bytes| format!("{}Mi", bytes >> 20)),
            utilization,
            mig,
            gpu.processes.container,
            gpu.processes.host,
            if wide {
                holders
            } else {
                fit_middle(&holders, 30)
            }
        ));
        for mig_device in &gpu.mig_devices {
            lines.push(format!(
                " └  {:<14} {:>9} {:>5} {:<4} {:>4} {:>4} {}",
                fit(&cell(&mig_device.uuid), 14),
                "",
                "",
                "",
                mig_device.processes.container,
                mig_device.processes.host,
                fit_middle(
                    &holders_cell(&mig_device.holders, mig_device.others_holding),
                    30
                )
            ));
        }
    }
    lines.join("\n")
}

fn processes(list: &ProcessList, wide: bool) -> String {
    let mut lines = vec![format!(
        "{:>7} {:<12} {:<14} {:<17} {:<18} {:>7}",
        "PID", "USER", "GPU", "CLASS", "CONTAINER", "MEM"
    )];
    for process in &list.processes {
        let command = if wide {
            format!("  {}", cell(&process.cmdline))
        } else {
            String::new()
        };
        lines.push(format!(
            "{:>7} {:<12} {:<14} {:<17} {:<18} {:>7}{command}",
            process.pid,
            fit(&cell(&process.user), 12),
            fit(&cell(&process.gpu), 14),
            cell(&process.class),
            fit_middle(&cell_or_dash(process.container.as_deref()), 18),
            process
                .memory_mib
                .map_or_else(|| "-".to_owned(), |mib| format!("{mib}Mi"))
        ));
    }
    lines.join("\n")
}
