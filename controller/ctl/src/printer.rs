//! The only place that writes to the terminal: data to stdout, diagnostics and hints to
//! stderr, colour only on a terminal and never with `NO_COLOR`.

use std::io::{IsTerminal, Write};

fn colour_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
        && std::io::stderr().is_terminal()
}

fn paint(code: &str, text: &str) -> String {
    if colour_enabled() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Writes data to standard output; a closed pipe (`| head`) is not an error worth reporting.
pub fn data(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = stdout.write_all(b"\n");
    }
    let _ = stdout.flush();
}

/// Writes a JSON value, pretty-printed, to standard output.
pub fn json(value: &serde_json::Value) {
    data(&serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Writes a value as YAML to standard output.
pub fn yaml(value: &serde_json::Value) {
    data(&crate::yaml_out::to_yaml(value));
}

/// Writes a value as JSON or YAML, as the output format asks.
pub fn structured(value: &serde_json::Value, output: crate::cli::OutputFormat) {
    if output == crate::cli::OutputFormat::Yaml {
        yaml(value)
    } else {
        json(value)
    }
}

/// `error: …` on standard error.
pub fn error(message: &str) {
    let _ = writeln!(std::io::stderr(), "{} {message}", paint("1;31", "error:"));
}

/// `hint: …` on standard error.
pub fn hint(message: &str) {
    let _ = writeln!(std::io::stderr(), "{} {message}", paint("1;36", "hint:"));
}
