//! What a lifecycle policy would do to the containers there now, for `apply --dry-run`: the
//! same pass enforcement plans, on the latest samples and what the policy remembers, with every
//! upcoming action and its time.

use ds01_spec::{ContainerLifecyclePolicySpec, api::PreviewAction};

use super::{
    members::Membership,
    observe::{self, LatestSamples},
    pass::{Observation, PassInput, Recordable, plan_pass},
    plan::Memory,
};
use crate::{inventory::Inventory, state_file::Section};

/// What previews read besides the inventory.
#[derive(Clone, Debug)]
pub struct PreviewSources {
    /// The latest sample of each container.
    pub samples: LatestSamples,
    /// What applied policies remember (a re-applied policy keeps its episodes).
    pub memory: Section<Memory>,
}

/// The actions `spec` (applied as `name`) would take, soonest first. `membership` is what the
/// caller could read of its members files.
#[must_use]
pub fn preview(
    reference: &str,
    name: &str,
    spec: &ContainerLifecyclePolicySpec,
    inventory: &Inventory,
    sources: &PreviewSources,
    membership: &Membership,
    now: jiff::Timestamp,
) -> Vec<PreviewAction> {
    let samples = sources
        .samples
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let containers: Vec<Observation> = inventory
        .containers
        .values()
        .map(|record| {
            let memory: Memory = sources
                .memory
                .get(&format!("{name}/{}", record.info.id))
                .unwrap_or_default();
            Observation {
                record: record.clone(),
                sample: samples.get(&record.info.id).cloned().unwrap_or_default(),
                stored: memory.clone(),
                memory,
                stopping: false,
            }
        })
        .collect();
    drop(samples);
    let own = observe::own(inventory);
    let input = PassInput {
        spec,
        dry_run: true,
        containers: &containers,
        membership,
        demand: observe::demand(inventory),
        own: &own,
        recordable: Recordable::Yes,
    };
    let pass = plan_pass(&input, now);
    let mut actions: Vec<(jiff::Timestamp, PreviewAction)> = pass
        .decisions
        .iter()
        .flat_map(|decision| {
            decision.plan.upcoming.iter().map(move |upcoming| {
                let reason = match upcoming.assuming {
                    Some(assuming) => format!("{} ({assuming})", upcoming.reason),
                    None => upcoming.reason.clone(),
                };
                (
                    upcoming.at,
                    PreviewAction {
                        resource: reference.to_owned(),
                        container: decision.record.info.name.clone(),
                        user: decision.record.user.clone(),
                        action: upcoming.action.to_owned(),
                        at: format!("{:.3}", upcoming.at.max(now)),
                        reason,
                    },
                )
            })
        })
        .collect();
    actions.sort_by_key(|(at, _)| *at);
    actions.into_iter().map(|(_, action)| action).collect()
}
