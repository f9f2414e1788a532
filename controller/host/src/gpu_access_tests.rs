use super::*;

const UUID1: &str = "GPU-11111111-0000-4000-8000-000000000001";
const CUDA_IMAGE_ENV: &str = "NVIDIA_VISIBLE_DEVICES=all";

/// One container as Docker records it.
struct Case {
    what: &'static str,
    runtime: Option<&'static str>,
    requests: Vec<GpuRequest>,
    env: Vec<&'static str>,
    devices: Vec<&'static str>,
    labels: Vec<(&'static str, &'static str)>,
}

impl Case {
    fn new(what: &'static str) -> Self {
        Case {
            what,
            runtime: Some("runc"),
            requests: Vec::new(),
            env: vec!["PATH=/bin"],
            devices: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn runtime(mut self, runtime: Option<&'static str>) -> Self {
        self.runtime = runtime;
        self
    }
    fn nvidia(self) -> Self {
        self.runtime(Some("nvidia"))
    }
    fn env(mut self, entry: &'static str) -> Self {
        self.env.push(entry);
        self
    }
    fn gpus(mut self, count: i64, ids: &[&str]) -> Self {
        self.requests.push(GpuRequest {
            count,
            device_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        });
        self
    }
    fn device(mut self, path: &'static str) -> Self {
        self.devices.push(path);
        self
    }
    fn label(mut self, key: &'static str, value: &'static str) -> Self {
        self.labels.push((key, value));
        self
    }
    fn access(&self) -> GpuAccess {
        let env: Vec<String> = self.env.iter().map(|entry| (*entry).to_owned()).collect();
        let labels: BTreeMap<String, String> = self
            .labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        GpuAccess::from_record(&GpuRecord {
            runtime: self.runtime,
            requests: self.requests.clone(),
            env: &env,
            device_paths: self.devices.clone(),
            labels: &labels,
        })
    }
}

fn granted(access: &GpuAccess) -> Vec<(String, GpuVia)> {
    access
        .granted
        .iter()
        .map(|grant| (grant.device.clone(), grant.via))
        .collect()
}

fn expect(devices: &[(&str, GpuVia)]) -> Vec<(String, GpuVia)> {
    devices
        .iter()
        .map(|(device, via)| ((*device).to_owned(), *via))
        .collect()
}

#[test]
fn docker_records_are_attributed_as_the_toolkit_grants() {
    use GpuVia::{DeviceRequest, Devices, Env};
    let cases: Vec<(Case, Vec<(String, GpuVia)>)> = vec![
        (Case::new("plain image, nvidia runtime").nvidia(), vec![]),
        (
            Case::new("cuda image, --gpus device=uuid")
                .nvidia()
                .env(CUDA_IMAGE_ENV)
                .gpus(0, &[UUID1]),
            expect(&[(UUID1, DeviceRequest)]),
        ),
        (
            Case::new("cuda image, nvidia runtime")
                .nvidia()
                .env(CUDA_IMAGE_ENV),
            expect(&[("all", Env)]),
        ),
        (
            Case::new("cuda image, --runtime runc").env(CUDA_IMAGE_ENV),
            vec![],
        ),
        (
            Case::new("cuda image, no runtime recorded")
                .runtime(None)
                .env(CUDA_IMAGE_ENV),
            vec![],
        ),
        (
            Case::new("-e NVIDIA_VISIBLE_DEVICES=none")
                .nvidia()
                .env(CUDA_IMAGE_ENV)
                .env("NVIDIA_VISIBLE_DEVICES=none"),
            vec![],
        ),
        (
            Case::new("void")
                .nvidia()
                .env("NVIDIA_VISIBLE_DEVICES=void"),
            vec![],
        ),
        (
            Case::new("empty").nvidia().env("NVIDIA_VISIBLE_DEVICES="),
            vec![],
        ),
        (
            Case::new("--gpus 2 = the first two indexes")
                .nvidia()
                .env(CUDA_IMAGE_ENV)
                .gpus(2, &[]),
            expect(&[("0", DeviceRequest), ("1", DeviceRequest)]),
        ),
        (
            Case::new("--gpus all under runc").gpus(-1, &[]),
            expect(&[("all", DeviceRequest)]),
        ),
        (
            Case::new("--gpus device=0:1 (MIG)")
                .nvidia()
                .gpus(0, &["0:1"]),
            expect(&[("0:1", DeviceRequest)]),
        ),
        (
            Case::new("--gpus device=2").nvidia().gpus(0, &["2"]),
            expect(&[("2", DeviceRequest)]),
        ),
        (
            Case::new("--gpus with count 0 leaves the image env to the hook, any runtime")
                .env("NVIDIA_VISIBLE_DEVICES=3")
                .gpus(0, &[]),
            expect(&[("3", Env)]),
        ),
        (
            Case::new("the last of several device requests wins")
                .gpus(0, &["1"])
                .gpus(0, &["2,3"]),
            expect(&[("2", DeviceRequest), ("3", DeviceRequest)]),
        ),
        (
            Case::new("index and UUID list in the env")
                .nvidia()
                .env("NVIDIA_VISIBLE_DEVICES=1, GPU-abc,,0:0"),
            expect(&[("1", Env), ("GPU-abc", Env), ("0:0", Env)]),
        ),
        (
            Case::new("the last NVIDIA_VISIBLE_DEVICES wins")
                .nvidia()
                .env("NVIDIA_VISIBLE_DEVICES=all")
                .env("NVIDIA_VISIBLE_DEVICES=2"),
            expect(&[("2", Env)]),
        ),
        (
            Case::new("all anywhere in a list is all")
                .nvidia()
                .env("NVIDIA_VISIBLE_DEVICES=0,all"),
            expect(&[("all", Env)]),
        ),
        (
            Case::new("legacy CUDA image without NVIDIA_VISIBLE_DEVICES")
                .nvidia()
                .env("CUDA_VERSION=11.8.0"),
            expect(&[("all", Env)]),
        ),
        (
            Case::new("NVIDIA_REQUIRE_CUDA makes it a non-legacy image")
                .nvidia()
                .env("CUDA_VERSION=11.8.0")
                .env("NVIDIA_REQUIRE_CUDA=cuda>=11.8"),
            vec![],
        ),
        (
            Case::new("/dev/nvidia1 under runc")
                .device("/dev/nvidia1")
                .device("/dev/nvidiactl")
                .device("/dev/nvidia-uvm")
                .device("/dev/sda"),
            expect(&[("1", Devices)]),
        ),
        (
            Case::new("device nodes add to the env's devices")
                .nvidia()
                .env("NVIDIA_VISIBLE_DEVICES=0")
                .device("/dev/nvidia0")
                .device("/dev/nvidia3"),
            expect(&[("0", Env), ("3", Devices)]),
        ),
        (
            Case::new("labels are claims, not grants")
                .nvidia()
                .label("ds01.gpu.uuid", UUID1)
                .label("ds01.gpu_slot", "1.0"),
            vec![],
        ),
    ];
    for (case, expected) in cases {
        let access = case.access();
        assert_eq!(granted(&access), expected, "{}", case.what);
        assert_eq!(access.has_gpu, !expected.is_empty(), "{}", case.what);
        assert_eq!(access.env_source, EnvSource::Inspect, "{}", case.what);
    }
}

#[test]
fn labels_are_kept_as_claims_with_their_label() {
    let access = Case::new("claims")
        .label("ds01.gpu.uuids", "GPU-a, GPU-b")
        .label("ds01.gpu_slot", "1.2")
        .label("ds01.gpu.uuid", "")
        .access();
    let claims: Vec<(&str, &str)> = access
        .claims
        .iter()
        .map(|claim| (claim.device.as_str(), claim.label.as_str()))
        .collect();
    assert_eq!(
        claims,
        [
            ("GPU-a", "ds01.gpu.uuids"),
            ("GPU-b", "ds01.gpu.uuids"),
            ("1.2", "ds01.gpu_slot")
        ]
    );
    assert!(!access.has_gpu);
}

#[test]
fn cuda_visible_devices_is_kept_as_written_and_the_last_one_counts() {
    let access = Case::new("cuda visible")
        .nvidia()
        .env("NVIDIA_VISIBLE_DEVICES=all")
        .env("CUDA_VISIBLE_DEVICES=0")
        .env("CUDA_VISIBLE_DEVICES=MIG-a, 1")
        .access();
    assert_eq!(
        access.cuda_visible,
        Some(vec!["MIG-a".to_owned(), "1".to_owned()])
    );
    let empty = Case::new("empty").env("CUDA_VISIBLE_DEVICES=").access();
    assert_eq!(empty.cuda_visible, Some(Vec::new()));
    assert_eq!(Case::new("unset").access().cuda_visible, None);
}

#[test]
fn pid_1_environment_overrides_the_record_but_not_the_hook_decision() {
    let environ = |entries: &[&str]| -> Vec<String> {
        entries.iter().map(|entry| (*entry).to_owned()).collect()
    };
    // --gpus device=uuid on a CUDA image: PID 1 got the appended value last.
    let requested = Case::new("requested")
        .nvidia()
        .env(CUDA_IMAGE_ENV)
        .gpus(0, &[UUID1])
        .access();
    let running = requested.with_environ(&environ(&[
        "NVIDIA_VISIBLE_DEVICES=all",
        &format!("NVIDIA_VISIBLE_DEVICES={UUID1}"),
    ]));
    assert_eq!(granted(&running), expect(&[(UUID1, GpuVia::Environ)]));
    assert_eq!(running.env_source, EnvSource::Environ);
    assert_eq!(running.requested.as_deref(), Some(UUID1));

    // The record says `all`, but PID 1 was started with a narrower value.
    let image = Case::new("image").nvidia().env(CUDA_IMAGE_ENV).access();
    let narrowed = image.with_environ(&environ(&["NVIDIA_VISIBLE_DEVICES=1,2"]));
    assert_eq!(
        granted(&narrowed),
        expect(&[("1", GpuVia::Environ), ("2", GpuVia::Environ)])
    );

    // Without the hook the environment grants nothing, even in PID 1.
    let runc = Case::new("runc")
        .env(CUDA_IMAGE_ENV)
        .device("/dev/nvidia3")
        .access();
    let running = runc.with_environ(&environ(&["NVIDIA_VISIBLE_DEVICES=all"]));
    assert_eq!(granted(&running), expect(&[("3", GpuVia::Devices)]));

    // PID 1 without the variable, none, and CUDA_VISIBLE_DEVICES.
    assert!(!image.with_environ(&[]).has_gpu);
    assert!(
        !image
            .with_environ(&environ(&["NVIDIA_VISIBLE_DEVICES=none"]))
            .has_gpu
    );
    let cuda = image.with_environ(&environ(&[
        "NVIDIA_VISIBLE_DEVICES=all",
        "CUDA_VISIBLE_DEVICES=MIG-x",
    ]));
    assert_eq!(cuda.cuda_visible, Some(vec!["MIG-x".to_owned()]));
}

#[test]
fn appended_env_follows_dockerd() {
    let request = |count, ids: &[&str]| GpuRequest {
        count,
        device_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
    };
    assert_eq!(request(3, &[]).appended_env().as_deref(), Some("0,1,2"));
    assert_eq!(request(-1, &[]).appended_env().as_deref(), Some("all"));
    assert_eq!(request(0, &[]).appended_env(), None);
    assert_eq!(
        request(0, &["0", "GPU-x"]).appended_env().as_deref(),
        Some("0,GPU-x")
    );
}

#[test]
fn a_huge_claim_label_or_count_is_read_only_up_to_the_cap() {
    let label = "x,".repeat(100_000) + &"y".repeat(1000);
    let mut labels = std::collections::BTreeMap::new();
    for key in GPU_CLAIM_LABELS {
        labels.insert((*key).to_owned(), label.clone());
    }
    let distinct: String = (0..1000).map(|n| format!("GPU-{n},")).collect();
    labels.insert("ds01.gpu.uuid".to_owned(), distinct.clone());
    let env = vec![format!("CUDA_VISIBLE_DEVICES={distinct}")];
    let requests = vec![GpuRequest {
        count: i64::MAX,
        device_ids: Vec::new(),
    }];
    let record = GpuRecord {
        runtime: Some("nvidia"),
        requests,
        env: &env,
        device_paths: Vec::new(),
        labels: &labels,
    };
    let access = GpuAccess::from_record(&record);
    assert!(
        access.claims.len() <= MAX_DEVICES,
        "{}",
        access.claims.len()
    );
    assert_eq!(access.granted.len(), MAX_DEVICES);
    assert!(
        access
            .cuda_visible
            .is_some_and(|list| list.len() == MAX_DEVICES)
    );
    assert!(access.requested.is_some_and(|value| value.len() < 1000));
}
