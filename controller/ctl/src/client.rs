//! One HTTP request to the controller over its Unix socket, answered within
//! [`ANSWER_TIMEOUT`] (a stream: its head within that time, then as long as it lasts).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, body::Bytes};
use hyper_util::rt::TokioIo;

/// How long `ds01ctl` waits for an answer: twice what the controller allows itself (30 s), so a
/// hung controller is reported instead of hanging the shell.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot reach the controller at {socket}")]
    Unreachable {
        /// Socket tried.
        socket: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The connection broke.
    #[error("the controller at {socket} did not answer properly")]
    Protocol {
        /// Socket.
        socket: PathBuf,
        /// Cause.
        #[source]
        source: hyper::Error,
    },
    /// No answer in time.
    #[error("the controller at {socket} did not answer within {} s", ANSWER_TIMEOUT.as_secs())]
    TimedOut {
        /// Socket.
        socket: PathBuf,
    },
}

/// Connects and sends one request, waiting up to [`ANSWER_TIMEOUT`] for the answer's head.
async fn send(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
    tokio::time::timeout(ANSWER_TIMEOUT, send_now(socket, method, path, body))
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::TimedOut {
                socket: socket.to_owned(),
            })
        })
}

/// Connects and sends one request; the caller reads the response body.
async fn send_now(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
    let unreachable = |source| ClientError::Unreachable {
        socket: socket.to_owned(),
        source,
    };
    let protocol = |source| ClientError::Protocol {
        socket: socket.to_owned(),
        source,
    };
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(unreachable)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(protocol)?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "ds01")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|error| unreachable(std::io::Error::other(error)))?;
    sender.send_request(request).await.map_err(protocol)
}

/// Sends `method path` with an optional JSON body; returns status and body, all within
/// [`ANSWER_TIMEOUT`].
///
/// # Errors
/// When the controller cannot be reached or the exchange breaks.
pub async fn request(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), ClientError> {
    let exchange = async {
        let response = send(socket, method, path, body).await?;
        let status = response.status();
        let collected = response.into_body().collect().await;
        let bytes = collected.map_err(|source| ClientError::Protocol {
            socket: socket.to_owned(),
            source,
        })?;
        Ok((status, bytes.to_bytes()))
    };
    tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::TimedOut {
                socket: socket.to_owned(),
            })
        })
}

/// Sends `GET path` and calls `on_line` for every line of the (streamed) answer, as it arrives.
/// Calls `on_head` with the status and headers before the first line; returns the status. A
/// non-200 answer's body is passed to `on_line` whole.
///
/// # Errors
/// When the controller cannot be reached or the stream breaks.
pub async fn stream_lines(
    socket: &Path,
    path: &str,
    on_head: impl FnOnce(StatusCode, &hyper::HeaderMap),
    mut on_line: impl FnMut(&str),
) -> Result<StatusCode, ClientError> {
    let protocol = |source| ClientError::Protocol {
        socket: socket.to_owned(),
        source,
    };
    let response = send(socket, Method::GET, path, None).await?;
    let status = response.status();
    on_head(status, response.headers());
    let mut body = response.into_body();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(protocol)?;
        if let Some(data) = frame.data_ref() {
            pending.extend_from_slice(data);
            while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                on_line(String::from_utf8_lossy(&line[..line.len() - 1]).as_ref());
            }
        }
    }
    if !pending.is_empty() {
        on_line(String::from_utf8_lossy(&pending).as_ref());
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_controller_that_never_answers_is_reported_after_the_timeout() {
        let directory = tempfile::tempdir().expect("tempdir");
        let socket = directory.path().join("hung.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
        // Accepts, reads nothing, answers nothing.
        let held = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            std::future::pending::<()>().await;
            drop(stream);
        });
        let started = tokio::time::Instant::now();
        let error = request(&socket, Method::GET, "/v1/status", None)
            .await
            .expect_err("no answer");
        assert!(matches!(error, ClientError::TimedOut { .. }), "{error}");
        assert_eq!(started.elapsed(), ANSWER_TIMEOUT);
        assert!(error.to_string().contains("did not answer within 60 s"));
        held.abort();
    }
}
