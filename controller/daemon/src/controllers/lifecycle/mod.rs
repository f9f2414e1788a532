//! ContainerLifecyclePolicy: "containers must respect idle and runtime limits".
//!
//! `pass` plans a whole pass (pure), `plan`/`running` decide one container, `executor` observes
//! and performs, `act`/`stop` carry out steps, `notify`/`messages` reach the owner, `ledger`
//! keeps stops recorded across crashes, `preview` and `view` show the same plan, `manual` is
//! `ds01ctl stop`, `notice_store` keeps notices for `ds01ctl notices`.

pub mod act;
pub mod context;
pub mod decision;
mod dry_run_once;
pub mod executor;
pub mod ledger;
pub mod manual;
pub mod members;
pub mod memory;
pub mod messages;
pub mod mig_activity;
pub mod notice_store;
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
