//! Whether the GPU backend still answers: the controller condition `GpuBackendResponsive`,
//! from the age of the last NVML poll (a hung driver blocks the poll thread, so nothing else
//! would say so). While it is `False`, GPU signals read as unknown and the orphan policy
//! decides nothing.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{controllers::status::StatusBoard, inventory::SharedInventory};

/// The condition for a backend last polled at `last_poll`, polled every `interval`.
#[must_use]
pub fn condition(
    backend: &str,
    last_poll: Option<jiff::Timestamp>,
    interval: Duration,
    now: jiff::Timestamp,
) -> (&'static str, &'static str, String) {
    if backend != "nvml" {
        return ("True", "NoBackend", String::new());
    }
    let age = last_poll.map(|polled| now.duration_since(polled).as_secs_f64());
    match age {
        Some(age) if age <= (interval * 2).as_secs_f64() => ("True", "Polling", String::new()),
        Some(age) => (
            "False",
            "Unresponsive",
            format!(
                "the last NVML poll finished {age:.0} s ago (polls are every {} s): GPU signals are unknown and no orphan or reset is decided until it answers",
                interval.as_secs()
            ),
        ),
        None => (
            "False",
            "NotPolledYet",
            "NVML has not answered a poll yet".to_owned(),
        ),
    }
}

/// Sets the condition every poll interval until shutdown.
pub async fn report_gpu_backend(
    inventory: SharedInventory,
    board: StatusBoard,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(200)));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let (backend, last_poll) = {
            let inventory = inventory
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (inventory.gpu.backend.clone(), inventory.gpu.last_poll)
        };
        let (status, reason, message) =
            condition(&backend, last_poll, interval, jiff::Timestamp::now());
        board.set_controller_condition("GpuBackendResponsive", status, reason, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_older_than_two_intervals_is_an_unresponsive_backend() {
        let now = jiff::Timestamp::from_second(1_800_000_000).expect("time");
        let interval = Duration::from_secs(5);
        let ago = |seconds| Some(now - jiff::SignedDuration::from_secs(seconds));
        assert_eq!(condition("nvml", ago(3), interval, now).0, "True");
        let hung = condition("nvml", ago(30), interval, now);
        assert_eq!((hung.0, hung.1), ("False", "Unresponsive"));
        assert!(hung.2.contains("30 s ago"), "{}", hung.2);
        assert_eq!(condition("nvml", None, interval, now).1, "NotPolledYet");
        assert_eq!(condition("none", None, interval, now).0, "True");
    }
}
