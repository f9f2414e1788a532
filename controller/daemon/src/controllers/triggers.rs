//! Turning inventory changes into reconcile requests: the exporter's own container changed,
//! the MIG layout changed, Docker reconnected.

use std::sync::Arc;

use ds01_runtime::Handle;
use ds01_spec::{Kind, SpecBody};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::dcgm::executor::layout_fingerprint;
use crate::{
    inventory::{SharedInventory, observe::Change},
    spec_store::SpecStore,
};

/// Names of the applied `DcgmExporter` resources whose container is `container` (all when
/// `None`).
async fn dcgm_resources(
    store: &tokio::sync::Mutex<SpecStore>,
    container: Option<&str>,
) -> Vec<String> {
    store
        .lock()
        .await
        .all()
        .filter_map(|stored| match &stored.resource.spec {
            SpecBody::DcgmExporter(spec)
                if container.is_none_or(|name| name == spec.container_name) =>
            {
                Some(stored.resource.metadata.name.clone())
            }
            _ => None,
        })
        .collect()
}

/// Requests a reconcile of every applied resource of `kind`.
pub async fn trigger_all(store: &tokio::sync::Mutex<SpecStore>, kind: Kind, dcgm: &Handle<String>) {
    if kind == Kind::DcgmExporter {
        for name in dcgm_resources(store, None).await {
            dcgm.trigger(name);
        }
    }
}

/// Routes changes until `shutdown`.
pub async fn route_changes(
    mut changes: broadcast::Receiver<Change>,
    store: Arc<tokio::sync::Mutex<SpecStore>>,
    inventory: SharedInventory,
    dcgm: Handle<String>,
    shutdown: CancellationToken,
) {
    let mut layout = layout_fingerprint(&inventory);
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => change,
        };
        match change {
            Ok(Change::Container(_, name)) => {
                for resource in dcgm_resources(&store, Some(&name)).await {
                    dcgm.trigger(resource);
                }
            }
            Ok(Change::Gpus) => {
                let now = layout_fingerprint(&inventory);
                if now != layout {
                    layout = now;
                    trigger_all(&store, Kind::DcgmExporter, &dcgm).await;
                }
            }
            // Missed changes or a reconnect: look at everything again.
            Ok(Change::Docker) | Err(broadcast::error::RecvError::Lagged(_)) => {
                trigger_all(&store, Kind::DcgmExporter, &dcgm).await
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
