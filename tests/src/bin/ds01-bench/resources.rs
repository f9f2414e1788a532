//! Resource use against the incumbent-like baseline (DESIGN §8 items 4 and 5): a cold full
//! observation (`ds01-controller --once --dry-run` against one baseline scan), and the steady
//! state (the daemon with a 60 s sample interval against the baseline run every 30 s).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use ds01_tests::{ContainerRequest, Daemon, DaemonOptions, TestScope, binaries::binary};
use nix::sys::resource::{UsageWho, getrusage};

/// Wall seconds, CPU seconds (user + system) and peak RSS (KiB) of one process.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    wall: f64,
    cpu: f64,
    max_rss_kib: i64,
}

fn baseline_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/incumbent_scan.py")
}

/// `measure -- COMMAND…`: runs COMMAND (output discarded) and prints `MEASURE wall cpu rss`.
pub fn measure_child() {
    let arguments: Vec<String> = std::env::args()
        .skip_while(|arg| arg != "--")
        .skip(1)
        .collect();
    let Some((program, rest)) = arguments.split_first() else {
        eprintln!("usage: ds01-bench measure -- COMMAND…");
        return;
    };
    let started = Instant::now();
    let status = Command::new(program)
        .args(rest)
        .stdout(Stdio::null())
        .status();
    let wall = started.elapsed().as_secs_f64();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let seconds = |time: nix::sys::time::TimeVal| {
        #[expect(clippy::cast_precision_loss, reason = "seconds")]
        let value = time.tv_sec() as f64 + time.tv_usec() as f64 / 1e6;
        value
    };
    let cpu = seconds(usage.user_time()) + seconds(usage.system_time());
    println!(
        "MEASURE {wall:.4} {cpu:.4} {} {}",
        usage.max_rss(),
        status.map_or(-1, |status| status.code().unwrap_or(-1))
    );
}

/// Runs `command` under `ds01-bench measure` (so its children are counted alone).
fn measure(command: &[&str]) -> Usage {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .arg("measure")
        .arg("--")
        .args(command)
        .output()
        .expect("run the measure helper");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("MEASURE "))
        .unwrap_or_else(|| {
            panic!(
                "no measurement: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.get(3), Some(&"0"), "{command:?} failed: {line}");
    Usage {
        wall: fields[0].parse().unwrap_or(f64::NAN),
        cpu: fields[1].parse().unwrap_or(f64::NAN),
        max_rss_kib: fields[2].parse().unwrap_or(0),
    }
}

/// Creates `total` containers, the first `running` of them started, 16 at a time.
async fn populate(scope: &TestScope, total: usize, running: usize) {
    let started = Instant::now();
    for chunk in (0..total).collect::<Vec<_>>().chunks(16) {
        let requests = chunk.iter().map(|index| {
            let request =
                ContainerRequest::sleeper(&format!("p{index}")).label("ds01.user", "bench");
            let request = if *index < running {
                request
            } else {
                request.created_only()
            };
            scope.container(request)
        });
        futures::future::join_all(requests).await;
    }
    eprintln!(
        "created {total} containers ({running} running) in {:.0}s",
        started.elapsed().as_secs_f64()
    );
}

fn once_command(state: &Path) -> Vec<String> {
    vec![
        binary("ds01-controller").display().to_string(),
        "--once".into(),
        "--dry-run".into(),
        "--gpu-backend".into(),
        "none".into(),
        "--state-dir".into(),
        state.display().to_string(),
        "--event-log".into(),
        state.join("events.jsonl").display().to_string(),
    ]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `cold`: five alternating runs of each, medians.
pub async fn cold(containers: usize, running: usize) {
    let scope = TestScope::new("bench-cold").await;
    populate(&scope, containers, running).await;
    let directory = tempfile::tempdir().expect("tempdir");
    let output = directory.path().join("baseline-inventory.json");
    let once = once_command(directory.path());
    let once: Vec<&str> = once.iter().map(String::as_str).collect();
    let script = baseline_script().display().to_string();
    let baseline = [
        "python3",
        script.as_str(),
        output.to_str().unwrap_or_default(),
    ];
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        ours.push(measure(&once));
        theirs.push(measure(&baseline));
    }
    let summary = |runs: &[Usage]| {
        (
            median(runs.iter().map(|usage| usage.wall).collect()),
            median(runs.iter().map(|usage| usage.cpu).collect()),
            #[expect(clippy::cast_precision_loss, reason = "KiB")]
            median(
                runs.iter()
                    .map(|usage| usage.max_rss_kib as f64 / 1024.0)
                    .collect(),
            ),
        )
    };
    let (our_wall, our_cpu, our_rss) = summary(&ours);
    let (their_wall, their_cpu, their_rss) = summary(&theirs);
    println!("cold observation, {containers} containers ({running} running), median of 5:");
    println!(
        "  ds01-controller --once --dry-run: wall {our_wall:.3}s cpu {our_cpu:.3}s peak RSS {our_rss:.1} MiB"
    );
    println!(
        "  baseline scan (Python, Docker SDK): wall {their_wall:.3}s cpu {their_cpu:.3}s peak RSS {their_rss:.1} MiB"
    );
    println!(
        "  ratios (baseline / ds01): wall {:.1}x cpu {:.1}x RSS {:.1}x",
        their_wall / our_wall,
        their_cpu / our_cpu,
        their_rss / our_rss
    );
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); after the name they are at 11 and 12.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|index| fields.get(*index)?.parse::<f64>().ok())
        .sum();
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100);
    #[expect(clippy::cast_precision_loss, reason = "ticks per second")]
    let per_second = per_second as f64;
    ticks / per_second
}

