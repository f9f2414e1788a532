//! The two exposition formats a scraper may ask for (`Accept`): OpenMetrics 1.0.0, which the
//! registry writes, and the Prometheus text format 0.0.4, derived from it.

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0` (counter families named without
    /// `_total`, `# EOF` at the end).
    OpenMetrics,
    /// `text/plain; version=0.0.4`: what a client gets that asks for it, for anything, or for
    /// nothing we serve.
    PrometheusText,
}

/// One media range of an `Accept` header.
struct Range<'a> {
    kind: &'a str,
    subtype: &'a str,
    version: Option<&'a str>,
    quality: f32,
}

fn parse_range(text: &str) -> Option<Range<'_>> {
    let mut parts = text.split(';').map(str::trim);
    let (kind, subtype) = parts.next()?.split_once('/')?;
    let mut range = Range {
        kind: kind.trim(),
        subtype: subtype.trim(),
        version: None,
        quality: 1.0,
    };
    for parameter in parts {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "q" => range.quality = value.parse().ok().filter(|q: &f32| q.is_finite())?,
            "version" => range.version = Some(value),
            _ => {}
        }
    }
    Some(range)
}

impl Format {
    const ALL: [Format; 2] = [Format::PrometheusText, Format::OpenMetrics];

    fn media_type(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Format::OpenMetrics => ("application", "openmetrics-text", "1.0.0"),
            Format::PrometheusText => ("text", "plain", "0.0.4"),
        }
    }

    /// How well `range` names this format: `None` when it does not, else its specificity
    /// (0 `*/*`, 1 `type/*`, 2 the exact type).
    fn matched_by(self, range: &Range<'_>) -> Option<u8> {
        let (kind, subtype, version) = self.media_type();
        if range.version.is_some_and(|asked| asked != version) {
            return None;
        }
        match (range.kind, range.subtype) {
            ("*", "*") => Some(0),
            (asked, "*") if asked.eq_ignore_ascii_case(kind) => Some(1),
            (asked_kind, asked_subtype)
                if asked_kind.eq_ignore_ascii_case(kind)
                    && asked_subtype.eq_ignore_ascii_case(subtype) =>
            {
                Some(2)
            }
            _ => None,
        }
    }

    /// The format that `accept` ranks highest (by `q`, then by how exactly a range names it;
    /// the text format on a tie); the text format when it names neither.
    #[must_use]
    pub fn negotiate(accept: Option<&str>) -> Format {
        let ranges: Vec<Range<'_>> = accept
            .unwrap_or_default()
            .split(',')
            .filter_map(parse_range)
            .collect();
        let mut best: Option<(f32, u8, Format)> = None;
        for format in Format::ALL {
            // The most specific range naming a format sets its quality (RFC 9110 §12.5.1).
            let Some((quality, specificity)) = ranges
                .iter()
                .filter_map(|range| format.matched_by(range).map(|found| (range, found)))
                .max_by_key(|(_, specificity)| *specificity)
                .map(|(range, specificity)| (range.quality, specificity))
            else {
                continue;
            };
            if quality <= 0.0 {
                continue;
            }
            let better = best.is_none_or(|(best_quality, best_specificity, _)| {
                quality > best_quality
                    || (quality == best_quality && specificity > best_specificity)
            });
            if better {
                best = Some((quality, specificity, format));
            }
        }
        best.map_or(Format::PrometheusText, |(_, _, format)| format)
    }

    /// The `Content-Type` of a response in this format.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// `open_metrics` (the registry's text) in this format.
    #[must_use]
    pub fn render(self, open_metrics: String) -> String {
        match self {
            Format::OpenMetrics => open_metrics,
            Format::PrometheusText => prometheus_text(&open_metrics),
        }
    }
}

/// The 0.0.4 text format of an OpenMetrics text: a counter's `# HELP`/`# TYPE` name its
/// samples (`…_total`), `_created` samples, `# UNIT` and `# EOF` go, and types 0.0.4 lacks
/// become `untyped`.
#[must_use]
pub fn prometheus_text(open_metrics: &str) -> String {
    let counters: Vec<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let is_counter = |name: &str| counters.contains(&name);
    let mut text = String::with_capacity(open_metrics.len() + counters.len() * 12);
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffix = if is_counter(name) { "_total" } else { "" };
            // 0.0.4 escapes only `\\` and `\n` in help text.
            let help = help.replace("\\\"", "\"");
            text.push_str(&format!("# HELP {name}{suffix} {help}\n"));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                _ => (name.to_owned(), "untyped"),
            };
            text.push_str(&format!("# TYPE {name} {kind}\n"));
        } else if !line.starts_with('#') && is_created_sample(line, &is_counter) {
            continue;
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

fn is_created_sample(line: &str, is_counter: &impl Fn(&str) -> bool) -> bool {
    let name = line.split(['{', ' ']).next().unwrap_or_default();
    name.strip_suffix("_created").is_some_and(is_counter)
}

#[cfg(test)]
#[path = "exposition_tests.rs"]
mod tests;
