//! What `ds01ctl import-legacy` says about the import on standard error (each changed value
//! old → new, each value not carried over, and nothing carried over reported as lost), and its
//! options: `--layer-overrides`, `--inline-members`, `--compose`.

mod common;

use common::{import, legacy};

fn notices(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.starts_with("hint: "))
        .collect()
}

#[test]
fn changed_and_dropped_values_are_printed_once_and_nothing_carried_over_is_called_lost() {
    let (_, stderr) = import(&[]);
    let lines = notices(&stderr);
    for expected in [
        // Date only: the import's reading, and what the incumbent did.
        "changes meaning: lifecycle-exemptions.yaml exemptions[0].expires_on: \"2030-06-30\" → expires: 2030-07-01T00:00:00Z",
        // Values the incumbent's scripts applied differently than written.
        "changes meaning: container_types.api.idle_timeout_h: null → idleTimeout: null",
        "changes meaning: container_types.api.max_runtime_h: 24 → maxRuntime: 1d",
        "changes meaning: policies.idle_detection_window (everywhere)",
        // Not lifecycle settings.
        "not carried over: defaults.{max_gpu_equivalents, max_gpu_slots_per_container, max_containers_per_user}",
        "not carried over: groups.student.{max_gpu_equivalents, aggregate}",
        "not carried over: policies.gpu_hold_after_manual_stop_m: 15 (the incumbent never read it)",
        "not carried over: bare_metal_access.state_dir",
    ] {
        assert!(
            lines.iter().any(|line| line.contains(expected)),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    let mut unique = lines.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "a notice is repeated:\n{stderr}");
    // Values that are carried over are never reported as lost.
    for carried in [
        "idle_timeout_h",
        "max_runtime_h",
        "gpu_hold_after_stop_h",
        "container_hold_after_stop_h",
        "high_demand",
        "keepalive",
        "grace_period_m",
        "created_container_timeout_m",
        "sigterm_grace_s",
        "approved_by",
        "approved_on",
        "category",
        "exempt_users",
        "members",
        "expires_on",
    ] {
        assert!(
            !lines
                .iter()
                .any(|line| line.starts_with("hint: not carried over") && line.contains(carried)),
            "`{carried}` is carried over but reported lost:\n{stderr}"
        );
    }
}

#[test]
fn layer_overrides_layers_users_on_their_group_and_lists_whose_limits_change() {
    let (stdout, stderr) = import(&["--layer-overrides"]);
    assert!(stdout.contains("userOverrides: layer"), "{stdout}");
    // pat.override is a researcher: layering gives him the group's 1 h idle timeout.
    assert!(
        stderr.contains("pat.override@example.lan: idleTimeout 30m → 1h (groups.researcher) [orchestration, atomic"),
        "{stderr}"
    );
    // quota.only and o.nolimit are in no group: the default group (student) sets no lifecycle
    // value the defaults do not, so nothing changes for them.
    assert!(
        !stderr.contains("quota.only@example.lan: idleTimeout"),
        "{stderr}"
    );
    let (stdout, stderr) = import(&[]);
    assert!(stdout.contains("userOverrides: replaceGroup"), "{stdout}");
    assert!(!stderr.contains("--layer-overrides"), "{stderr}");
}

#[test]
fn members_files_are_referenced_or_inlined() {
    let (stdout, _) = import(&[]);
    let students = legacy().join("groups/student.members");
    let students = std::fs::canonicalize(students).expect("fixture");
    assert!(
        stdout.contains(&format!("membersFile: {}", students.display())),
        "{stdout}"
    );
    let (stdout, _) = import(&["--inline-members"]);
    assert!(!stdout.contains("membersFile"), "{stdout}");
    for member in [
        "- stud1@example.lan",
        "- r_search",
        "- prof.inline@example.lan",
    ] {
        assert!(stdout.contains(member), "{member} not inlined:\n{stdout}");
    }
}

#[test]
fn the_compose_service_becomes_a_dcgm_exporter_with_its_network_alias_and_log_rotation() {
    let compose = legacy().join("monitoring/docker-compose.yaml");
    let (stdout, stderr) = import(&["--compose", compose.to_str().expect("utf-8")]);
    let exporter = stdout
        .split("kind: DcgmExporter")
        .nth(1)
        .expect("a DcgmExporter document");
    for expected in [
        "containerName: ds01-dcgm-exporter",
        "image: nvcr.io/nvidia/k8s/dcgm-exporter:3.3.0-3.2.0-ubuntu22.04",
        "port: 9400",
        "bindAddress: 127.0.0.1",
        "DCGM_EXPORTER_COLLECTORS: /etc/dcgm-exporter/dcp-metrics-included.csv",
        "ds01.monitoring: \"true\"",
        "memoryLimit: 512MiB",
        "cpuLimit: 0.25",
        "- SYS_ADMIN",
        "name: ds01-monitoring",
        "- dcgm-exporter",
        "logMaxSize: 10MiB",
        "logMaxFiles: 5",
    ] {
        assert!(
            exporter.contains(expected),
            "`{expected}` missing:\n{exporter}"
        );
    }
    assert!(
        !stderr.contains("networks") && !stderr.contains("logging"),
        "networks and log rotation are carried over, not reported as lost: {stderr}"
    );
    // The GpuOrphanPolicy from bare_metal_access, in dry run.
    let orphans = stdout
        .split("kind: GpuOrphanPolicy")
        .nth(1)
        .expect("a GpuOrphanPolicy");
    assert!(
        orphans.contains("mode: dryRun") && orphans.contains("- labadmin"),
        "{orphans}"
    );
}
