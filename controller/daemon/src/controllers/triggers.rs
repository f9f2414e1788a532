//! Turning inventory changes into reconcile requests: the exporter's own container changed,
//! any container changed (orphans may be left behind; lifecycle deadlines start or end), the
//! MIG layout changed, Docker reconnected.

use std::sync::Arc;

use ds01_spec::{Kind, SpecBody};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{dcgm::executor::layout_fingerprint, start::Controllers};
use crate::{
    inventory::{SharedInventory, observe::Change},
    spec_store::SpecStore,
};

/// Names of the applied `DcgmExporter` resources whose container is `container`.
async fn dcgm_resources(store: &tokio::sync::Mutex<SpecStore>, container: &str) -> Vec<String> {
    store
        .lock()
        .await
        .all()
        .filter_map(|stored| match &stored.resource.spec {
            SpecBody::DcgmExporter(spec) if spec.container_name == container => {
                Some(stored.resource.metadata.name.clone())
            }
            _ => None,
        })
        .collect()
}

/// Routes changes until `shutdown`.
pub async fn route_changes(
    mut changes: broadcast::Receiver<Change>,
    store: Arc<tokio::sync::Mutex<SpecStore>>,
    inventory: SharedInventory,
    controllers: Controllers,
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
                for resource in dcgm_resources(&store, &name).await {
                    controllers.trigger(Kind::DcgmExporter, &resource);
                }
                // A container that stopped leaves orphans behind on its GPUs.
                controllers
                    .trigger_kind(&store, Kind::GpuOrphanPolicy)
                    .await;
                // A container that started has a runtime deadline from now on; one that was
                // created or exited starts its removal timers.
                controllers
                    .trigger_kind(&store, Kind::ContainerLifecyclePolicy)
                    .await;
            }
            Ok(Change::Gpus) => {
                controllers
                    .trigger_kind(&store, Kind::GpuOrphanPolicy)
                    .await;
                let now = layout_fingerprint(&inventory);
                if now != layout {
                    layout = now;
                    controllers.trigger_kind(&store, Kind::DcgmExporter).await;
                }
            }
            // Missed changes or a reconnect: look at everything again.
            Ok(Change::Docker) | Err(broadcast::error::RecvError::Lagged(_)) => {
                controllers.trigger_everything(&store).await
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
