//! Test helper: a client that asks and then stops reading. Opens COUNT connections to a Unix
//! socket one after another, sends `GET PATH` on each, reads only the first bytes of each
//! answer (its status line), prints `holding N`, and keeps every connection open, unread,
//! until its standard input closes — so a test can hold answers in the daemon as another
//! user (`setpriv --reuid=65534 … ds01-slow-reader SOCKET COUNT PATH`). With a fourth argument
//! `hangup-MS` it instead hangs up MS milliseconds after sending each request, unanswered, and
//! goes on with the next (work the daemon started for a client that left).

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    process::ExitCode,
    time::Duration,
};

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().collect();
    let (Some(socket), Some(count), Some(path)) = (
        arguments.get(1),
        arguments
            .get(2)
            .and_then(|count| count.parse::<usize>().ok()),
        arguments.get(3),
    ) else {
        eprintln!("usage: ds01-slow-reader SOCKET COUNT PATH");
        return ExitCode::from(64);
    };
    let hang_up = arguments
        .get(4)
        .and_then(|mode| mode.strip_prefix("hangup-"))
        .and_then(|millis| millis.parse::<u64>().ok())
        .map(Duration::from_millis);
    let mut held = Vec::new();
    for number in 0..count {
        let mut stream = match UnixStream::connect(socket) {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!("connection {number}: {error}");
                return ExitCode::from(2);
            }
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let request = format!("GET {path} HTTP/1.1\r\nHost: ds01\r\n\r\n");
        if let Err(error) = stream.write_all(request.as_bytes()) {
            eprintln!("connection {number}: {error}");
            return ExitCode::from(2);
        }
        if let Some(after) = hang_up {
            std::thread::sleep(after);
            drop(stream);
            continue;
        }
        let mut first = [0_u8; 16];
        let read = stream.read(&mut first).unwrap_or(0);
        let status = String::from_utf8_lossy(&first[..read]).into_owned();
        println!("connection {number}: {}", status.trim());
        held.push(stream);
    }
    println!("holding {}", held.len());
    let _ = std::io::stdout().flush();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(held);
    ExitCode::SUCCESS
}
