//! Which format each scraper gets, and the 0.0.4 text derived from OpenMetrics.

use super::*;

#[test]
fn each_scraper_gets_the_format_it_ranks_highest() {
    let cases = [
        // Prometheus 2.x (OpenMetrics negotiation on by default).
        (
            Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            ),
            Format::OpenMetrics,
        ),
        // Prometheus 3.x defaults.
        (
            Some(
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,application/openmetrics-text;version=0.0.1;q=0.9,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.8,text/plain;version=0.0.4;q=0.7,*/*;q=0.6",
            ),
            Format::OpenMetrics,
        ),
        // Prometheus with scrape_protocols: [PrometheusText0.0.4].
        (
            Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::PrometheusText,
        ),
        // curl, browsers, nothing at all.
        (Some("*/*"), Format::PrometheusText),
        (
            Some("text/html,application/xhtml+xml,*/*;q=0.8"),
            Format::PrometheusText,
        ),
        (None, Format::PrometheusText),
        (Some(""), Format::PrometheusText),
        // Explicit OpenMetrics without a version, and one refusing the text format.
        (Some("application/openmetrics-text"), Format::OpenMetrics),
        (
            Some("text/plain;q=0, application/*;q=0.2"),
            Format::OpenMetrics,
        ),
        // A version we do not write does not match; nothing matches: text.
        (
            Some("application/openmetrics-text;version=2.0.0"),
            Format::PrometheusText,
        ),
        (Some("application/json"), Format::PrometheusText),
        // Garbage is ignored, not fatal.
        (Some("text/plain;q=abc, ;;,/,"), Format::PrometheusText),
    ];
    for (accept, expected) in cases {
        assert_eq!(Format::negotiate(accept), expected, "Accept: {accept:?}");
    }
}

#[test]
fn the_text_format_names_counter_families_after_their_samples_and_has_no_eof() {
    let open_metrics = "# HELP ds01_reconciles Reconciles \\\"finished\\\".\n# TYPE ds01_reconciles counter\nds01_reconciles_total{controller=\"a\"} 3\nds01_reconciles_created{controller=\"a\"} 1.7e9\n# HELP ds01_gpus GPUs.\n# TYPE ds01_gpus gauge\n# UNIT ds01_gpus gpus\nds01_gpus 2\n# HELP ds01_thing A thing.\n# TYPE ds01_thing unknown\nds01_thing 1\n# EOF\n";
    assert_eq!(
        prometheus_text(open_metrics),
        "# HELP ds01_reconciles_total Reconciles \"finished\".\n# TYPE ds01_reconciles_total counter\nds01_reconciles_total{controller=\"a\"} 3\n# HELP ds01_gpus GPUs.\n# TYPE ds01_gpus gauge\nds01_gpus 2\n# HELP ds01_thing A thing.\n# TYPE ds01_thing untyped\nds01_thing 1\n"
    );
    assert_eq!(
        Format::OpenMetrics.render(open_metrics.to_owned()),
        open_metrics
    );
}
