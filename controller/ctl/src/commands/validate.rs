//! `ds01ctl validate -f PATH…`: offline, all-or-nothing checking of spec files.

use ds01_spec::{parse_sources, read_sources};
use serde_json::json;

use crate::{
    cli::{OutputFormat, ValidateArgs},
    exit::ExitStatus,
    printer,
};

/// Validates every document under the paths; exit 1 when any is invalid.
pub fn validate(args: &ValidateArgs, output: OutputFormat) -> anyhow::Result<ExitStatus> {
    let sources = match read_sources(&args.paths) {
        Ok(sources) => sources,
        Err(error) => {
            printer::error(&format!("{:#}", anyhow::Error::from(error)));
            return Ok(ExitStatus::UserError);
        }
    };
    let result = parse_sources(&sources);
    let machine = matches!(output, OutputFormat::Json | OutputFormat::Yaml);
    match result {
        Ok(resources) => {
            if machine {
                let listed: Vec<_> = resources
                    .iter()
                    .map(|parsed| json!({"file": parsed.file, "document": parsed.document, "resource": parsed.resource.reference()}))
                    .collect();
                printer::structured(
                    &json!({"valid": true, "resources": listed, "errors": []}),
                    output,
                );
            } else {
                for parsed in &resources {
                    printer::data(&format!(
                        "{} valid ({})",
                        parsed.resource.reference(),
                        parsed.file
                    ));
                }
            }
            Ok(ExitStatus::Success)
        }
        Err(diagnostics) => {
            if machine {
                printer::structured(
                    &json!({"valid": false, "resources": [], "errors": diagnostics.0}),
                    output,
                );
            }
            for diagnostic in &diagnostics.0 {
                printer::error(&diagnostic.to_string());
            }
            let files = {
                let mut files: Vec<&str> = diagnostics.0.iter().map(|d| d.file.as_str()).collect();
                files.dedup();
                files.len()
            };
            printer::hint(&format!(
                "{} problem(s) in {files} file(s); nothing is valid until all are fixed",
                diagnostics.0.len()
            ));
            Ok(ExitStatus::UserError)
        }
    }
}
