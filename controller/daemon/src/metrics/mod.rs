//! Prometheus metrics (OpenMetrics text on `--metrics-addr`): the families of DESIGN.md §4.
//!
//! Counters of actions come from the events the controllers record (one source of truth for
//! "what was done"); reconcile counts and durations come from the runtime's observer hook;
//! gauges (containers, GPU processes, queue depth, Docker, spec generations) are read from
//! the live state on every scrape.

mod families;
mod refresh;
mod serve;

pub use families::Metrics;
pub use refresh::Sources;
pub use serve::serve;
