//! ContainerLifecyclePolicy: "containers must respect idle and runtime limits".

pub mod plan;
