//! What `describe container` and `get containers` show of a container's lifecycle: resolved
//! limits with their sources, signals, the idle episode, warnings sent and what comes next —
//! taken from the pass's own decision, so they cannot disagree with enforcement.

use std::{collections::HashMap, sync::Arc};

use ds01_spec::resolve;
use serde_json::{Value, json};

use super::pass::Decision;

/// The lifecycle facts of each container, by container id, shared with the API.
pub type LifecycleViews = Arc<std::sync::RwLock<HashMap<String, Value>>>;

fn sourced<T: ToString>(value: Option<T>, source: &resolve::LimitSource) -> Value {
    json!({ "value": value.map(|value| value.to_string()), "source": source.to_string() })
}

/// The view of one decision.
#[must_use]
pub fn view(policy: &str, decision: &Decision, dry_run: bool) -> Value {
    let limits = &decision.limits;
    let sample = &decision.sample;
    let plan = &decision.plan;
    let signal = |value: Option<String>, below: bool| json!({ "value": value, "idle": below });
    let upcoming: Vec<Value> = plan
        .upcoming
        .iter()
        .map(|upcoming| json!({ "at": format!("{:.3}", upcoming.at), "action": upcoming.action, "reason": upcoming.reason, "assuming": upcoming.assuming }))
        .collect();
    json!({
        "policy": policy,
        "dryRun": dry_run,
        "group": limits.group,
        "limits": {
            "idleTimeout": sourced(limits.idle_timeout.value, &limits.idle_timeout.source),
            "maxRuntime": sourced(limits.max_runtime.value, &limits.max_runtime.source),
            "stopGracePeriod": sourced(Some(limits.stop_grace_period.value), &limits.stop_grace_period.source),
            "onIdle": sourced(Some(format!("{:?}", limits.on_idle.value)), &limits.on_idle.source),
            "removeAfterStop": sourced(limits.remove_after_stop.value, &limits.remove_after_stop.source),
            "gpuHoldAfterStop": sourced(limits.gpu_hold_after_stop.value, &limits.gpu_hold_after_stop.source),
            "createdTimeout": sourced(limits.created_timeout.value, &limits.created_timeout.source),
            "startupGrace": sourced(Some(limits.startup_grace.value), &limits.startup_grace.source),
            "gpuUtilBelow": sourced(Some(limits.gpu_util_below.value), &limits.gpu_util_below.source),
            "cpuBelow": sourced(Some(limits.cpu_below.value), &limits.cpu_below.source),
            "networkBelow": sourced(Some(limits.network_below.value), &limits.network_below.source),
        },
        "exemptions": limits.exemptions.iter().map(|exemption| json!({ "from": exemption.exempt_from, "reason": exemption.reason, "expires": exemption.expires })).collect::<Vec<_>>(),
        "signals": {
            "gpu": signal(sample.gpu.map(|gpu| format!("{gpu:.0}%")), sample.gpu.is_some_and(|gpu| gpu < limits.gpu_util_below.value.value())),
            "cpu": signal(sample.cpu.map(|cpu| format!("{cpu:.1}%")), sample.cpu.is_some_and(|cpu| cpu < limits.cpu_below.value.value())),
            "network": signal(sample.network.map(|bytes| format!("{bytes}B")), sample.network.is_some_and(|bytes| bytes < limits.network_below.value.bytes())),
            "keepAlive": sample.keep_alive,
        },
        "idle": plan.idle,
        "idleSince": plan.memory.idle_since.map(|at| format!("{at:.3}")),
        "idleWarningsSent": plan.memory.idle_warned.len() + plan.memory.idle_warned_before.len(),
        "runtimeWarningsSent": plan.memory.runtime_warned.len() + plan.memory.runtime_warned_before.len(),
        // The next action that will happen unless something changes (not a projection).
        "nextDeadline": plan.upcoming.iter().find(|upcoming| upcoming.assuming.is_none()).map(|upcoming| format!("{:.3}", upcoming.at)),
        "nextAction": upcoming.first(),
        "upcoming": upcoming,
        "note": plan.note,
    })
}
