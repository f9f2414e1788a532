//! The control API under bad clients: garbage bytes, oversized and malformed bodies, clients
//! that send half a request and wait, and one user opening connections without end. The daemon
//! answers each with a JSON error or closes the connection at its timeout, and keeps serving
//! everyone else.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::{Duration, Instant},
};

use ds01_tests::{Daemon, DaemonOptions};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Sends raw bytes and returns what came back before the server closed or 5 s passed.
fn exchange(daemon: &Daemon, request: &[u8]) -> String {
    let mut stream = UnixStream::connect(daemon.socket()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The server may answer (and close) before reading an oversized body to its end.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_code(answer: &str) -> Option<u16> {
    answer.split_whitespace().nth(1)?.parse().ok()
}

fn json_body(answer: &str) -> Value {
    answer
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null)
}

fn still_serving(daemon: &Daemon) {
    let started = Instant::now();
    let (code, stdout, stderr) = daemon.ctl(&["status", "-o", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "status took {:?}",
        started.elapsed()
    );
}

#[test]
fn garbage_oversized_and_malformed_requests_get_errors_and_the_daemon_keeps_serving() {
    let mut daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);

    let answer = exchange(&daemon, b"\x00\x01\x02 not http at all\r\n\r\n");
    assert!(
        answer.is_empty() || status_code(&answer) == Some(400),
        "garbage got: {answer:?}"
    );
    still_serving(&daemon);

    let size = 9 << 20;
    let mut oversized =
        format!("POST /v1/apply HTTP/1.1\r\nHost: ds01\r\nContent-Type: application/yaml\r\nContent-Length: {size}\r\n\r\n")
            .into_bytes();
    oversized.extend(std::iter::repeat_n(b'a', size));
    let answer = exchange(&daemon, &oversized);
    assert_eq!(
        status_code(&answer),
        Some(413),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert_eq!(
        json_body(&answer)["error"]["code"],
        "payload_too_large",
        "{answer}"
    );
    still_serving(&daemon);

    let body = "{{{ this is: [not yaml";
    let answer = exchange(
        &daemon,
        format!("POST /v1/apply HTTP/1.1\r\nHost: ds01\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
    );
    let code = status_code(&answer);
    assert!(
        matches!(code, Some(400 | 422)),
        "malformed body got: {answer}"
    );
    assert!(
        json_body(&answer)["error"]["message"].is_string(),
        "{answer}"
    );

    let answer = exchange(
        &daemon,
        b"GET /v2/nothing HTTP/1.1\r\nHost: ds01\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_code(&answer), Some(404), "{answer}");
    assert_eq!(json_body(&answer)["error"]["code"], "not_found");
    still_serving(&daemon);
    assert!(daemon.is_running(), "{}", daemon.output());
    assert_eq!(daemon.terminate(WAIT), Some(0));
}

#[test]
fn a_hundred_slow_clients_do_not_stop_the_api() {
    let mut daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    let slow: Vec<UnixStream> = (0..100)
        .map(|index| {
            let mut stream = UnixStream::connect(daemon.socket()).expect("connect");
            // Half a request line, or headers without their end, then nothing.
            let partial: &[u8] = if index % 2 == 0 {
                b"GET /v1/sta"
            } else {
                b"POST /v1/apply HTTP/1.1\r\nContent-Length: 100\r\n\r\nkind: "
            };
            stream.write_all(partial).expect("write");
            stream
        })
        .collect();
    for _ in 0..3 {
        still_serving(&daemon);
    }
    let (code, _, _) = daemon.ctl(&["get", "containers"]);
    assert_eq!(code, 0);
    drop(slow);
    still_serving(&daemon);
    assert_eq!(daemon.terminate(WAIT), Some(0));
}

/// Reads until the server closes the connection; returns what came back and when it closed.
fn until_closed(mut stream: UnixStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let mut answer = Vec::new();
    let closed = stream.read_to_end(&mut answer);
    assert!(
        closed.is_ok(),
        "still open after {limit:?} ({closed:?}); got {:?}",
        String::from_utf8_lossy(&answer)
    );
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn stalled_clients_are_disconnected_at_the_header_and_response_timeouts() {
    let mut daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    let connect = |bytes: &[u8]| {
        let mut stream = UnixStream::connect(daemon.socket()).expect("connect");
        stream.write_all(bytes).expect("write");
        stream
    };
    let silent = connect(b"");
    let half_line = connect(b"GET /v1/sta");
    let half_headers = connect(b"GET /v1/status HTTP/1.1\r\nHost: ds01\r\n");
    let short_body =
        connect(b"POST /v1/apply HTTP/1.1\r\nHost: ds01\r\nContent-Length: 100\r\n\r\nkind: ");
    still_serving(&daemon);
    // Headers must arrive within 10 s: each of these is closed, unanswered or with a 408.
    for stream in [silent, half_line, half_headers] {
        let (answer, after) = until_closed(stream, Duration::from_secs(25));
        assert!(
            answer.is_empty() || status_code(&answer) == Some(408),
            "a stalled client got {answer:?} after {after:?}"
        );
    }
    // A body that stops short is answered 503 `timeout` once the 30 s response limit passes.
    let (answer, after) = until_closed(short_body, Duration::from_secs(45));
    assert_eq!(
        status_code(&answer),
        Some(503),
        "{answer:?} after {after:?}"
    );
    assert_eq!(json_body(&answer)["error"]["code"], "timeout", "{answer}");
    still_serving(&daemon);
    assert_eq!(daemon.terminate(WAIT), Some(0));
}

#[test]
fn one_user_holding_many_connections_is_refused_past_the_cap_then_served_again() {
    let mut daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    let held: Vec<UnixStream> = (0..128)
        .map(|_| UnixStream::connect(daemon.socket()).expect("connect"))
        .collect();
    let answer = exchange(
        &daemon,
        b"GET /v1/status HTTP/1.1\r\nHost: ds01\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_code(&answer), Some(503), "{answer}");
    assert_eq!(
        json_body(&answer)["error"]["code"],
        "too_many_connections",
        "{answer}"
    );
    drop(held);
    // The slots come back as the server sees each connection close.
    let started = Instant::now();
    while daemon.ctl(&["status"]).0 != 0 {
        assert!(started.elapsed() < WAIT, "never served again after the cap");
        std::thread::sleep(Duration::from_millis(100));
    }
    still_serving(&daemon);
    assert_eq!(daemon.terminate(WAIT), Some(0));
}

#[test]
fn one_users_in_flight_request_bodies_are_capped_and_the_daemon_keeps_serving() {
    let mut daemon = Daemon::start(DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    let announce = |stream: &mut UnixStream| {
        stream
            .write_all(
                b"POST /v1/apply HTTP/1.1\r\nHost: ds01\r\nContent-Length: 8388608\r\n\r\n{\"files\":",
            )
            .expect("write");
    };
    // Two 8 MiB bodies announced and trickling: the user's 16 MiB are spoken for.
    let held: Vec<UnixStream> = (0..2)
        .map(|_| {
            let mut stream = UnixStream::connect(daemon.socket()).expect("connect");
            announce(&mut stream);
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let answer = exchange(
        &daemon,
        b"POST /v1/apply HTTP/1.1\r\nHost: ds01\r\nContent-Length: 8388608\r\n\r\n",
    );
    assert_eq!(status_code(&answer), Some(503), "{answer}");
    assert_eq!(
        json_body(&answer)["error"]["code"],
        "too_much_in_flight",
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Requests without a body are still answered, and the bytes come back when the
    // connections go.
    still_serving(&daemon);
    drop(held);
    let started = Instant::now();
    loop {
        let answer = exchange(
            &daemon,
            b"POST /v1/apply HTTP/1.1\r\nHost: ds01\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        );
        if status_code(&answer) == Some(400) {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the budget never came back: {answer}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(daemon.terminate(WAIT), Some(0));
}
