//! `ds01ctl man`: the manual page ds01ctl(1) in roff, generated from the clap definitions (so it
//! never lags behind the commands), plus what clap does not know: every command with its
//! options, EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO. Dated `SOURCE_DATE_EPOCH` when set
//! (packaging sets it to the release's changelog date), else today.

use clap::{Arg, Command, CommandFactory};
use clap_mangen::Man;
use roff::{Inline, Roff, bold, italic, roman};

use crate::{cli::Cli, exit::ExitStatus, printer};

/// The NAME line's summary (the `--help` title repeats the program name).
const SUMMARY: &str = "submit desired state to the ds01 controller and see what it sees and does";

const DESCRIPTION: &str = "\
ds01ctl talks to ds01-controller(8), the daemon that keeps a shared GPU server in the state its \
specs describe: the DCGM exporter runs, GPUs are free of orphaned processes, containers respect \
idle and runtime limits. Specs are Kubernetes-shaped YAML documents (kinds DcgmExporter, \
GpuOrphanPolicy, ContainerLifecyclePolicy); validate and schema work offline, every other \
command goes through the controller's socket.

Anyone may read; only root and members of the controller's admin group (ds01-admin unless \
configured otherwise) may apply or delete specs. Non-admins see other users' containers \
counted, not named.";

const EXIT_STATUS: [(&str, &str); 4] = [
    (
        "0",
        "The command did what was asked (diff: nothing would change).",
    ),
    (
        "1",
        "The input or the request was wrong, refused or not found: invalid specs, a spec the \
         controller rejected, no permission, an unknown resource; diff: something would change; \
         wait: the condition did not hold before the timeout.",
    ),
    (
        "2",
        "Something unexpected failed: the controller is unreachable or failed itself (for diff, \
         any error).",
    ),
    (
        "64",
        "The command line is wrong (an unknown flag, a missing argument).",
    ),
];

const FILES: [(&str, &str); 3] = [
    (
        "/run/ds01/controller.sock",
        "The controller's socket (--socket, DS01_SOCKET).",
    ),
    (
        "/etc/ds01/specs/",
        "The specs the controller applies at start and on systemctl reload.",
    ),
    (
        "/var/log/ds01/events.jsonl",
        "The controller's event log (JSON lines), read through ds01ctl events.",
    ),
];

/// Prints the manual page.
pub fn man() -> ExitStatus {
    match render() {
        Ok(page) => {
            printer::data(&page);
            ExitStatus::Success
        }
        Err(error) => {
            printer::error(&format!("cannot render the manual page: {error}"));
            ExitStatus::Failure
        }
    }
}

/// The date printed in the page's footer: `SOURCE_DATE_EPOCH` (reproducible builds), else today.
fn page_date() -> String {
    let now = jiff::Timestamp::now();
    let at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|seconds| seconds.trim().parse::<i64>().ok())
        .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
        .unwrap_or(now);
    at.strftime("%Y-%m-%d").to_string()
}

fn render() -> std::io::Result<String> {
    let command = Cli::command().about(SUMMARY).long_about(DESCRIPTION);
    let page = Man::new(command.clone())
        .date(page_date())
        .source(format!("ds01ctl {}", env!("CARGO_PKG_VERSION")))
        .manual("ds01 manual");
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        describe_command(&mut roff, &format!("ds01ctl {}", sub.get_name()), sub);
    }
    definitions(&mut roff, "EXIT STATUS", &EXIT_STATUS);
    environment(&mut roff, &command);
    definitions(&mut roff, "FILES", &FILES);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("ds01-controller"),
        roman("(8), "),
        bold("systemctl"),
        roman("(1); /usr/share/doc/ds01-controller/ (specs.md, operations.md)"),
    ]);
    roff.to_writer(&mut out)?;
    page.render_version_section(&mut out)?;
    let page = String::from_utf8(out).map_err(std::io::Error::other)?;
    Ok(without_repeated_preamble(&page))
}

