//! The inventory shared between one writing side — the Docker and GPU watchers and what they
//! call — and every reader (controllers, the API, metrics, the inventory file): readers get an
//! [`InventoryReader`], which has no way to write.

use std::sync::{Arc, LockResult, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::store::Inventory;

/// What readers of the inventory hold (read access only).
pub type SharedInventory = InventoryReader;

/// Read access to the inventory (a snapshot is taken under the read lock).
#[derive(Clone, Debug, Default)]
pub struct InventoryReader(Arc<RwLock<Inventory>>);

impl InventoryReader {
    /// The inventory, read-locked.
    ///
    /// # Errors
    /// When a writer panicked (callers take the guard anyway: the data is still consistent
    /// record by record).
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, Inventory>> {
        self.0.read()
    }
}

#[cfg(test)]
impl InventoryReader {
    /// Tests set the scene through a writer of the reader's inventory.
    pub fn writer_for_tests(&self) -> InventoryWriter {
        InventoryWriter(self.0.clone())
    }
}

/// Write access to the inventory: held only by the watchers and their observer.
#[derive(Clone, Debug, Default)]
pub struct InventoryWriter(Arc<RwLock<Inventory>>);

impl InventoryWriter {
    /// The inventory, write-locked.
    ///
    /// # Errors
    /// As [`InventoryReader::read`].
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, Inventory>> {
        self.0.write()
    }

    /// A reader of the same inventory.
    #[must_use]
    pub fn reader(&self) -> InventoryReader {
        InventoryReader(self.0.clone())
    }
}
