//! `ds01ctl schema [KIND]`: the JSON Schema generated from the spec types.

use ds01_spec::{Kind, schema};

use crate::{cli::SchemaArgs, exit::ExitStatus, printer};

/// Prints the schema of every kind, or of the one named.
pub fn schema(args: &SchemaArgs) -> anyhow::Result<ExitStatus> {
    match &args.kind {
        None => printer::json(&schema::editor_schema()),
        Some(text) => match text.parse::<Kind>() {
            Ok(kind) => printer::json(&schema::kind_schema(kind)),
            Err(message) => {
                printer::error(&message);
                return Ok(ExitStatus::UserError);
            }
        },
    }
    Ok(ExitStatus::Success)
}
