//! What a lifecycle pass reads from the inventory: the containers, GPU demand, the
//! controller's own containers, and each container's GPU signal (the rest of a sample is read
//! from `/proc` outside the inventory lock).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use super::{mig_activity::MigActivity, pass::Demand, plan::Sample, signals};
use crate::inventory::{ContainerRecord, Inventory};

/// The latest sample of each container, shared with `apply --dry-run` previews.
pub type LatestSamples = Arc<std::sync::RwLock<HashMap<String, Sample>>>;

/// GPU demand: GPUs NVML reports, and how many of them running containers hold. UUIDs NVML does
/// not report are not counted (a claim of a GPU that is not there is not demand).
#[must_use]
pub fn demand(inventory: &Inventory) -> Demand {
    let reported: HashSet<&str> = inventory
        .gpus
        .gpus
        .iter()
        .filter(|gpu| !gpu.uuid.is_empty())
        .map(|gpu| gpu.uuid.as_str())
        .collect();
    let held: HashSet<&str> = inventory
        .containers
        .values()
        .filter(|record| record.info.state.is_live())
        .flat_map(|record| record.gpu_uuids.iter())
        .filter_map(|uuid| parent_of(inventory, &reported, uuid))
        .collect();
    Demand {
        gpus: reported.len(),
        held: held.len(),
    }
}

/// The physical GPU `uuid` is (or is a MIG device of), when NVML reports it.
fn parent_of<'a>(
    inventory: &'a Inventory,
    reported: &HashSet<&'a str>,
    uuid: &str,
) -> Option<&'a str> {
    if let Some(found) = reported.get(uuid) {
        return Some(found);
    }
    inventory.gpus.gpus.iter().find_map(|gpu| {
        gpu.mig_devices
            .iter()
            .any(|device| device.uuid == uuid)
            .then_some(gpu.uuid.as_str())
    })
}

/// The containers the controller created itself: by the ids it remembers creating, never by
/// a label (labhost: `controllers/own.rs`).
#[must_use]
pub fn own(inventory: &Inventory) -> HashSet<String> {
    inventory
        .containers
        .keys()
        .filter(|id| inventory.own.contains(id))
        .cloned()
        .collect()
}

/// Every container, with its GPU signal, read under one inventory lock.
#[must_use]
pub fn containers(
    inventory: &Inventory,
    mig: Option<&MigActivity>,
    gpus_fresh: bool,
) -> Vec<(Arc<ContainerRecord>, Option<f64>)> {
    inventory
        .containers
        .values()
        .map(|record| {
            let gpu = gpus_fresh
                .then(|| signals::gpu_signal(record, inventory, mig))
                .flatten();
            (record.clone(), gpu)
        })
        .collect()
}

/// Whether the latest GPU snapshot is recent enough to judge GPU activity by: polled within
/// `max_age` (two poll intervals). A hung NVML leaves every GPU signal unknown, never idle.
#[must_use]
pub fn gpus_fresh(
    inventory: &Inventory,
    now: jiff::Timestamp,
    max_age: std::time::Duration,
) -> bool {
    inventory.gpu.last_poll.is_some_and(|polled| {
        std::time::Duration::try_from(now.duration_since(polled)).is_ok_and(|age| age <= max_age)
            || polled > now
    })
}

/// Whether any container holds a MIG device (only then is DCGM scraped).
#[must_use]
pub fn any_mig(inventory: &Inventory) -> bool {
    inventory
        .containers
        .values()
        .any(|record| signals::holds_mig_device(record, inventory))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_snapshot_older_than_two_poll_intervals_or_none_is_not_fresh() {
        let now = jiff::Timestamp::from_second(1_800_000_000).expect("time");
        let max_age = std::time::Duration::from_secs(10);
        let mut inventory = Inventory::default();
        assert!(!gpus_fresh(&inventory, now, max_age), "never polled");
        inventory.gpu.last_poll = Some(now - jiff::SignedDuration::from_secs(3));
        assert!(gpus_fresh(&inventory, now, max_age));
        inventory.gpu.last_poll = Some(now - jiff::SignedDuration::from_secs(25));
        assert!(!gpus_fresh(&inventory, now, max_age), "a hung poll");
    }
}
