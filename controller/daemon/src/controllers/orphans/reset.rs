//! A GPU reset: the reset command run under the GPU-maintenance lock, with the controller's
//! own exporters (known by the ids it created, never by name or label) stopped around it.

use ds01_spec::{EventType, GpuOrphanPolicySpec, SpecBody};
use serde_json::json;

use super::context::OrphanContext;

/// Runs the reset command under the maintenance lock, with the exporter stopped around it.
pub async fn reset(
    context: &OrphanContext,
    spec: &GpuOrphanPolicySpec,
    uuid: &str,
    index: u32,
) -> serde_json::Value {
    let _maintenance = context.maintenance.lock().await;
    let exporters = stop_exporters(context).await;
    let argv = spec.reset.command.render(uuid, index);
    let started = std::time::Instant::now();
    let outcome = match argv.split_first() {
        None => Err("empty reset command".to_owned()),
        Some((program, arguments)) => {
            let child = tokio::process::Command::new(program)
                .args(arguments)
                .kill_on_drop(true)
                .output();
            match tokio::time::timeout(spec.reset.timeout.std(), child).await {
                Err(_) => Err(format!("timed out after {}", spec.reset.timeout)),
                Ok(Err(error)) => Err(format!("cannot run {program}: {error}")),
                Ok(Ok(output)) => {
                    let text = format!(
                        "{}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    );
                    if output.status.success() {
                        Ok(text)
                    } else {
                        Err(format!(
                            "exit status {}: {}",
                            output.status.code().unwrap_or(-1),
                            text.trim()
                        ))
                    }
                }
            }
        }
    };
    start_exporters(context, &exporters).await;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (kind, result) = match &outcome {
        Ok(output) => (
            EventType::Reset,
            json!({ "gpu": uuid, "index": index, "command": argv, "output": output.trim(), "duration_ms": millis }),
        ),
        Err(error) => (
            EventType::ResetFailed,
            json!({ "gpu": uuid, "index": index, "command": argv, "error": error, "duration_ms": millis }),
        ),
    };
    context.recorder.emit(kind, None, result.clone());
    json!({ "at": format!("{:.3}", jiff::Timestamp::now()), "result": if outcome.is_ok() { "ok" } else { "failed" }, "details": result })
}

/// Stops the running exporter containers the controller created (they hold every GPU);
/// returns their ids. A container that only has an exporter's name is someone else's: never
/// stopped.
async fn stop_exporters(context: &OrphanContext) -> Vec<(String, std::time::Duration)> {
    let exporters: Vec<(String, std::time::Duration)> = context
        .store
        .lock()
        .await
        .all()
        .filter_map(|stored| match &stored.resource.spec {
            SpecBody::DcgmExporter(spec) => {
                Some((spec.container_name.clone(), spec.stop_timeout.std()))
            }
            _ => None,
        })
        .collect();
    let Ok(docker) = crate::controllers::connected(&context.docker).await else {
        return Vec::new();
    };
    let mut stopped = Vec::new();
    let own = context
        .inventory
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .own
        .clone();
    for (name, timeout) in exporters {
        if let Ok(Some(info)) = docker.inspect(&name).await
            && own.contains(&info.id)
            && info.state.is_live()
            && docker.stop(&info.id, timeout).await.is_ok()
        {
            stopped.push((info.id, timeout));
        }
    }
    stopped
}

async fn start_exporters(context: &OrphanContext, stopped: &[(String, std::time::Duration)]) {
    let Ok(docker) = crate::controllers::connected(&context.docker).await else {
        return;
    };
    for (id, _) in stopped {
        if let Err(error) = docker.start(id).await {
            tracing::warn!(container = %id, error = %ds01_runtime::error_chain(&error), "cannot restart the exporter after a GPU reset");
        }
    }
}
