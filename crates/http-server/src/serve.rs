//! Serving the gateway's HTTP router with a send timeout on every connection.
//!
//! hyper writes a response body only as fast as the socket takes it, and it stops polling the body
//! once its own small write queue is full. A player that stops reading therefore leaves its
//! connection task waiting on a socket that never becomes writable, forever: nothing in hyper
//! times out a write. [`serve`] wraps each accepted socket in [`SendTimeoutIo`], which fails a
//! write that has found the socket full for [`Options::send_timeout`](crate::Options) without it
//! accepting a byte. hyper then ends the connection, drops the response body (and with it the
//! viewer's bus subscription), and the socket is closed.
//!
//! Each connection's [`bus::SendWatch`] travels to the handlers as a request extension (next to
//! the usual `ConnectInfo<SocketAddr>`), so the HTTP-FLV, WebSocket-FLV and MMSH handlers can
//! attach their stream to it: the stalled viewer is then logged with its stream and counted on it.

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::Request;
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use bus::SendWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

/// How [`serve`] treats each connection's socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketOptions {
    /// A connection whose socket accepts no bytes for this long while a write waits is closed.
    pub send_timeout: Duration,
    /// SO_SNDBUF of accepted connections; `None` keeps the kernel's autotuning.
    pub send_buffer: Option<usize>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            send_timeout: Duration::from_secs(20),
            send_buffer: None,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, closing any connection whose socket
/// accepts no bytes for the send timeout while a write is waiting.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    socket: SocketOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = SendTimeoutListener {
        inner: listener,
        socket,
    };
    axum::serve(listener, MakeConnService { router })
        .with_graceful_shutdown(shutdown)
        .await
}

/// A TCP listener whose connections carry a send timeout.
struct SendTimeoutListener {
    inner: TcpListener,
    socket: SocketOptions,
}

impl Listener for SendTimeoutListener {
    type Io = SendTimeoutIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (socket, peer) = Listener::accept(&mut self.inner).await;
        if let Some(size) = self.socket.send_buffer {
            if let Err(e) = socket2::SockRef::from(&socket).set_send_buffer_size(size) {
                tracing::warn!(%peer, error = %e, "could not set the TCP send buffer size");
            }
        }
        (
            SendTimeoutIo::new(socket, peer, self.socket.send_timeout),
            peer,
        )
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A TCP stream whose writes fail with `TimedOut` once the socket has been full for the send
/// timeout without accepting a byte. A write that completes, even partly, re-arms the timer; a
/// connection with nothing to write is never timed out here.
pub struct SendTimeoutIo {
    inner: TcpStream,
    timeout: Duration,
    /// The deadline of the write that is waiting, allocated on the first full socket.
    deadline: Option<Pin<Box<Sleep>>>,
    armed: bool,
    watch: Arc<SendWatch>,
}

impl SendTimeoutIo {
    fn new(inner: TcpStream, peer: SocketAddr, timeout: Duration) -> SendTimeoutIo {
        SendTimeoutIo {
            inner,
            timeout,
            deadline: None,
            armed: false,
            watch: SendWatch::new(Some(peer)),
        }
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

impl AsyncRead for SendTimeoutIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendTimeoutIo {
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

/// Makes one [`ConnService`] per accepted connection.
#[derive(Clone)]
struct MakeConnService {
    router: Router,
}

impl Service<IncomingStream<'_, SendTimeoutListener>> for MakeConnService {
    type Response = ConnService;
    type Error = Infallible;
    type Future = Ready<Result<ConnService, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, incoming: IncomingStream<'_, SendTimeoutListener>) -> Self::Future {
        ready(Ok(ConnService {
            router: self.router.clone(),
            peer: *incoming.remote_addr(),
            watch: Arc::clone(&incoming.io().watch),
        }))
    }
}

/// The router for one connection: every request gets the peer address and the connection's
/// [`SendWatch`] as extensions.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    watch: Arc<SendWatch>,
}

impl Service<Request> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        req.extensions_mut().insert(Arc::clone(&self.watch));
        self.router.call(req)
    }
}
