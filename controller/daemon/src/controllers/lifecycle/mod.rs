//! ContainerLifecyclePolicy: "containers must respect idle and runtime limits".

pub mod executor;
pub mod notify;
pub mod plan;
pub mod preview;
pub mod signals;
