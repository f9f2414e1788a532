use ds01_host::{
    gpu::MigDevice,
    gpu_access::{GpuClaim, GpuGrant},
};

use super::*;

const MIG_A: &str = "MIG-aaaaaaaa-0000-4000-8000-000000000000";
const MIG_B: &str = "MIG-bbbbbbbb-0000-4000-8000-000000000000";

fn uuid(index: u32) -> String {
    format!("GPU-00000000-0000-4000-8000-00000000000{index}")
}

/// Four GPUs; GPU 0 in MIG mode with two devices.
fn lab() -> GpuSnapshot {
    GpuSnapshot {
        gpus: (0..4)
            .map(|index| GpuDevice {
                index,
                uuid: uuid(index),
                mig_enabled: Some(index == 0),
                mig_devices: if index == 0 {
                    [MIG_A, MIG_B]
                        .iter()
                        .map(|mig| MigDevice {
                            uuid: (*mig).to_owned(),
                            gpu_instance_id: None,
                            memory_total_bytes: None,
                            processes: Vec::new(),
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                ..GpuDevice::default()
            })
            .collect(),
        ..GpuSnapshot::default()
    }
}

fn access(devices: &[&str], via: GpuVia, cuda: Option<&[&str]>) -> GpuAccess {
    GpuAccess {
        has_gpu: !devices.is_empty(),
        granted: devices
            .iter()
            .map(|device| GpuGrant {
                device: (*device).to_owned(),
                via,
            })
            .collect(),
        cuda_visible: cuda.map(|list| list.iter().map(|entry| (*entry).to_owned()).collect()),
        ..GpuAccess::default()
    }
}

fn held(resolved: &ResolvedGpus) -> Vec<String> {
    resolved
        .granted
        .iter()
        .map(|held| held.uuid.clone())
        .collect()
}

#[test]
fn every_device_form_resolves_through_nvml() {
    let snapshot = lab();
    let all: Vec<String> = (0..4).map(uuid).collect();
    let one = uuid(1);
    let cases: Vec<(&str, Vec<&str>, Vec<String>)> = vec![
        ("all", vec!["all"], all.clone()),
        ("indexes", vec!["1", "0"], vec![uuid(0), uuid(1)]),
        ("a UUID", vec![&one], vec![uuid(1)]),
        ("MIG device 1 of GPU 0", vec!["0:1"], vec![MIG_B.to_owned()]),
        ("MIG device 0 of GPU 0", vec!["0:0"], vec![MIG_A.to_owned()]),
        ("a MIG UUID", vec![MIG_A], vec![MIG_A.to_owned()]),
        ("index 2", vec!["2"], vec![uuid(2)]),
        ("duplicates once", vec!["all", "1"], all),
        ("nothing", vec![], vec![]),
    ];
    for (what, devices, expected) in cases {
        let resolved = resolve(&access(&devices, GpuVia::Environ, None), &snapshot);
        assert_eq!(held(&resolved), expected, "{what}");
        assert!(resolved.unresolved.is_empty(), "{what}: {resolved:?}");
        assert!(
            resolved
                .granted
                .iter()
                .all(|held| held.via == GpuVia::Environ && !held.narrowed),
            "{what}"
        );
    }
}

#[test]
fn ids_nvml_does_not_report_are_kept_out_of_the_grant_and_reported() {
    let resolved = resolve(
        &access(
            &["GPU-nope", "7", "0:5", "1:0", "3"],
            GpuVia::DeviceRequest,
            None,
        ),
        &lab(),
    );
    assert_eq!(held(&resolved), [uuid(3)]);
    assert_eq!(resolved.unresolved, ["GPU-nope", "7", "0:5", "1:0"]);
    assert_eq!(resolved.uuids(), [uuid(3)]);
    // With no GPU backend nothing is granted, and everything is reported.
    let none = resolve(
        &access(&["all", "0"], GpuVia::Env, None),
        &GpuSnapshot::default(),
    );
    assert!(none.granted.is_empty());
    assert_eq!(none.unresolved, ["all", "0"]);
}

#[test]
fn labels_stay_claims_and_never_reach_the_grant() {
    let mut claimed = access(&[], GpuVia::Env, None);
    claimed.claims = [
        (uuid(2), "ds01.gpu.uuid"),
        ("0.1".to_owned(), "ds01.gpu_slot"),
        ("GPU-ghost".to_owned(), "ds01.gpu.uuids"),
    ]
    .into_iter()
    .map(|(device, label)| GpuClaim {
        device,
        label: label.to_owned(),
    })
    .collect();
    let resolved = resolve(&claimed, &lab());
    assert!(resolved.granted.is_empty());
    assert!(resolved.uuids().is_empty());
    let claims: Vec<(Option<&str>, &str)> = resolved
        .claims
        .iter()
        .map(|claim| (claim.uuid.as_deref(), claim.label.as_str()))
        .collect();
    assert_eq!(
        claims,
        [
            (Some(uuid(2).as_str()), "ds01.gpu.uuid"),
            (Some(MIG_B), "ds01.gpu_slot"),
            (None, "ds01.gpu.uuids")
        ]
    );
    assert_eq!(resolved.unresolved, ["GPU-ghost"]);
}

#[test]
fn cuda_visible_devices_narrows_and_never_widens() {
    let snapshot = lab();
    let narrowed = |devices: &[&str], cuda: &[&str]| {
        resolve(&access(devices, GpuVia::Env, Some(cuda)), &snapshot)
    };
    // A MIG UUID inside a granted parent GPU (what the lab's wrapper sets).
    let mig = narrowed(&["all"], &[MIG_B]);
    assert_eq!(held(&mig), [MIG_B]);
    assert!(mig.granted[0].narrowed);
    // Indexes count among the granted devices in NVML order.
    assert_eq!(held(&narrowed(&["3", "1"], &["1"])), [uuid(3)]);
    // A UUID that was not granted cannot widen; a list stops at its first unknown entry.
    let u2 = uuid(2);
    let u3 = uuid(3);
    assert_eq!(held(&narrowed(&["3"], &[&u3, &u2])), [uuid(3)]);
    assert_eq!(held(&narrowed(&["1", "3"], &["1", "9", "0"])), [uuid(3)]);
    // Naming none of the granted devices (or empty) leaves the grant as it is.
    assert_eq!(held(&narrowed(&["3"], &[&u2])), [uuid(3)]);
    assert_eq!(held(&narrowed(&["3"], &[])), [uuid(3)]);
    assert!(!narrowed(&["3"], &[]).granted[0].narrowed);
}
