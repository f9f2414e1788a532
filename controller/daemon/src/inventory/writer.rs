//! Keeping `workload-inventory.json` current: a write after every burst of changes
//! (coalesced), and one-off writes at exit and for `--once`.

use std::{path::PathBuf, time::Duration};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{SharedInventory, file, observe::Change};

/// Mode of the inventory file: root and the state directory's group. It names every user's
/// containers and host processes' command lines, so it is not world-readable; users read
/// their part through `ds01ctl get` (docs/operations.md, "Files and their modes").
pub const INVENTORY_MODE: u32 = 0o640;

/// Changes arriving within this period share one write.
const WRITE_DELAY: Duration = Duration::from_millis(100);

/// Writes the inventory file now, logging a failure. The bytes are serialized under the read
/// lock (no copy of the inventory) and written after it is released.
pub fn write_logged(path: &std::path::Path, inventory: &SharedInventory) {
    let bytes = file::to_bytes(
        &inventory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let written = bytes.map_err(std::io::Error::other).and_then(|bytes| {
        ds01_host::atomic_file::write_atomic_with_mode(path, &bytes, INVENTORY_MODE)
    });
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "cannot write the inventory file");
    }
}

/// Rewrites the file after each burst of changes until `shutdown`.
pub async fn write_on_change(
    path: PathBuf,
    inventory: SharedInventory,
    mut changes: broadcast::Receiver<Change>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => {
                if matches!(change, Err(broadcast::error::RecvError::Closed)) {
                    return;
                }
                tokio::time::sleep(WRITE_DELAY).await;
                // Everything that arrived meanwhile is covered by this write.
                while changes.try_recv().is_ok() {}
                let path = path.clone();
                let inventory = inventory.clone();
                let _ = tokio::task::spawn_blocking(move || write_logged(&path, &inventory)).await;
            }
        }
    }
}
