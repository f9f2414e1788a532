//! The event types of the event log (DESIGN §4), shared by the controller that writes them,
//! its metrics, and `ds01ctl` that reads them.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! event_types {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )+) => {
        /// One type of event, written as `event_type` in the log (`detection.container_discovered`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $( $(#[$doc])* $variant, )+
        }

        impl EventType {
            /// Every event type, in the order DESIGN §4 lists them (additions at the end of
            /// their family).
            pub const ALL: &'static [EventType] = &[ $( EventType::$variant, )+ ];

            /// The name written in the log.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( EventType::$variant => $name, )+
                }
            }
        }
    };
}

event_types! {
    /// A container was seen for the first time.
    ContainerDiscovered => "detection.container_discovered",
    /// A container's state changed.
    ContainerStatusChanged => "detection.container_status_changed",
    /// A container was removed.
    ContainerRemoved => "detection.container_removed",
    /// A GPU process outside containers was seen in two observations.
    HostGpuProcessDiscovered => "detection.host_gpu_process_discovered",
    /// That host GPU process exited.
    HostGpuProcessExited => "detection.host_gpu_process_exited",
    /// An owner label is contradicted by kernel evidence.
    OwnerConflict => "detection.owner_conflict",
    /// The exporter container was created.
    DcgmCreated => "dcgm.created",
    /// The exporter container was restarted.
    DcgmRestarted => "dcgm.restarted",
    /// The exporter failed its health check.
    DcgmUnhealthy => "dcgm.unhealthy",
    /// The exporter restarts too often.
    DcgmCrashloop => "dcgm.crashloop",
    /// The exporter is healthy again.
    DcgmRecovered => "dcgm.recovered",
    /// A same-named container the controller did not create was replaced (`replaceExisting`).
    DcgmReplaced => "dcgm.replaced",
    /// An action on the exporter failed; `details.error` is Docker's error verbatim (each
    /// distinct error once).
    DcgmFailed => "dcgm.failed",
    /// A GPU process became an orphan.
    OrphanDetected => "gpu.orphan_detected",
    /// An orphan was sent SIGTERM.
    OrphanTerminated => "gpu.orphan_terminated",
    /// An orphan was sent SIGKILL.
    OrphanKilled => "gpu.orphan_killed",
    /// An orphan survived SIGKILL.
    OrphanUnkillable => "gpu.orphan_unkillable",
    /// A GPU was reset.
    Reset => "gpu.reset",
    /// A GPU reset failed.
    ResetFailed => "gpu.reset_failed",
    /// A GPU reset was not done, and why.
    ResetSkipped => "gpu.reset_skipped",
    /// A GPU process whose cgroup names no container this engine knows: never signalled.
    UnknownProcess => "gpu.unknown_process",
    /// An idle warning.
    IdleWarning => "lifecycle.idle_warning",
    /// An idle stop.
    IdleStop => "lifecycle.idle_stop",
    /// A runtime warning.
    RuntimeWarning => "lifecycle.runtime_warning",
    /// A runtime stop.
    RuntimeStop => "lifecycle.runtime_stop",
    /// An exempt user's container was left alone.
    Exempt => "lifecycle.exempt",
    /// An exempt owner was told, once per idle episode or run, that the lifted limit was reached.
    ExemptNotice => "lifecycle.exempt_notice",
    /// A stopped or never-started container was removed.
    Removed => "lifecycle.removed",
    /// An admin stopped a container with `ds01ctl stop`.
    ManualStop => "lifecycle.manual_stop",
    /// A spec set was applied.
    SpecApplied => "spec.applied",
    /// A spec set was rejected.
    SpecRejected => "spec.rejected",
    /// A spec was deleted.
    SpecDeleted => "spec.deleted",
    /// The controller started.
    ControllerStarted => "controller.started",
    /// The controller is stopping.
    ControllerStopping => "controller.stopping",
    /// The controller's state file could not be read and was kept aside.
    StateUnreadable => "controller.state_unreadable",
    /// Docker could not be reached.
    DockerDisconnected => "docker.disconnected",
    /// Docker can be reached again.
    DockerReconnected => "docker.reconnected",
}

impl EventType {
    /// The family: `detection`, `dcgm`, `gpu`, `lifecycle`, `spec`, `controller`, `docker`.
    #[must_use]
    pub fn family(self) -> &'static str {
        self.as_str()
            .split_once('.')
            .map_or(self.as_str(), |(family, _)| family)
    }
}

impl PartialEq<&str> for EventType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A name that is not an event type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .iter()
            .copied()
            .find(|event| event.as_str() == text)
            .ok_or_else(|| UnknownEventType(text.to_owned()))
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_family_dot_snake_case_unique_and_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for event in EventType::ALL {
            let name = event.as_str();
            assert!(seen.insert(name), "{name} twice");
            let (family, rest) = name.split_once('.').expect("family.name");
            assert!(
                [
                    "detection",
                    "dcgm",
                    "gpu",
                    "lifecycle",
                    "spec",
                    "controller",
                    "docker"
                ]
                .contains(&family),
                "{name}"
            );
            assert!(
                rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(name.parse::<EventType>(), Ok(*event));
            assert_eq!(event.family(), family);
        }
        assert!("lifecycle.nothing".parse::<EventType>().is_err());
    }

    #[test]
    fn design_section_4_names_are_all_present() {
        let design = "detection.container_discovered detection.container_status_changed detection.container_removed detection.host_gpu_process_discovered detection.host_gpu_process_exited dcgm.created dcgm.restarted dcgm.unhealthy dcgm.crashloop dcgm.recovered gpu.orphan_detected gpu.orphan_terminated gpu.orphan_killed gpu.orphan_unkillable gpu.reset gpu.reset_failed gpu.reset_skipped lifecycle.idle_warning lifecycle.idle_stop lifecycle.runtime_warning lifecycle.runtime_stop lifecycle.exempt lifecycle.removed spec.applied spec.rejected spec.deleted controller.started controller.stopping docker.disconnected docker.reconnected";
        for name in design.split_whitespace() {
            assert!(name.parse::<EventType>().is_ok(), "{name} missing");
        }
    }

    #[test]
    fn serializes_as_its_name() {
        assert_eq!(
            serde_json::to_string(&EventType::IdleStop).expect("serialize"),
            "\"lifecycle.idle_stop\""
        );
        assert_eq!(
            serde_json::from_str::<EventType>("\"gpu.reset\"").expect("parse"),
            EventType::Reset
        );
    }
}
