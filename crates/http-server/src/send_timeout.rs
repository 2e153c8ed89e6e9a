//! A send timeout for the sockets of the HTTP listener.
//!
//! hyper writes a response body only as fast as the socket takes it, and it stops polling the body
//! once its own small write queue is full. A player that stops reading therefore leaves its
//! connection task waiting on a socket that never becomes writable, forever: nothing in hyper
//! times out a write. The listener (the gateway's `http_listener`) wraps each accepted socket in
//! [`SendTimeoutIo`], which fails a write that has found the socket full for the send timeout
//! without it accepting a byte. hyper then ends the connection, drops the response body (and with
//! it the viewer's bus subscription), and the socket is closed.
//!
//! The listener hands each request the connection's [`bus::SendWatch`] as an extension, so the
//! HTTP-FLV, WebSocket-FLV and MMSH handlers can attach their stream to it: the stalled viewer is
//! then logged with its stream and counted on it.

use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bus::SendWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A TCP stream whose writes fail with `TimedOut` once the socket has been full for the send
/// timeout without accepting a byte. A write that completes, even partly, re-arms the timer; a
/// connection with nothing to write is never timed out here.
pub struct SendTimeoutIo<T> {
    inner: T,
    timeout: Duration,
    /// The deadline of the write that is waiting, allocated on the first full socket.
    deadline: Option<Pin<Box<Sleep>>>,
    armed: bool,
    watch: Arc<SendWatch>,
}

impl<T> SendTimeoutIo<T> {
    /// Wraps `inner`, the connection from `peer`.
    pub fn new(inner: T, peer: SocketAddr, timeout: Duration) -> SendTimeoutIo<T> {
        SendTimeoutIo {
            inner,
            timeout,
            deadline: None,
            armed: false,
            watch: SendWatch::new(Some(peer)),
        }
    }

    /// Wraps `inner` with a watch the caller made (one for the connection's id:
    /// [`SendWatch::for_conn`]).
    pub fn with_watch(inner: T, watch: Arc<SendWatch>, timeout: Duration) -> SendTimeoutIo<T> {
        SendTimeoutIo {
            inner,
            timeout,
            deadline: None,
            armed: false,
            watch,
        }
    }

    /// The connection's watch, to hand to the requests it carries.
    pub fn watch(&self) -> &Arc<SendWatch> {
        &self.watch
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Accounts for the outcome of one write on the inner socket.
    fn progress(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) => {
                self.armed = false;
                self.watch.add_sent(n);
                self.watch.set_blocked(false);
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                self.watch.set_blocked(true);
                self.wait(cx).map(Err)
            }
            other => other,
        }
    }

    /// The socket is full: arm the deadline if it is not armed, and fail once it has passed.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        if self.watch.is_stalled() {
            return Poll::Ready(stalled_error(self.timeout));
        }
        let at = Instant::now() + self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if !self.armed {
            deadline.as_mut().reset(at);
            self.armed = true;
        }
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.watch.stalled(self.timeout);
                Poll::Ready(stalled_error(self.timeout))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn stalled_error(timeout: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("the peer read nothing for {timeout:?}"),
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for SendTimeoutIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendTimeoutIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
