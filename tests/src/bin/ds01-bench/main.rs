//! `ds01-bench`: measures the controller against the targets of DESIGN §8 on the local engine,
//! side by side with a baseline that scans the way the incumbent does.
//!
//! - `detection-latency [--containers N] [--burst N] [--bursts N]`: Docker's `create` event to
//!   the controller's `detection.container_discovered`, steady and in bursts; p50/p99/max, next
//!   to Docker's own delivery of the event to a subscriber (the floor).
//! - `dcgm-restart [--kills N]`: `docker kill` of a healthy exporter to running again.
//! - `deadline [--containers N]`: runtime-limit stops, issue time minus deadline.
//! - `cold [--containers N] [--running N]`: `ds01-controller --once --dry-run` against one
//!   baseline scan (`tests/bench/incumbent_scan.py`): wall, CPU, peak RSS, ratios.
//! - `steady [--containers N] [--running N] [--minutes M]`: the daemon with a 60 s sample
//!   interval against the baseline run every 30 s; CPU per hour and RSS, ratios.
//! - `measure -- COMMAND…` (internal): runs COMMAND and prints its wall, CPU and peak RSS.

mod deadline;
mod latency;
mod resources;

fn argument(name: &str, default: usize) -> usize {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|arg| arg == name)
        .and_then(|index| arguments.get(index + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "small sample counts"
    )]
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let command = std::env::args().nth(1).unwrap_or_default();
    match command.as_str() {
        "detection-latency" => {
            latency::detection_latency(
                argument("--containers", 300),
                argument("--burst", 100),
                argument("--bursts", 3),
            )
            .await;
        }
        "dcgm-restart" => latency::dcgm_restart(argument("--kills", 20)).await,
        "deadline" => deadline::deadline_accuracy(argument("--containers", 20)).await,
        "cold" => {
            resources::cold(argument("--containers", 200), argument("--running", 20)).await;
        }
        "steady" => {
            resources::steady(
                argument("--containers", 1000),
                argument("--running", 100),
                argument("--minutes", 10),
            )
            .await;
        }
        "measure" => resources::measure_child(),
        _ => eprintln!(
            "usage: ds01-bench detection-latency [--containers N] [--burst N] [--bursts N] | dcgm-restart [--kills N] | deadline [--containers N] | cold [--containers N] [--running N] | steady [--containers N] [--running N] [--minutes M]"
        ),
    }
}
