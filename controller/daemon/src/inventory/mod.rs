//! The live workload inventory: containers with origin, owner and GPUs, host GPU processes,
//! GPUs, and the health of each source — fed by the Docker and GPU watchers.

pub mod attribution;
pub mod classify;
pub mod docker_watch;
pub mod file;
pub mod gpu_resolve;
pub mod gpu_watch;
pub mod observe;
pub mod shared;
pub mod store;
pub mod writer;

pub use shared::{InventoryWriter, SharedInventory};
pub use store::{ContainerRecord, HostProcessRecord, Inventory};
