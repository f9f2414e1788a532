//! The DCGM exporter service of the incumbent's `monitoring/docker-compose.yaml` → a
//! `DcgmExporter` with the same container name, image, port, environment, limits, capabilities,
//! labels, bind mounts, networks with the service's alias, and log rotation. What the spec
//! cannot say (a restart policy, a process health check) is printed with what replaces it.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::notices::Notices;

/// The first service whose image is a dcgm-exporter (else the one named `dcgm-exporter`).
fn find_service(compose: &Map<String, Value>) -> Option<(&String, &Map<String, Value>)> {
    let services = compose.get("services")?.as_object()?;
    services
        .iter()
        .filter_map(|(name, service)| Some((name, service.as_object()?)))
        .find(|(_, service)| {
            service
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(|image| image.contains("dcgm-exporter"))
        })
        .or_else(|| {
            services
                .get_key_value("dcgm-exporter")
                .and_then(|(name, service)| Some((name, service.as_object()?)))
        })
}

/// `"K=V"` lists and `{K: V}` maps as a string map (compose accepts both).
fn string_map(value: &Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (key.clone(), json!(text))
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|item| {
                let (key, value) = item.split_once('=').unwrap_or((item, ""));
                (key.to_owned(), json!(value))
            })
            .collect(),
        _ => Map::new(),
    }
}

/// Docker's memory notation (`512M`, `1g`, `2048k`, bytes) → our size (`512MiB`).
fn memory(value: &Value) -> Option<String> {
    let text = match value {
        Value::Number(number) => return Some(format!("{number}B")),
        Value::String(text) => text.trim().to_ascii_lowercase(),
        _ => return None,
    };
    let text = text.strip_suffix('b').unwrap_or(&text);
    let (digits, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let unit = match unit {
        "" => "B",
        "k" => "KiB",
        "m" => "MiB",
        "g" => "GiB",
        "t" => "TiB",
        _ => return None,
    };
    digits
        .parse::<f64>()
        .ok()
        .map(|number| format!("{number}{unit}"))
}

/// `[ip:]host:container[/proto]` → (bind address, host port, container port).
fn port(value: &Value) -> Option<(String, u16, u16)> {
    if let Some(long) = value.as_object() {
        let target = long.get("target")?.as_u64()?;
        let published = long.get("published").and_then(|p| {
            p.as_str()
                .map(str::to_owned)
                .or_else(|| p.as_u64().map(|n| n.to_string()))
        })?;
        let ip = long
            .get("host_ip")
            .and_then(Value::as_str)
            .unwrap_or("0.0.0.0");
        return Some((
            ip.to_owned(),
            published.parse().ok()?,
            u16::try_from(target).ok()?,
        ));
    }
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    let text = text.split('/').next().unwrap_or_default();
    let parts: Vec<&str> = text.rsplitn(3, ':').collect();
    match parts.as_slice() {
        [container, host, ip] => Some((
            (*ip).trim_matches(['[', ']']).to_owned(),
            host.parse().ok()?,
            container.parse().ok()?,
        )),
        [container, host] => Some((
            "0.0.0.0".to_owned(),
            host.parse().ok()?,
            container.parse().ok()?,
        )),
        [single] => Some((
            "0.0.0.0".to_owned(),
            single.parse().ok()?,
            single.parse().ok()?,
        )),
        _ => None,
    }
}

/// The networks the service joins: (Docker name — compose prefixes keys without `name` with
/// the project —, the compose key).
fn networks(
    compose: &Map<String, Value>,
    service: &Map<String, Value>,
    compose_file: &Path,
) -> Vec<(String, String)> {
    let keys: Vec<String> = match service.get("networks") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let project = compose
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            compose_file
                .parent()
                .and_then(Path::file_name)
                .map(|name| name.to_string_lossy().to_lowercase())
                .unwrap_or_default()
        });
    keys.iter()
        .map(|key| {
            let name = compose
                .get("networks")
                .and_then(|networks| networks.get(key))
                .and_then(|network| network.get("name"))
                .and_then(Value::as_str)
                .map_or_else(|| format!("{project}_{key}"), str::to_owned);
            (name, key.clone())
        })
        .collect()
}

