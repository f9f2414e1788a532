//! `ds01ctl limits --user U [--type T] [--at TIME] [-f PATH…] [--policy NAME]`: the lifecycle
//! limits a user's containers of one type get, and the layer each comes from. With `-f` it
//! resolves offline from spec files; without, it asks the controller (`GET /v1/limits`). Both
//! use `ds01_spec::limits_view`, so they agree.

use ds01_spec::{
    ContainerLifecyclePolicySpec, SpecBody,
    limits_view::{LimitsView, choose_policy, limits_view},
    names::read_members_files,
    parse_sources, read_sources,
};

use super::{cell, decode, get_bytes, text, with_query};
use crate::{
    cli::{LimitsArgs, OutputFormat},
    exit::ExitStatus,
    printer,
};

fn offline(args: &LimitsArgs) -> Result<LimitsView, ExitStatus> {
    let sources = read_sources(&args.paths).map_err(|error| {
        printer::error(&format!("{:#}", anyhow::Error::from(error)));
        ExitStatus::UserError
    })?;
    let resources = parse_sources(&sources).map_err(|diagnostics| {
        for diagnostic in &diagnostics.0 {
            printer::error(&diagnostic.to_string());
        }
        ExitStatus::UserError
    })?;
    let policies: Vec<(&str, &ContainerLifecyclePolicySpec)> = resources
        .iter()
        .filter_map(|parsed| match &parsed.resource.spec {
            SpecBody::ContainerLifecyclePolicy(spec) => {
                Some((parsed.resource.metadata.name.as_str(), spec.as_ref()))
            }
            _ => None,
        })
        .collect();
    let (_, spec) = choose_policy(policies, args.policy.as_deref()).map_err(|error| {
        printer::error(&error.to_string());
        ExitStatus::UserError
    })?;
    let (members, unreadable) = read_members_files(spec);
    for problem in unreadable {
        printer::hint(&format!(
            "members file not read, its group has only its inline members: {problem}"
        ));
    }
    let at = args.at.unwrap_or_else(jiff::Timestamp::now);
    Ok(limits_view(
        spec,
        &args.user,
        &args.container_type,
        at,
        &members,
    ))
}

async fn online(args: &LimitsArgs, socket: &std::path::Path) -> Result<LimitsView, ExitStatus> {
    let mut parameters = vec![
        ("user", args.user.clone()),
        ("type", args.container_type.clone()),
    ];
    if let Some(at) = args.at {
        parameters.push(("at", at.to_string()));
    }
    if let Some(policy) = &args.policy {
        parameters.push(("policy", policy.clone()));
    }
    let bytes = get_bytes(socket, &with_query("/v1/limits", &parameters)).await?;
    decode(&bytes)
}

fn table(view: &LimitsView) -> String {
    let mut lines = vec![
        format!("User:            {}", cell(&view.user)),
        format!(
            "Group:           {}",
            cell(view.group.as_deref().unwrap_or("none"))
        ),
        format!("Container type:  {}", cell(&view.container_type)),
        format!("{:<17} {:<14} SOURCE", "LIMIT", "VALUE"),
    ];
    for (name, limit) in &view.limits {
        let value = match &limit.value {
            serde_json::Value::Null => "none".to_owned(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| format!("{}%", text(item)))
                .collect::<Vec<_>>()
                .join(", "),
            other => text(other),
        };
        lines.push(format!(
            "{:<17} {value:<14} {}",
            cell(name),
            cell(&limit.source)
        ));
    }
    lines.join("\n")
}

/// Runs the command.
pub async fn limits(
    args: &LimitsArgs,
    socket: &std::path::Path,
    output: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let view = if args.paths.is_empty() {
        online(args, socket).await
    } else {
        offline(args)
    };
    let view = match view {
        Ok(view) => view,
        Err(status) => return Ok(status),
    };
    match output {
        OutputFormat::Json | OutputFormat::Yaml => {
            printer::structured(&serde_json::to_value(&view)?, output);
        }
        OutputFormat::Table | OutputFormat::Wide => printer::data(&table(&view)),
    }
    Ok(ExitStatus::Success)
}
