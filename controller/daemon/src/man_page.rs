//! `ds01-controller --man`: the manual page ds01-controller(8) in roff, generated from the flag
//! definitions (so it never lags behind them) plus SIGNALS, EXIT STATUS, ENVIRONMENT, FILES and
//! SEE ALSO. Dated `SOURCE_DATE_EPOCH` when set (packaging sets it to the release's changelog
//! date), else today.

use clap::CommandFactory;
use clap_mangen::Man;
use roff::{Roff, bold, roman};

use crate::config::Flags;

const SUMMARY: &str = "keep a shared GPU server in the state its specs describe";

const DESCRIPTION: &str = "\
ds01-controller runs as root under systemd on a GPU server shared by many users. Admins state \
what must hold as YAML specs (kinds DcgmExporter, GpuOrphanPolicy, ContainerLifecyclePolicy); \
the controller watches Docker's events and NVML and acts: it keeps the DCGM exporter container \
running, terminates GPU processes whose container is gone and resets freed GPUs, and warns, \
stops and removes containers past their idle and runtime limits, at the exact deadline. Every \
decision is recorded in the event log; with mode: dryRun in a spec (or --dry-run for all) it \
decides and records but changes nothing.

ds01ctl(1) submits specs and shows what the controller sees and did through the control socket. \
Prometheus metrics are served on --metrics-addr.";

const SIGNALS: [(&str, &str); 2] = [
    (
        "SIGHUP",
        "Re-apply the --specs directory (an invalid set is rejected whole and the applied specs stay) and reopen the event log (logrotate).",
    ),
    (
        "SIGTERM, SIGINT",
        "Finish what is in flight (up to 20 seconds), record controller.stopping, exit 0.",
    ),
];

const EXIT_STATUS: [(&str, &str); 3] = [
    ("0", "Stopped by SIGTERM or SIGINT, or --once finished."),
    (
        "2",
        "An unexpected failure at run time (the reason is logged).",
    ),
    (
        "64",
        "A wrong flag, an invalid --specs directory (file, line and column are printed) or an unusable --docker-host.",
    ),
];

const MORE_VARIABLES: [(&str, &str); 5] = [
    (
        "DS01_LOG",
        "Log filter in tracing's EnvFilter syntax. Default: info.",
    ),
    (
        "NO_COLOR",
        "When set and not empty, log lines are never coloured.",
    ),
    (
        "DOCKER_HOST",
        "The Docker engine when neither --docker-host nor DS01_DOCKER_HOST is given.",
    ),
    (
        "NOTIFY_SOCKET",
        "Set by systemd (Type=notify): READY=1 after the first full observation, RELOADING=1 around SIGHUP, STOPPING=1.",
    ),
    (
        "WATCHDOG_USEC",
        "Set by systemd (WatchdogSec=): watchdog pings, sent only while every controller loop turns.",
    ),
];

const FILES: [(&str, &str); 6] = [
    (
        "/etc/ds01/specs/",
        "The specs applied at start and on SIGHUP (--specs in the unit).",
    ),
    (
        "/etc/default/ds01-controller",
        "DS01_* variables and DS01_CONTROLLER_ARGS for the systemd unit.",
    ),
    (
        "/var/lib/ds01/",
        "Applied specs (specs/), timers and warnings (controller-state.json), the inventory (workload-inventory.json).",
    ),
    (
        "/var/log/ds01/events.jsonl",
        "The event log, one JSON object per line.",
    ),
    (
        "/run/ds01/controller.sock",
        "The control socket (mode 0666; who may change what is decided by the peer's credentials).",
    ),
    (
        "/usr/share/doc/ds01-controller/",
        "The operations guide and the spec reference.",
    ),
];

/// The date printed in the page's footer: `SOURCE_DATE_EPOCH` (reproducible builds), else today.
fn page_date() -> String {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|seconds| seconds.trim().parse::<i64>().ok())
        .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
        .unwrap_or_else(jiff::Timestamp::now)
        .strftime("%Y-%m-%d")
        .to_string()
}

/// The manual page.
///
/// # Errors
/// When rendering fails (it writes to memory, so only on a bug).
pub fn render() -> std::io::Result<String> {
    let command = Flags::command().about(SUMMARY).long_about(DESCRIPTION);
    let page = Man::new(command.clone())
        .section("8")
        .date(page_date())
        .source(format!("ds01-controller {}", env!("CARGO_PKG_VERSION")))
        .manual("ds01 manual");
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    let mut roff = Roff::new();
    definitions(&mut roff, "SIGNALS", &SIGNALS);
    definitions(&mut roff, "EXIT STATUS", &EXIT_STATUS);
    let mut variables: Vec<(String, String)> = command
        .get_arguments()
        .filter_map(|argument| {
            let variable = argument.get_env()?.to_string_lossy().into_owned();
            let long = argument.get_long()?;
            Some((variable, format!("Same as --{long}.")))
        })
        .collect();
    variables.extend(
        MORE_VARIABLES
            .iter()
            .map(|(variable, meaning)| ((*variable).to_owned(), (*meaning).to_owned())),
    );
    roff.control("SH", ["ENVIRONMENT"]);
    for (variable, meaning) in &variables {
        roff.control("TP", []);
        roff.text([bold(variable.as_str())]);
        roff.text([roman(meaning.as_str())]);
    }
    definitions(&mut roff, "FILES", &FILES);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("ds01ctl"),
        roman("(1), "),
        bold("systemd.service"),
        roman("(5), "),
        bold("tmpfiles.d"),
        roman("(5)"),
    ]);
    roff.to_writer(&mut out)?;
    page.render_version_section(&mut out)?;
    let page = String::from_utf8(out).map_err(std::io::Error::other)?;
    Ok(without_repeated_preamble(&page))
}

fn definitions(roff: &mut Roff, heading: &str, entries: &[(&str, &str)]) {
    roff.control("SH", [heading]);
    for (term, meaning) in entries {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*meaning)]);
    }
}

/// Each section rendered on its own starts with the same string definition (`.ds Aq`); once
/// is enough.
fn without_repeated_preamble(page: &str) -> String {
    let mut seen = Vec::new();
    let mut text = String::with_capacity(page.len());
    for line in page.lines() {
        if line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq") {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_section_8_with_the_sections_an_admin_looks_for() {
        let page = render().expect("render");
        assert!(
            page.contains(".TH ds01-controller 8 "),
            "{}",
            page.lines().take(5).collect::<Vec<_>>().join("\n")
        );
        assert!(page.contains(".SH NAME\nds01\\-controller \\- keep a shared GPU server"));
        for section in [
            ".SH OPTIONS",
            ".SH SIGNALS",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            "DS01_METRICS_ADDR",
        ] {
            assert!(page.contains(section), "{section} missing:\n{page}");
        }
        assert!(
            !page.contains("\\-\\-man"),
            "the packaging flag stays out of the page"
        );
    }
}
