//! `ds01ctl import-legacy resource-limits.yaml [--compose FILE] [--layer-overrides]
//! [--inline-members]`: the incumbent's configuration as specs that give every user the
//! limits they have today — a `ContainerLifecyclePolicy`, a `GpuOrphanPolicy` from
//! `bare_metal_access`, a `DcgmExporter` from the Compose file — printed on standard output;
//! on standard error, each value whose meaning changes (old → new) and each that is not
//! carried over, once. Policies come out in `dryRun`. The same input gives the same bytes.

mod blocks;
mod compose;
mod exemptions;
mod inputs;
mod layering;
mod lifecycle;
mod notices;
mod orphans;
mod types;

use serde_json::{Map, Value, json};

use crate::{cli::ImportLegacyArgs, exit::ExitStatus, printer, yaml_out::to_yaml};

/// Sections of `resource-limits.yaml` a lifecycle policy has no place for.
const ELSEWHERE: [&str; 5] = [
    "enforcement",
    "gpu_allocation",
    "access_control",
    "monitoring",
    "user_overrides",
];

fn document(kind: &str, name: &str, spec: Map<String, Value>) -> String {
    to_yaml(&json!({
        "apiVersion": ds01_spec::API_VERSION,
        "kind": kind,
        "metadata": { "name": name },
        "spec": spec,
    }))
}

/// Runs the conversion.
pub fn import_legacy(args: &ImportLegacyArgs) -> anyhow::Result<ExitStatus> {
    let mut warnings = Vec::new();
    let legacy = match inputs::read(args, &mut warnings) {
        Ok(legacy) => legacy,
        Err(message) => {
            printer::error(&message);
            return Ok(ExitStatus::UserError);
        }
    };
    for warning in &warnings {
        printer::hint(&format!("warning: {warning}"));
    }
    let mut notices = notices::Notices::default();
    for key in legacy.limits.keys() {
        match key.as_str() {
            "defaults" | "default_group" | "groups" | "policies" | "container_types"
            | "bare_metal_access" | "user_overrides" => {}
            "monitoring" => notices.dropped(
                "monitoring",
                "infrastructure containers are protected by label here (protectedLabels: ds01.protected=true, ds01.monitoring=true), which the compose stack's containers carry",
            ),
            other if ELSEWHERE.contains(&other) => notices.dropped(
                other,
                "GPU allocation, slices and access control stay with the incumbent's wrapper and allocator",
            ),
            other => notices.dropped(other, "not part of any ds01 spec"),
        }
    }
    let options = lifecycle::Options {
        layer_overrides: args.layer_overrides,
        inline_members: args.inline_members,
    };
    let policy = lifecycle::spec(&legacy, options, &mut notices);
    let mut documents = vec![document(
        "ContainerLifecyclePolicy",
        &args.name,
        policy.clone(),
    )];
    if let Some(spec) = orphans::spec(&legacy.limits, &mut notices) {
        documents.push(document("GpuOrphanPolicy", "imported-gpu-orphans", spec));
    }
    if let Some((path, compose)) = &legacy.compose
        && let Some(spec) = compose::spec(compose, path, &mut notices)
    {
        documents.push(document("DcgmExporter", "dcgm-exporter", spec));
    }
    let text = format!(
        "# Imported by ds01ctl import-legacy from {}: the incumbent's limits, in dryRun.\n# Compare with `ds01ctl limits` during the side-by-side period; set mode: enforce at cut-over (docs/migration.md).\n{}",
        args.resource_limits.display(),
        documents.join("---\n")
    );
    // The result goes through the same checks as any spec.
    if let Err(diagnostics) = ds01_spec::parse_sources(&[ds01_spec::Source {
        name: "<imported>".to_owned(),
        text: text.clone(),
    }]) {
        for diagnostic in &diagnostics.0 {
            printer::error(&diagnostic.to_string());
        }
        printer::hint(
            "the converted specs are not valid; fix the values above in the incumbent's files or in the output",
        );
        printer::data(&text);
        return Ok(ExitStatus::UserError);
    }
    printer::data(&text);
    notices.print();
    if args.layer_overrides {
        let incumbent_rule = lifecycle::spec(
            &legacy,
            lifecycle::Options {
                layer_overrides: false,
                ..options
            },
            &mut notices::Notices::default(),
        );
        layering::report(&incumbent_rule, &policy);
    }
    Ok(ExitStatus::Success)
}
