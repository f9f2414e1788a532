//! One HTTP request to the controller over its Unix socket.

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, body::Bytes};
use hyper_util::rt::TokioIo;

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
}

/// Sends `method path` with an optional JSON body; returns status and body.
///
/// # Errors
/// When the controller cannot be reached or the exchange breaks.
pub async fn request(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), ClientError> {
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
    let response = sender.send_request(request).await.map_err(protocol)?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(protocol)?
        .to_bytes();
    Ok((status, bytes))
}
