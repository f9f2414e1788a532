//! ContainerLifecyclePolicy: "containers must respect idle and runtime limits".

pub mod act;
pub mod executor;
pub mod ledger;
pub mod mig_activity;
pub mod notify;
pub mod plan;
pub mod preview;
pub mod signals;
