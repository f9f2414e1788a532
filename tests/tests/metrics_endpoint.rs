//! The metrics endpoint as Prometheus and a hostile local user meet it: the format a scraper
//! asks for (Prometheus text 0.0.4 or OpenMetrics 1.0.0), checked by `promtool` when it is
//! installed, and 1,100 idle connections that leave the control API answering and the state
//! and event files writable.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use ds01_tests::{Daemon, DaemonOptions};

const WAIT: Duration = Duration::from_secs(30);

/// `GET /metrics` with `accept` (none when `None`): (content type, body).
fn scrape(daemon: &Daemon, accept: Option<&str>) -> (String, String) {
    let mut stream = TcpStream::connect(&daemon.metrics_addr).expect("connect to the metrics port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let accept = accept.map_or_else(String::new, |accept| format!("Accept: {accept}\r\n"));
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .expect("a content type");
    (content_type, body.to_owned())
}

/// Runs promtool with `arguments`, `input` on stdin: `None` when promtool is not installed.
fn promtool(arguments: &[&str], input: &str) -> Option<(bool, String)> {
    let mut child = match Command::new("promtool")
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => panic!("promtool: {error}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool output");
    Some((
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    ))
}

fn started_daemon(options: DaemonOptions) -> Daemon {
    let daemon = Daemon::start(options);
    daemon.wait_for_socket(WAIT);
    let started = Instant::now();
    while daemon.metrics().is_none() {
        assert!(
            started.elapsed() < WAIT,
            "metrics never answered:\n{}",
            daemon.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon
}

#[test]
fn metrics_come_in_the_format_the_scraper_asks_for_and_promtool_accepts_them() {
    let daemon = started_daemon(DaemonOptions::default());
    // What Prometheus 2.x sends: OpenMetrics first.
    let (content_type, open_metrics) = scrape(
        &daemon,
        Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        ),
    );
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(open_metrics.ends_with("# EOF\n"), "{open_metrics}");
    assert!(open_metrics.contains("# TYPE ds01_reconciles counter\n"));
    assert!(open_metrics.contains("ds01_reconciles_total{"));

    // A scraper that asks for the classic text format, and one that asks for nothing.
    for accept in [Some("text/plain;version=0.0.4"), None, Some("*/*")] {
        let (content_type, text) = scrape(&daemon, accept);
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "Accept: {accept:?}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        assert!(text.contains("# HELP ds01_reconciles_total "), "{text}");
        assert!(
            text.contains("# TYPE ds01_reconciles_total counter\n"),
            "{text}"
        );
        // Known label values are there from the start, at zero.
        for series in [
            "ds01_containers{origin=\"docker\",state=\"exited\",gpu=\"true\"} ",
            "ds01_gpu_resets_total{result=\"failed\"} 0",
        ] {
            assert!(text.contains(series), "{series} missing:\n{text}");
        }
    }

    let (_, text) = scrape(&daemon, Some("text/plain"));
    match promtool(&["check", "metrics"], &text) {
        None => eprintln!(
            "SKIPPED: promtool is not installed (Debian package prometheus); the 0.0.4 text was not linted"
        ),
        Some((clean, said)) => assert!(clean, "promtool check metrics:\n{said}\n{text}"),
    }
    // promtool's linter reads only the 0.0.4 text format; Prometheus' OpenMetrics parser is
    // reachable through the backfill command, which wants a timestamp on every sample.
    let stamped: String = open_metrics
        .lines()
        .map(|line| {
            if line.starts_with('#') {
                format!("{line}\n")
            } else {
                format!("{line} 1700000000\n")
            }
        })
        .collect();
    let directory = tempfile::tempdir().expect("tempdir");
    let input = directory.path().join("metrics.om");
    std::fs::write(&input, stamped).expect("write");
    let blocks = directory.path().join("blocks");
    match promtool(
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            &input.display().to_string(),
            &blocks.display().to_string(),
        ],
        "",
    ) {
        None => {
            eprintln!("SKIPPED: promtool is not installed; the OpenMetrics text was not parsed")
        }
        Some((clean, said)) => assert!(
            clean,
            "promtool's OpenMetrics parser:\n{said}\n{open_metrics}"
        ),
    }
}

/// Raises this process's open-file limit so it can hold `wanted` connections.
fn allow_open_files(wanted: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < wanted {
        assert!(
            hard >= wanted,
            "this test holds {wanted} connections; the hard open-file limit is {hard}"
        );
        setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).expect("setrlimit");
    }
}

#[test]
fn idle_metrics_connections_leave_the_control_api_answering_and_files_writable() {
    // 1024: the soft open-file limit a service has under systemd unless its unit raises it.
    let daemon = started_daemon(DaemonOptions {
        open_files_limit: Some(1024),
        ..DaemonOptions::default()
    });
    allow_open_files(1400);
    let idle: Vec<TcpStream> = (0..1100)
        .map(|index| {
            TcpStream::connect(&daemon.metrics_addr)
                .unwrap_or_else(|error| panic!("idle connection {index}: {error}"))
        })
        .collect();
    // Let the controller accept (or refuse) all of them.
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let (code, stdout, stderr) = daemon.ctl(&["status"]);
    let took = started.elapsed();
    assert_eq!(
        code,
        0,
        "status failed: {stdout}{stderr}\n{}",
        daemon.output()
    );
    eprintln!("status answered in {took:?} with 1,100 idle metrics connections open");
    assert!(
        took < Duration::from_secs(1),
        "status took {took:?} with 1,100 idle metrics connections"
    );

    // A scraper still gets through while the idle connections are held: the oldest idle one
    // gives way to it.
    let started = Instant::now();
    let scraped = daemon.metrics();
    assert!(
        scraped.is_some_and(|text| text.contains("ds01_")),
        "no scrape with idle connections held:\n{}",
        daemon.output()
    );
    eprintln!(
        "scrape answered in {:?} with the idle connections held",
        started.elapsed()
    );

    // State and event files are still writable: an applied spec is stored and recorded.
    let spec = daemon.root().join("orphans.yaml");
    std::fs::write(
        &spec,
        "apiVersion: ds01.io/v1alpha1\nkind: GpuOrphanPolicy\nmetadata: {name: under-load}\nspec:\n  mode: dryRun\n",
    )
    .expect("write spec");
    let (code, stdout, stderr) = daemon.ctl(&["apply", "-f", &spec.display().to_string()]);
    assert_eq!(
        code,
        0,
        "apply failed: {stdout}{stderr}\n{}",
        daemon.output()
    );
    assert!(
        daemon
            .root()
            .join("state/specs/gpuorphanpolicy-under-load.json")
            .exists(),
        "the applied spec was not stored"
    );
    daemon.wait_for_event(Duration::from_secs(5), "spec.applied", |event| {
        event["event_type"] == "spec.applied"
            && event["details"]["resource"] == "gpuorphanpolicy/under-load"
    });

    drop(idle);
    let started = Instant::now();
    while daemon.metrics().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "metrics did not answer again after the idle connections closed:\n{}",
            daemon.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