/// Each section rendered on its own starts with the same string definition (`.ds Aq`); once
/// is enough.
fn without_repeated_preamble(page: &str) -> String {
    let mut seen = Vec::new();
    let mut text = String::with_capacity(page.len());
    for line in page.lines() {
        let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if preamble {
            if seen.contains(&line) {
                continue;
            }
            seen.push(line);
        }
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// `.SS` with the command's usage, what it does, its options, then its own subcommands.
fn describe_command(roff: &mut Roff, path: &str, command: &Command) {
    roff.control("SS", [path]);
    let usage = command
        .clone()
        .bin_name(path)
        .render_usage()
        .to_string()
        .trim_start_matches("Usage:")
        .trim()
        .to_owned();
    roff.text([bold(usage)]);
    if let Some(about) = command.get_long_about().or_else(|| command.get_about()) {
        roff.control("PP", []);
        roff.text([roman(about.to_string())]);
    }
    for argument in command
        .get_arguments()
        .filter(|argument| !argument.is_hide_set())
    {
        roff.control("TP", []);
        roff.text(term(argument));
        roff.text([roman(explanation(argument))]);
    }
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        describe_command(roff, &format!("{path} {}", sub.get_name()), sub);
    }
}

/// `-f, --filename <PATHS>` or `<KIND>`.
fn term(argument: &Arg) -> Vec<Inline> {
    let value = argument
        .get_value_names()
        .and_then(|names| names.first())
        .map_or_else(
            || argument.get_id().as_str().to_uppercase(),
            ToString::to_string,
        );
    let mut inlines = Vec::new();
    if let Some(short) = argument.get_short() {
        inlines.push(bold(format!("-{short}")));
        inlines.push(roman(if argument.get_long().is_some() {
            ", "
        } else {
            ""
        }));
    }
    if let Some(long) = argument.get_long() {
        inlines.push(bold(format!("--{long}")));
    }
    let takes_value = argument.get_action().takes_values();
    if argument.is_positional() {
        inlines.push(italic(value));
    } else if takes_value {
        inlines.push(roman(" "));
        inlines.push(italic(value));
    }
    inlines
}

/// The argument's help with its possible values, default and variable.
fn explanation(argument: &Arg) -> String {
    let mut sentences: Vec<String> = Vec::new();
    if let Some(help) = argument.get_long_help().or_else(|| argument.get_help()) {
        sentences.push(help.to_string());
    }
    if argument.get_action().takes_values() {
        let possible: Vec<String> = argument
            .get_possible_values()
            .iter()
            .filter(|value| !value.is_hide_set())
            .map(|value| value.get_name().to_owned())
            .collect();
        if !possible.is_empty() {
            sentences.push(format!("One of: {}", possible.join(", ")));
        }
        let defaults: Vec<String> = argument
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() {
            sentences.push(format!("Default: {}", defaults.join(" ")));
        }
    }
    if let Some(variable) = argument.get_env() {
        sentences.push(format!("Variable: {}", variable.to_string_lossy()));
    }
    sentences
        .iter()
        .map(|text| sentence(text))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` ending in a full stop.
fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.ends_with('.') {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

fn definitions(roff: &mut Roff, heading: &str, entries: &[(&str, &str)]) {
    roff.control("SH", [heading]);
    for (term, meaning) in entries {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*meaning)]);
    }
}

/// Every variable a flag reads, and `NO_COLOR`.
fn environment(roff: &mut Roff, command: &Command) {
    let mut variables: Vec<(String, String)> = Vec::new();
    collect_variables(command, &mut variables);
    variables.push((
        "NO_COLOR".to_owned(),
        "When set and not empty, messages are never coloured.".to_owned(),
    ));
    roff.control("SH", ["ENVIRONMENT"]);
    for (variable, meaning) in variables {
        roff.control("TP", []);
        roff.text([bold(variable)]);
        roff.text([roman(meaning)]);
    }
}

fn collect_variables(command: &Command, variables: &mut Vec<(String, String)>) {
    for argument in command.get_arguments() {
        if let (Some(variable), Some(long)) = (argument.get_env(), argument.get_long()) {
            let variable = variable.to_string_lossy().into_owned();
            if !variables.iter().any(|(known, _)| *known == variable) {
                let help = argument
                    .get_help()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                variables.push((variable, format!("{} Same as --{long}.", sentence(&help))));
            }
        }
    }
    for sub in command.get_subcommands() {
        collect_variables(sub, variables);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_a_proper_name_line_date_and_the_sections_clap_lacks() {
        let page = render().expect("render");
        let title = page
            .lines()
            .find(|line| line.starts_with(".TH "))
            .expect("a title line");
        assert!(title.starts_with(".TH ds01ctl 1 "), "{title}");
        assert!(
            page.contains(".SH NAME\nds01ctl \\- submit desired state"),
            "{page}"
        );
        for section in [
            ".SH SYNOPSIS",
            ".SH COMMANDS",
            ".SS \"ds01ctl apply\"",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(page.contains(section), "{section} missing:\n{page}");
        }
        assert!(page.contains("DS01_SOCKET"), "{page}");
        assert_eq!(page.matches(".ds Aq").count(), 2, "one preamble");
        assert!(
            !page.contains("ds01ctl\\-apply(1)"),
            "no pages per command exist"
        );
    }
}
