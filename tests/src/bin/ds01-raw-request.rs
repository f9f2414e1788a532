//! Test helper: sends the bytes on standard input to a Unix socket (the control API) and
//! prints what comes back, so a test can make a raw request as another user
//! (`setpriv --reuid=65534 … ds01-raw-request SOCKET < request`).

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    process::ExitCode,
    time::Duration,
};

fn main() -> ExitCode {
    let Some(socket) = std::env::args().nth(1) else {
        eprintln!("usage: ds01-raw-request SOCKET < request");
        return ExitCode::from(64);
    };
    let mut request = Vec::new();
    if let Err(error) = std::io::stdin().read_to_end(&mut request) {
        eprintln!("cannot read the request: {error}");
        return ExitCode::from(2);
    }
    let mut stream = match UnixStream::connect(&socket) {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!("cannot connect to {socket}: {error}");
            return ExitCode::from(2);
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    // The server may answer before reading all of a large body.
    let _ = stream.write_all(&request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let _ = std::io::stdout().write_all(&answer);
    ExitCode::SUCCESS
}
