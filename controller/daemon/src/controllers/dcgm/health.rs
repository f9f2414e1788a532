//! The deep health probe: HTTP 200 on `health.path` within `timeout`, and a body that names
//! every GPU UUID NVML reports (dcgm-exporter answers 200 even when it exports nothing).

use std::{net::IpAddr, time::Duration};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest body read.
const MAX_BODY: u64 = 32 << 20;

/// `GET http://address:port/path` (an unspecified address means this host); the body of a 200
/// answer, else why not.
pub async fn fetch(
    address: IpAddr,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<String, String> {
    let address = if address.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        address
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((address, port))
            .await
            .map_err(|error| format!("cannot connect to {address}:{port}: {error}"))?;
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {address}:{port}\r\nUser-Agent: ds01-controller\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|error| format!("cannot send the request: {error}"))?;
        let mut answer = Vec::new();
        stream
            .take(MAX_BODY)
            .read_to_end(&mut answer)
            .await
            .map_err(|error| format!("cannot read the answer: {error}"))?;
        Ok::<Vec<u8>, String>(answer)
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer from {address}:{port}{path} within {timeout:?}"))??;
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    if code != "200" {
        return Err(format!("{path} answered `{status_line}`"));
    }
    Ok(text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned())
}

/// Probes `http://address:port/path`; `Err` says why it is unhealthy.
pub async fn probe(
    address: IpAddr,
    port: u16,
    path: &str,
    timeout: Duration,
    gpu_uuids: &[String],
) -> Result<(), String> {
    let body = fetch(address, port, path, timeout).await?;
    let missing: Vec<&str> = gpu_uuids
        .iter()
        .map(String::as_str)
        .filter(|uuid| !body.contains(uuid))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{path} does not report {}", missing.join(", ")))
    }
}
