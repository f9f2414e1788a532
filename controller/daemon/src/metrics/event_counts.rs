//! How a recorded event counts into the action families (counters of what was done come from
//! the events: one source of truth).

use ds01_spec::EventType;
use serde_json::Value;

use super::{
    families::Metrics,
    labels::{ActionLabels, ContainerLabel, ControllerLabel, EventLabel, ResultLabel},
};

impl Metrics {
    /// Counts one recorded event into the action families.
    pub fn on_event(&self, event_type: EventType, details: &Value) {
        self.events
            .get_or_create(&EventLabel {
                event_type: event_type.as_str().to_owned(),
            })
            .inc();
        if details.get("dry_run") == Some(&Value::Bool(true)) {
            return;
        }
        let text = |key: &str| details.get(key).and_then(Value::as_str).unwrap_or("");
        let container = || ContainerLabel {
            container: text("container").to_owned(),
        };
        match event_type {
            EventType::OrphanDetected => {
                self.orphans_detected.inc();
            }
            EventType::OrphanTerminated | EventType::OrphanKilled => {
                self.orphans_killed.inc();
            }
            EventType::OrphanUnkillable => {
                self.orphans_unkillable.inc();
            }
            EventType::Reset | EventType::ResetFailed | EventType::ResetSkipped => {
                let result = match event_type {
                    EventType::Reset => "ok",
                    EventType::ResetFailed => "failed",
                    _ => "skipped",
                };
                self.resets
                    .get_or_create(&ResultLabel {
                        result: result.to_owned(),
                    })
                    .inc();
            }
            EventType::DcgmCreated | EventType::DcgmRestarted => {
                self.dcgm_restarts.get_or_create(&container()).inc();
            }
            EventType::DcgmCrashloop => {
                self.dcgm_crashloops.get_or_create(&container()).inc();
            }
            _ => {}
        }
        if let Some(action) = event_type.as_str().strip_prefix("lifecycle.") {
            let reason = match text("reason") {
                "" => action.split('_').next().unwrap_or(action),
                reason => reason,
            };
            self.lifecycle_actions
                .get_or_create(&ActionLabels {
                    action: action.to_owned(),
                    reason: reason.to_owned(),
                })
                .inc();
        }
        // A stop's event is written once its grace period is over: measure to `issued_at`.
        if matches!(event_type, EventType::IdleStop | EventType::RuntimeStop) {
            let time = |key: &str| {
                details
                    .get(key)
                    .and_then(Value::as_str)
                    .and_then(|text| text.parse::<jiff::Timestamp>().ok())
            };
            if let (Some(deadline), Some(issued)) = (time("deadline"), time("issued_at")) {
                self.event_to_action
                    .get_or_create(&ControllerLabel {
                        controller: "container-lifecycle".to_owned(),
                    })
                    .observe(issued.duration_since(deadline).as_secs_f64().max(0.0));
            }
        }
    }
}
