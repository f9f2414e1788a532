//! ds01 specs: the three kinds of desired state, read from YAML with exact error locations,
//! validated all-or-nothing, described by JSON Schema, and the lifecycle limits resolver.

pub mod api;
pub mod diagnostic;
pub mod duration;
pub mod events;
pub mod kinds;
pub mod limits_view;
pub mod locations;
pub mod names;
mod newtype;
pub mod parse;
pub mod quantity;
pub mod resolve;
pub mod schema;
pub mod selectors;
pub mod sources;
pub mod validate;
pub mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics, LoadError};
pub use duration::Duration;
pub use events::EventType;
pub use kinds::{
    dcgm::{DcgmExporterSpec, HealthSpec, NetworkAttachment, PullPolicy, RestartSpec},
    envelope::{API_VERSION, Kind, Metadata, Resource, SpecBody},
    lifecycle::{
        ContainerLifecyclePolicySpec, ExemptFrom, Exemption, HighDemandSpec, KeepAliveSpec,
        NotifySpec, Scope,
    },
    limits::{GroupSpec, IdleThresholds, LimitsBlock, OnIdle, WarnAt, WarnBefore},
    orphan::{GpuOrphanPolicySpec, HostProcessAction, PolicyMode, ResetSpec, TerminateSpec},
    resolution::{ContainerTypePrecedence, NameMatching, UserOverrides},
};
pub use parse::{ParsedResource, Source, parse_source, parse_sources};
pub use quantity::{ByteSize, Percent};
pub use selectors::{CommandTemplate, GpuSelection, LabelSelector, Volume};
pub use sources::read_sources;
