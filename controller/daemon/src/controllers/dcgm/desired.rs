//! The exporter container the spec asks for, and the hash that tells a changed spec apart.

use std::collections::BTreeMap;

use ds01_host::docker::{NewContainer, NewGpus};
use ds01_spec::{DcgmExporterSpec, GpuSelection};

/// Label marking containers the controller created.
pub const MANAGED_BY: (&str, &str) = ("ds01.managed_by", "ds01-controller");
/// Label carrying the spec hash.
pub const SPEC_HASH: &str = "ds01.spec-hash";

/// A stable hash of the spec (FNV-1a over its canonical JSON), so it survives controller
/// upgrades as long as the spec's meaning does not change.
#[must_use]
pub fn spec_hash(spec: &DcgmExporterSpec) -> String {
    let text = serde_json::to_string(spec).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The container to create for `spec`.
#[must_use]
pub fn desired_container(spec: &DcgmExporterSpec) -> NewContainer {
    let mut labels: BTreeMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned());
    labels.insert("ds01.protected".to_owned(), "true".to_owned());
    labels.insert("ds01.monitoring".to_owned(), "true".to_owned());
    labels.insert(SPEC_HASH.to_owned(), spec_hash(spec));
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a CPU limit is a few cores"
    )]
    let nano_cpus = (spec.cpu_limit * 1e9).round() as i64;
    NewContainer {
        name: spec.container_name.clone(),
        image: spec.image.clone(),
        entrypoint: spec.command.clone(),
        command: spec.args.clone(),
        env: spec
            .env
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect(),
        labels,
        publish: Some((spec.bind_address.to_string(), spec.port, spec.port)),
        cap_add: spec.cap_add.clone(),
        memory_bytes: i64::try_from(spec.memory_limit.bytes()).ok(),
        nano_cpus: Some(nano_cpus),
        gpus: match &spec.gpus {
            GpuSelection::All => NewGpus::All,
            GpuSelection::None => NewGpus::None,
            GpuSelection::Devices(ids) => NewGpus::Devices(ids.clone()),
        },
        binds: spec.volumes.iter().map(ToString::to_string).collect(),
        stop_timeout: i64::try_from(spec.stop_timeout.std().as_secs()).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_follows_the_spec_and_the_container_carries_the_controller_labels() {
        let spec = DcgmExporterSpec::default();
        let mut changed = spec.clone();
        changed.env.insert("A".into(), "1".into());
        assert_eq!(spec_hash(&spec), spec_hash(&spec.clone()));
        assert_ne!(spec_hash(&spec), spec_hash(&changed));
        let container = desired_container(&changed);
        assert_eq!(
            container.labels.get("ds01.managed_by").map(String::as_str),
            Some("ds01-controller")
        );
        assert_eq!(
            container.labels.get("ds01.protected").map(String::as_str),
            Some("true")
        );
        assert_eq!(container.labels.get(SPEC_HASH), Some(&spec_hash(&changed)));
        assert_eq!(container.publish, Some(("127.0.0.1".into(), 9400, 9400)));
        assert_eq!(container.env, ["A=1"]);
        assert_eq!(
            (container.nano_cpus, container.memory_bytes),
            (Some(250_000_000), Some(512 << 20))
        );
    }
}
