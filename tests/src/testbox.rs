//! The local test image `ds01/testbox:latest`: a static busybox with every applet linked,
//! imported with `docker import` semantics (no registry needed), built once and reused.

use std::path::Path;

use bollard::{Docker, body_full, query_parameters::CreateImageOptionsBuilder};
use futures::StreamExt;

/// Image every end-to-end test runs.
pub const TESTBOX_IMAGE: &str = "ds01/testbox:latest";

/// The test image as a CUDA image looks to the NVIDIA toolkit: `ENV NVIDIA_VISIBLE_DEVICES=all`.
pub const CUDA_LIKE_IMAGE: &str = "ds01/cuda-like:latest";

/// The test image without a command: creating a container from it without one is refused
/// ("No command specified").
pub const NO_COMMAND_IMAGE: &str = "ds01/no-command:latest";

/// Bumped whenever the image content changes, so stale images are rebuilt.
const TESTBOX_VERSION: &str = "1";

/// Where a statically linked busybox is looked for (Debian's busybox-static).
const BUSYBOX_CANDIDATES: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];

/// Builds the image unless an up-to-date one is present on this engine.
///
/// # Panics
/// When no static busybox is installed or the engine refuses the import.
pub async fn ensure_testbox(docker: &Docker) {
    if let Ok(image) = docker.inspect_image(TESTBOX_IMAGE).await {
        let version = image
            .config
            .and_then(|config| config.labels)
            .and_then(|labels| labels.get("ds01.testbox.version").cloned());
        if version.as_deref() == Some(TESTBOX_VERSION) {
            return;
        }
    }
    let busybox = static_busybox();
    import(
        docker,
        busybox,
        "ds01/testbox",
        vec![
            "CMD [\"/bin/sh\"]".to_owned(),
            "ENV PATH=/bin".to_owned(),
            format!("LABEL ds01.testbox.version={TESTBOX_VERSION}"),
        ],
    )
    .await;
}

fn static_busybox() -> &'static Path {
    BUSYBOX_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("no static busybox found at {BUSYBOX_CANDIDATES:?}: install Debian's busybox-static (`.ci/run` does)"))
}

async fn import(docker: &Docker, busybox: &Path, repo: &str, changes: Vec<String>) {
    let rootfs = rootfs_tar(busybox);
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag("latest")
        .changes(changes)
        .build();
    let mut progress = docker.create_image(Some(options), Some(body_full(rootfs.into())), None);
    while let Some(step) = progress.next().await {
        if let Err(error) = step {
            panic!("importing {repo} failed: {error}");
        }
    }
}

/// Builds [`NO_COMMAND_IMAGE`] unless present.
///
/// # Panics
/// When no static busybox is installed or the engine refuses the import.
pub async fn ensure_no_command_image(docker: &Docker) {
    if docker.inspect_image(NO_COMMAND_IMAGE).await.is_ok() {
        return;
    }
    import(
        docker,
        static_busybox(),
        "ds01/no-command",
        vec!["ENV PATH=/bin".to_owned()],
    )
    .await;
}

/// Builds [`CUDA_LIKE_IMAGE`] unless present: `docker commit --change 'ENV
/// NVIDIA_VISIBLE_DEVICES=all'` of a container of the test image.
///
/// # Panics
/// When the engine refuses.
pub async fn ensure_cuda_like_image(docker: &Docker) {
    use bollard::{
        models::{ContainerConfig, ContainerCreateBody},
        query_parameters::{CommitContainerOptionsBuilder, RemoveContainerOptionsBuilder},
    };
    ensure_testbox(docker).await;
    if docker.inspect_image(CUDA_LIKE_IMAGE).await.is_ok() {
        return;
    }
    let body = ContainerCreateBody {
        image: Some(TESTBOX_IMAGE.to_owned()),
        ..ContainerCreateBody::default()
    };
    let base = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .unwrap_or_else(|error| panic!("creating the base of {CUDA_LIKE_IMAGE} failed: {error}"));
    let options = CommitContainerOptionsBuilder::new()
        .container(&base.id)
        .repo("ds01/cuda-like")
        .tag("latest")
        .changes("ENV NVIDIA_VISIBLE_DEVICES=all")
        .build();
    let committed = docker
        .commit_container(options, ContainerConfig::default())
        .await;
    let _ = docker
        .remove_container(
            &base.id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    if let Err(error) = committed {
        panic!("committing {CUDA_LIKE_IMAGE} failed: {error}");
    }
}

/// A root filesystem: busybox, a symlink per applet, /etc/passwd and the usual directories.
fn rootfs_tar(busybox: &Path) -> Vec<u8> {
    let applets = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", busybox.display()));
    let applets = String::from_utf8_lossy(&applets.stdout).into_owned();
    let mut builder = tar::Builder::new(Vec::new());
    for directory in [
        "bin/",
        "etc/",
        "tmp/",
        "workspace/",
        "proc/",
        "sys/",
        "dev/",
        "var/www/",
    ] {
        append_entry(
            &mut builder,
            directory,
            tar::EntryType::Directory,
            0o777,
            &[],
            None,
        );
    }
    let binary = std::fs::read(busybox)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", busybox.display()));
    append_entry(
        &mut builder,
        "bin/busybox",
        tar::EntryType::Regular,
        0o755,
        &binary,
        None,
    );
    for applet in applets
        .lines()
        .map(str::trim)
        .filter(|name| !name.is_empty() && *name != "busybox")
    {
        append_entry(
            &mut builder,
            &format!("bin/{applet}"),
            tar::EntryType::Symlink,
            0o777,
            &[],
            Some("busybox"),
        );
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:alice:/home/alice:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
    append_entry(
        &mut builder,
        "etc/passwd",
        tar::EntryType::Regular,
        0o644,
        passwd,
        None,
    );
    append_entry(
        &mut builder,
        "etc/group",
        tar::EntryType::Regular,
        0o644,
        b"root:x:0:\nalice:x:1000:\nnogroup:x:65534:\n",
        None,
    );
    builder
        .into_inner()
        .unwrap_or_else(|error| panic!("building the test rootfs failed: {error}"))
}

fn append_entry(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    mode: u32,
    data: &[u8],
    link: Option<&str>,
) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(data.len() as u64);
    header.set_mtime(0);
    if let Some(link) = link {
        header
            .set_link_name(link)
            .unwrap_or_else(|error| panic!("bad link {link}: {error}"));
    }
    builder
        .append_data(&mut header, path, data)
        .unwrap_or_else(|error| panic!("cannot add {path} to the rootfs: {error}"));
}
