//! A connection that fails its writes once the peer has read nothing for a while: a client
//! that asks for a large answer and stops reading would otherwise hold the answer's memory, its
//! connection slot and its descriptor for as long as it likes.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Sleep,
};

/// How long a write may wait for the peer to read before the connection is dropped.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// `inner`, whose writes fail with `TimedOut` after waiting `limit` for the peer.
pub struct WriteStallGuard<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteStallGuard<S> {
    /// Guards `inner` with `limit`.
    pub fn new(inner: S, limit: Duration) -> Self {
        WriteStallGuard {
            inner,
            limit,
            stalled: None,
        }
    }

    /// The outcome of a write step: progress resets the clock; waiting starts it, and waiting
    /// past the limit is an error.
    fn judge<T>(
        &mut self,
        polled: Poll<io::Result<T>>,
        context: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(context).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer read nothing for {} s", limit.as_secs()),
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStallGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(context, buffer)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStallGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(context, buffer);
        this.judge(polled, context)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(context, buffers);
        this.judge(polled, context)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(context);
        this.judge(polled, context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(context);
        this.judge(polled, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_fails_the_write_after_the_limit_and_not_before() {
        // A 1 KiB pipe nobody reads from.
        let (writer, _reader) = tokio::io::duplex(1024);
        let mut guarded = WriteStallGuard::new(writer, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let error = guarded
            .write_all(&vec![0_u8; 64 * 1024])
            .await
            .expect_err("a stalled write fails");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_served() {
        let (writer, mut reader) = tokio::io::duplex(1024);
        let mut guarded = WriteStallGuard::new(writer, Duration::from_secs(30));
        let draining = tokio::spawn(async move {
            let mut sink = Vec::new();
            let mut chunk = [0_u8; 512];
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                match tokio::io::AsyncReadExt::read(&mut reader, &mut chunk).await {
                    Ok(0) | Err(_) => return sink.len(),
                    Ok(read) => sink.extend_from_slice(&chunk[..read]),
                }
            }
        });
        guarded
            .write_all(&vec![1_u8; 4096])
            .await
            .expect("each write waits less than the limit");
        drop(guarded);
        assert_eq!(draining.await.expect("reader"), 4096);
    }
}
