//! The systemd notify protocol: READY once the first observation and the specs are in,
//! RELOADING/READY around SIGHUP, STOPPING on shutdown, and WATCHDOG pings sent only while
//! every registered controller loop is alive. Without `NOTIFY_SOCKET` every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::health::Loops;

/// The shortest staleness accepted before a loop counts as stuck (loops beat every second).
const MIN_STALE_AFTER: Duration = Duration::from_secs(3);

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify the service manager");
    }
}

/// Start-up is complete.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload (SIGHUP) begins; call [`ready`] when it is done.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Shutdown begins.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("draining")]);
}

/// Pings the watchdog at half its timeout while every loop in `loops` is alive; returns at
/// once when the service manager asked for no watchdog.
pub async fn watchdog(loops: Loops, shutdown: CancellationToken) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = timeout / 2;
    let stale_after = period.max(MIN_STALE_AFTER);
    tracing::info!(?timeout, "systemd watchdog enabled");
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let stale = loops.stale(stale_after);
        if stale.is_empty() {
            send(&[NotifyState::Watchdog]);
            reported = false;
        } else if !reported {
            tracing::error!(loops = ?stale, "controller loops are stuck; withholding watchdog pings");
            reported = true;
        }
    }
}
