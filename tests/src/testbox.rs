//! The local test image `ds01/testbox:latest`: a static busybox with every applet linked,
//! imported with `docker import` semantics (no registry needed), built once and reused.

use std::path::Path;

use bollard::{Docker, body_full, query_parameters::CreateImageOptionsBuilder};
use futures::StreamExt;

/// Image every end-to-end test runs.
pub const TESTBOX_IMAGE: &str = "ds01/testbox:latest";

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
    let busybox = BUSYBOX_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("no static busybox found at {BUSYBOX_CANDIDATES:?}: install Debian's busybox-static (`.ci/run` does)"));
    let rootfs = rootfs_tar(busybox);
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo("ds01/testbox")
        .tag("latest")
        .changes(vec![
            "CMD [\"/bin/sh\"]".to_owned(),
            "ENV PATH=/bin".to_owned(),
            format!("LABEL ds01.testbox.version={TESTBOX_VERSION}"),
        ])
        .build();
    let mut progress = docker.create_image(Some(options), Some(body_full(rootfs.into())), None);
    while let Some(step) = progress.next().await {
        if let Err(error) = step {
            panic!("importing {TESTBOX_IMAGE} failed: {error}");
        }
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
