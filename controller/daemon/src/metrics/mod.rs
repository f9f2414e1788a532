//! Prometheus metrics on `--metrics-addr` (OpenMetrics 1.0.0 or the 0.0.4 text format, as the
//! scraper asks): the families of DESIGN.md §4.
//!
//! Counters of actions come from the events the controllers record (one source of truth for
//! "what was done"); reconcile counts and durations come from the runtime's observer hook;
//! gauges (containers, GPU processes, queue depth, Docker, spec generations) are read from
//! the live state on every scrape.

mod admission;
mod event_counts;
mod exposition;
mod families;
mod labels;
mod refresh;
mod serve;

pub use families::Metrics;
pub use refresh::Sources;
pub use serve::serve;
