//! ContainerLifecyclePolicy: "containers must respect idle and runtime limits".
//!
//! `pass` plans a whole pass (pure), `plan`/`running` decide one container, `executor` observes
//! and performs, `act`/`stop` carry out steps, `notify`/`messages` reach the owner, `ledger`
//! keeps stops recorded across crashes, `preview` and `view` show the same plan.

pub mod act;
pub mod executor;
pub mod ledger;
pub mod members;
pub mod memory;
pub mod messages;
pub mod mig_activity;
pub mod notify;
pub mod observe;
pub mod pass;
pub mod plan;
pub mod preview;
mod running;
pub mod signals;
pub mod stop;
pub mod view;

#[cfg(test)]
mod properties_tests;

#[cfg(test)]
mod act_tests;