/// The exporter's `spec` and `metadata.name`, or `None` when the file has no such service.
pub fn spec(
    compose: &Map<String, Value>,
    compose_file: &Path,
    notices: &mut Notices,
) -> Option<Map<String, Value>> {
    let Some((service_name, service)) = find_service(compose) else {
        notices.dropped(
            &compose_file.display().to_string(),
            "no service runs a dcgm-exporter image",
        );
        return None;
    };
    let place = |key: &str| format!("services.{service_name}.{key}");
    let whole = Value::Object(service.clone());
    let mut spec = Map::new();
    match service.get("container_name").and_then(Value::as_str) {
        Some(name) => drop(spec.insert("containerName".to_owned(), json!(name))),
        None => notices.changed(
            &place("container_name (absent: compose names it <project>-<service>-1)"),
            "containerName: ds01-dcgm-exporter",
            "the controller owns one container by a fixed name",
        ),
    }
    if let Some(image) = service.get("image").and_then(Value::as_str) {
        spec.insert("image".to_owned(), json!(image));
    }
    let mut listen_on = None;
    let ports: Vec<(String, u16, u16)> = service
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(port)
        .collect();
    if let Some((ip, host, container)) = ports.first() {
        spec.insert("port".to_owned(), json!(host));
        spec.insert(
            "bindAddress".to_owned(),
            json!(if ip.is_empty() { "0.0.0.0" } else { ip }),
        );
        // The controller publishes `port` onto the exporter's listen port: 9400, or the one
        // DCGM_EXPORTER_LISTEN names.
        if *container != 9400 {
            listen_on = Some(*container);
        }
        if ports.len() > 1 {
            notices.dropped(
                &place("ports (all but the first)"),
                "the exporter publishes one port",
            );
        }
    }
    let mut environment = service
        .get("environment")
        .map(string_map)
        .unwrap_or_default();
    if let Some(container) = listen_on
        && !environment.contains_key("DCGM_EXPORTER_LISTEN")
    {
        environment.insert(
            "DCGM_EXPORTER_LISTEN".to_owned(),
            json!(format!(":{container}")),
        );
    }
    if !environment.is_empty() {
        spec.insert("env".to_owned(), Value::Object(environment));
    }
    if let Some(labels) = service.get("labels") {
        spec.insert("labels".to_owned(), Value::Object(string_map(labels)));
    }
    if let Some(caps) = service.get("cap_add").and_then(Value::as_array) {
        spec.insert("capAdd".to_owned(), Value::Array(caps.clone()));
    }
    let limits = whole.pointer("/deploy/resources/limits");
    if let Some(size) = limits
        .and_then(|limits| limits.get("memory"))
        .or_else(|| service.get("mem_limit"))
    {
        match memory(size) {
            Some(size) => drop(spec.insert("memoryLimit".to_owned(), json!(size))),
            None => notices.dropped(&place(&format!("memory: {size}")), "not a size"),
        }
    }
    if let Some(cpus) = limits
        .and_then(|limits| limits.get("cpus"))
        .or_else(|| service.get("cpus"))
    {
        match cpus
            .as_f64()
            .or_else(|| cpus.as_str().and_then(|text| text.parse().ok()))
        {
            Some(cores) => drop(spec.insert("cpuLimit".to_owned(), json!(cores))),
            None => notices.dropped(&place(&format!("cpus: {cpus}")), "not a number of cores"),
        }
    }
    for device in whole
        .pointer("/deploy/resources/reservations/devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(ids) = device.get("device_ids").and_then(Value::as_array) {
            spec.insert("gpus".to_owned(), Value::Array(ids.clone()));
        } else if let Some(count) = device
            .get("count")
            .filter(|count| count.as_str() != Some("all"))
        {
            notices.changed(
                &place(&format!(
                    "deploy.resources.reservations.devices count: {count}"
                )),
                "gpus: all",
                "a GPU count cannot be expressed; name GPU UUIDs in gpus to limit it",
            );
        }
    }
    let compose_dir = compose_file.parent().unwrap_or_else(|| Path::new("/"));
    let mut volumes = Vec::new();
    for volume in service
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match volume.as_str() {
            Some(text) if text.starts_with(['/', '.']) => {
                let (host, rest) = text.split_once(':').unwrap_or((text, ""));
                let host = if host.starts_with('.') {
                    compose_dir.join(host).display().to_string()
                } else {
                    host.to_owned()
                };
                volumes.push(json!(format!("{host}:{rest}")));
            }
            _ => notices.dropped(
                &place(&format!("volumes: {volume}")),
                "only bind mounts of host paths can be carried over",
            ),
        }
    }
    if !volumes.is_empty() {
        spec.insert("volumes".to_owned(), Value::Array(volumes));
    }
    if let Some(entrypoint) = service.get("entrypoint") {
        spec.insert("command".to_owned(), argv(entrypoint));
    }
    if let Some(command) = service.get("command") {
        spec.insert("args".to_owned(), argv(command));
    }
    let joined = networks(compose, service, compose_file);
    if !joined.is_empty() {
        // Compose gives every service its name as an alias on each network it joins (that is
        // how a containerised Prometheus reaches `dcgm-exporter:9400`); the spec says so.
        let attachments: Vec<Value> = joined
            .iter()
            .map(|(name, key)| {
                let mut aliases = vec![json!(service_name)];
                aliases.extend(
                    service
                        .get("networks")
                        .and_then(|networks| networks.get(key))
                        .and_then(|network| network.get("aliases"))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter(|alias| alias.as_str() != Some(service_name))
                        .cloned(),
                );
                json!({ "name": name, "aliases": aliases })
            })
            .collect();
        spec.insert("networks".to_owned(), Value::Array(attachments));
    }
    if let Some(options) = whole.pointer("/logging/options") {
        if let Some(size) = options.get("max-size") {
            match memory(size) {
                Some(size) => drop(spec.insert("logMaxSize".to_owned(), json!(size))),
                None => notices.dropped(
                    &place(&format!("logging.options.max-size: {size}")),
                    "not a size",
                ),
            }
        }
        if let Some(files) = options.get("max-file") {
            match files
                .as_u64()
                .or_else(|| files.as_str().and_then(|text| text.parse().ok()))
            {
                Some(files) => drop(spec.insert("logMaxFiles".to_owned(), json!(files))),
                None => notices.dropped(
                    &place(&format!("logging.options.max-file: {files}")),
                    "not a number of files",
                ),
            }
        }
    }
    if let Some(restart) = service.get("restart") {
        notices.changed(&place(&format!("restart: {restart}")), "restart: {backoffInitial, maxRestarts, …}", "the controller is the one restarter (Docker's policy is `no`), with backoff and crash-loop detection");
    }
    if service.get("healthcheck").is_some() {
        notices.changed(
            &place("healthcheck (pgrep -f dcgm-exporter)"),
            "health: HTTP GET /metrics naming every GPU",
            "a running process is not a working exporter",
        );
    }
    for key in service.keys() {
        if ![
            "container_name",
            "image",
            "ports",
            "environment",
            "labels",
            "cap_add",
            "deploy",
            "mem_limit",
            "cpus",
            "volumes",
            "entrypoint",
            "command",
            "networks",
            "logging",
            "restart",
            "healthcheck",
        ]
        .contains(&key.as_str())
        {
            notices.dropped(&place(key), "no equivalent in a DcgmExporter");
        }
    }
    Some(spec)
}

fn argv(value: &Value) -> Value {
    match value {
        Value::String(text) => {
            Value::Array(text.split_whitespace().map(|word| json!(word)).collect())
        }
        other => other.clone(),
    }
}
