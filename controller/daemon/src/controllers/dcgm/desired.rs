//! The exporter container the spec asks for, and the hash that tells a changed spec apart.

use std::collections::BTreeMap;

use ds01_host::docker::{NewContainer, NewGpus};
use ds01_spec::{DcgmExporterSpec, GpuSelection};

/// Label on containers the controller created: information for people and for recognising an
/// earlier version's exporter at upgrade, never how the controller knows its own (that is the
/// id it remembers).
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
            .container_env()
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect(),
        labels,
        // The host port onto the port the exporter listens on (9400 unless moved).
        publish: Some((spec.bind_address.to_string(), spec.port, spec.listen_port())),
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
        networks: spec
            .networks
            .iter()
            .map(|network| (network.name.clone(), network.aliases.clone()))
            .collect(),
        log_rotation: Some((spec.log_max_size.bytes(), spec.log_max_files)),
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
        assert_eq!(
            container.env,
            [
                "A=1",
                "DCGM_EXPORTER_COLLECTORS=/etc/dcgm-exporter/dcp-metrics-included.csv"
            ]
        );
        assert_eq!(container.log_rotation, Some((10 << 20, 5)));
        assert_eq!(
            (container.nano_cpus, container.memory_bytes),
            (Some(250_000_000), Some(512 << 20))
        );
    }

    #[test]
    fn the_port_is_published_onto_the_listen_port_and_env_overrides_the_collectors() {
        let mut spec = DcgmExporterSpec {
            port: 19400,
            networks: vec![ds01_spec::NetworkAttachment {
                name: "ds01-monitoring".into(),
                aliases: vec!["dcgm-exporter".into()],
            }],
            ..DcgmExporterSpec::default()
        };
        let container = desired_container(&spec);
        assert_eq!(container.publish, Some(("127.0.0.1".into(), 19400, 9400)));
        assert_eq!(
            container.networks,
            [(
                "ds01-monitoring".to_owned(),
                vec!["dcgm-exporter".to_owned()]
            )]
        );
        spec.env
            .insert("DCGM_EXPORTER_LISTEN".into(), "0.0.0.0:9500".into());
        spec.env
            .insert("DCGM_EXPORTER_COLLECTORS".into(), "/etc/custom.csv".into());
        let moved = desired_container(&spec);
        assert_eq!(moved.publish, Some(("127.0.0.1".into(), 19400, 9500)));
        assert!(
            moved
                .env
                .contains(&"DCGM_EXPORTER_COLLECTORS=/etc/custom.csv".to_owned()),
            "{:?}",
            moved.env
        );
        assert_eq!(moved.env.len(), 2);
    }
}
