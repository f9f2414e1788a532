//! The only place that writes to the terminal: data to stdout, diagnostics and hints to
//! stderr, colour only on a terminal and never with `NO_COLOR`. Text that came from users
//! (names, labels, command lines, event details) can hold terminal control sequences: every
//! control character (C0, DEL, C1) and bidirectional override is written escaped (`\u{1b}`),
//! in tables, describe, events, YAML and JSON (there as `\u001b`, still valid JSON).

use std::{
    borrow::Cow,
    io::{IsTerminal, Write},
};

/// Whether `c` must not reach a terminal raw: control characters and the bidirectional
/// overrides and isolates that reorder what follows them.
#[must_use]
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character escaped, newlines and tabs included: for one table cell
/// or value.
#[must_use]
pub fn clean(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// `text` with every unsafe character but the newline escaped: for whole lines of output.
fn clean_lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if keep(c) || !is_unsafe(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

/// JSON text with the unsafe characters serde leaves raw (DEL, C1, bidi) written as `\uXXXX`
/// escapes; they can only occur inside strings, so the result is the same JSON.
#[must_use]
pub fn json_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) && !matches!(c, '\n' | '\t' | '\r') {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

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

/// Writes data to standard output, unsafe characters escaped; a closed pipe (`| head`) is not
/// an error worth reporting.
pub fn data(text: &str) {
    raw(&clean_lines(text));
}

fn raw(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = stdout.write_all(b"\n");
    }
    let _ = stdout.flush();
}

/// Writes a JSON value, pretty-printed, to standard output.
pub fn json(value: &serde_json::Value) {
    raw(&json_safe(
        &serde_json::to_string_pretty(value).unwrap_or_default(),
    ));
}

/// Writes one line of JSON (from the controller) to standard output.
pub fn json_line(line: &str) {
    raw(&json_safe(line));
}

/// Writes a value as YAML to standard output (strings with unsafe characters are quoted and
/// escaped by the YAML writer).
pub fn yaml(value: &serde_json::Value) {
    raw(&crate::yaml_out::to_yaml(value));
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
    let _ = writeln!(
        std::io::stderr(),
        "{} {}",
        paint("1;31", "error:"),
        clean_lines(message)
    );
}

/// `hint: …` on standard error.
pub fn hint(message: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{} {}",
        paint("1;36", "hint:"),
        clean_lines(message)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped() {
        assert_eq!(clean("plain-name_1"), "plain-name_1");
        assert_eq!(
            clean("evil\u{1b}[2J\u{7}name\nnext\u{9b}31m\u{202e}txt"),
            "evil\\u{1b}[2J\\u{7}name\\nnext\\u{9b}31m\\u{202e}txt"
        );
        assert_eq!(clean_lines("a\nb\u{1b}c"), "a\nb\\u{1b}c");
        let json =
            serde_json::to_string(&serde_json::json!({"n": "x\u{1b}\u{7f}\u{9b}y"})).expect("json");
        let safe = json_safe(&json);
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back["n"], "x\u{1b}\u{7f}\u{9b}y");
    }
}