/// Resident set size in MiB, from `/proc/<pid>/status`.
fn rss_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// `steady`: the daemon and the baseline side by side for `minutes`.
pub async fn steady(containers: usize, running: usize, minutes: usize) {
    let scope = TestScope::new("bench-steady").await;
    populate(&scope, containers, running).await;
    let daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(Duration::from_secs(60));
    let policy = daemon.root().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {name: bench}\nspec:\n  mode: dryRun\n  sampleInterval: 60s\n  scope: all\n  defaults: {idleTimeout: 12h, maxRuntime: 7d}\n  notify: {tty: false}\n",
    )
    .expect("policy");
    let (code, _, stderr) = daemon.ctl(&["apply", "-f", &policy.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    daemon.wait_for_inventory(Duration::from_secs(120), "every container", |inventory| {
        inventory["containers"]
            .as_object()
            .is_some_and(|map| map.len() >= containers)
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = daemon.child.id();
    let directory = tempfile::tempdir().expect("tempdir");
    let output = directory.path().join("baseline-inventory.json");
    let script = baseline_script().display().to_string();
    let duration = Duration::from_secs(60 * u64::try_from(minutes).unwrap_or(10));
    let started = Instant::now();
    let cpu_before = cpu_seconds(pid);
    let mut rss_samples = Vec::new();
    let mut baseline_runs = Vec::new();
    let mut next_baseline = Instant::now();
    while started.elapsed() < duration {
        if Instant::now() >= next_baseline {
            next_baseline += Duration::from_secs(30);
            let output = output.display().to_string();
            let script = script.clone();
            baseline_runs.push(tokio::task::spawn_blocking(move || {
                measure(&["python3", &script, &output])
            }));
        }
        rss_samples.push(rss_mib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let daemon_cpu = cpu_seconds(pid) - cpu_before;
    let peak = rss_mib(pid, "VmHWM:");
    let mut baseline_cpu = 0.0;
    let mut baseline_rss: f64 = 0.0;
    let runs = baseline_runs.len();
    for run in baseline_runs {
        let usage = run.await.expect("baseline run");
        baseline_cpu += usage.cpu;
        #[expect(clippy::cast_precision_loss, reason = "KiB")]
        let rss = usage.max_rss_kib as f64 / 1024.0;
        baseline_rss = baseline_rss.max(rss);
    }
    let per_hour = |cpu: f64| cpu / elapsed * 3600.0;
    println!(
        "steady state, {containers} containers ({running} running), {:.0} s:",
        elapsed
    );
    println!(
        "  ds01-controller (sampleInterval 60s): {:.2} CPU-s/h ({:.3}% of a core), RSS median {:.1} MiB, peak {:.1} MiB",
        per_hour(daemon_cpu),
        daemon_cpu / elapsed * 100.0,
        median(rss_samples),
        peak
    );
    println!(
        "  baseline every 30 s ({runs} runs): {:.1} CPU-s/h ({:.2}% of a core), peak RSS {:.1} MiB",
        per_hour(baseline_cpu),
        baseline_cpu / elapsed * 100.0,
        baseline_rss
    );
    println!(
        "  ratio (baseline / ds01) CPU: {:.0}x",
        baseline_cpu / daemon_cpu
    );
}
