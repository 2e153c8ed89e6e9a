//! The HTTP listener: accepts connections and serves the merged router on each with hyper's
//! HTTP/1 connection, under the limits a public listener needs.
//!
//! `axum::serve` has no timeouts and no connection caps: a client that connects and sends
//! nothing, or sends its request head one byte a second, would hold a descriptor forever, and a
//! thousand of them lock every other client out of every port. Here:
//!
//! - the whole request head must arrive within [`HttpLimits::header_timeout`] of the connection
//!   opening, or of the first byte of a later request on a kept-alive connection;
//! - a kept-alive connection with no request in flight and nothing received is closed after
//!   [`HttpLimits::idle_timeout`]. A request is in flight from its head until its response body
//!   is finished, so an HTTP-FLV body that streams for hours is never cut, and a WebSocket
//!   leaves this connection (and its timers) once upgraded;
//! - a request head larger than [`MAX_HEAD_BYTES`] is answered 431 by hyper and the connection
//!   closed;
//! - [`HttpLimits::conn_limits`] admits each connection: at most `max_connections` open, at
//!   most `max_connections_per_ip` from one client, new ones from one client no faster than
//!   `connection_rate_per_ip`; a connection over any is closed at once, counted and logged at
//!   most once a second. Upgraded WebSockets keep their place until they close. Header and idle
//!   timeouts and oversized heads are counted there too, for `/api/limits`.
//!
//! - a socket that accepts no bytes for [`HttpLimits::send_timeout`] while a write waits (a
//!   player that stopped reading) fails its write, and hyper closes the connection
//!   ([`http_server::SendTimeoutIo`]); the viewer on it is logged and counted on its stream.
//!
//! Handlers get the peer's address as `ConnectInfo<SocketAddr>`, as `axum::serve` gave it, and
//! the connection's [`bus::SendWatch`] as an `Arc<SendWatch>` extension.
//!
//! The HTTPS listener (`http.tls_listen`) serves the same router under the same limits and one
//! count of open connections: its connections do the TLS handshake (within the header timeout)
//! before hyper sees them, and their requests carry [`http_server::OverTls`]. The send timeout
//! and the send buffer apply to the TCP socket under the TLS stream.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bus::SendWatch;
use bytes::Bytes;
use http_server::{OverTls, SendTimeoutIo};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use netutil::{AcceptBackoff, ConnLimits, ConnPermit, Timeout};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower_service::Service;
use tracing::Instrument;

/// Why a connection whose request head did not arrive in time was closed.
const HEAD_TIMEOUT: &str = "request head not received in time";

/// The largest request head (request line and headers) read; hyper answers a larger one with
/// 431. Generous for browsers with cookies, small enough that 10,000 connections cannot pin
/// much memory. hyper's one limit also bounds the bytes it queues for a write; a vectored write
/// is bounded by its 16 queued buffers long before that for FLV tags, and a larger frame (a
/// keyframe) still goes out whole.
pub(crate) const MAX_HEAD_BYTES: usize = 32 * 1024;

/// The limits of the HTTP listener (`[http]` keys of the same names).
#[derive(Debug, Clone)]
pub(crate) struct HttpLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Admission (`max_connections`, `max_connections_per_ip`, `connection_rate_per_ip`,
    /// `connection_burst_per_ip`) and the listener's counters.
    pub conn_limits: ConnLimits,
    pub send_timeout: Duration,
    /// SO_SNDBUF of accepted connections; `None` keeps the kernel's autotuning.
    pub send_buffer: Option<usize>,
}

/// Serves `router` on the plain listener and the HTTPS listener (either may be off) until
/// `shutdown`, then lets the open connections finish. A reload may replace `live`: each
/// connection keeps the limits in force when it was accepted (`conn_limits` is one handle
/// throughout, its admission changed in place).
pub(crate) async fn serve(
    mut plain: Option<netutil::Listener>,
    mut tls: Option<(netutil::Listener, tls::Acceptor)>,
    router: axum::Router,
    live: Arc<ArcSwap<HttpLimits>>,
    shutdown: CancellationToken,
) {
    let caps = live.load().conn_limits.clone();
    let mut backoff = AcceptBackoff::new("HTTP");
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = tls::accept_either(plain.as_mut(), tls.as_mut().map(|(l, _)| l)) => a,
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let tls::Accepted {
            socket,
            peer,
            tls: secure,
        } = match accepted {
            Ok(a) => a,
            Err(e) => {
                backoff.failed(&e).await;
                continue;
            }
        };
        backoff.succeeded();
        // Over a cap the socket is dropped, which closes it; `caps` counted and logged it.
        let Ok(permit) = caps.try_acquire(peer.ip()) else {
            continue;
        };
        let limits = HttpLimits::clone(&live.load());
        if let Some(size) = limits.send_buffer {
            if let Err(e) = socket2::SockRef::from(&socket).set_send_buffer_size(size) {
                tracing::warn!(%peer, error = %e, "could not set the TCP send buffer size");
            }
        }
        let id = netutil::ConnId::next();
        let conn = Conn {
            id,
            peer,
            permit,
            router: router.clone(),
            limits,
            shutdown: shutdown.clone(),
        };
        // Every line the connection logs, its handlers' included, carries its id.
        let span = netutil::conn_span!(id, peer);
        match tls.as_ref().filter(|_| secure) {
            None => conns.spawn(serve_conn(socket, conn, false).instrument(span)),
            Some((_, acceptor)) => conns.spawn(
                conn.handshake_and_serve(socket, acceptor.clone())
                    .instrument(span),
            ),
        };
    }
    while conns.join_next().await.is_some() {}
}

/// One accepted connection, before it is served.
struct Conn {
    /// The id of the connection's log lines, under which its viewers are listed as clients.
    id: netutil::ConnId,
    peer: SocketAddr,
    permit: ConnPermit,
    router: axum::Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
}

impl Conn {
    /// HTTPS: the TLS handshake must finish within the header timeout.
    async fn handshake_and_serve(self, socket: TcpStream, acceptor: tls::Acceptor) {
        let handshake = acceptor.handshake(socket, self.peer, self.limits.header_timeout);
        let stream = tokio::select! {
            s = handshake => s,
            _ = self.shutdown.cancelled() => None,
        };
        if let Some(stream) = stream {
            serve_conn(stream, self, true).await;
        }
    }
}

/// Serves HTTP on `socket` (a TCP socket, or the TLS stream over one when `over_tls`).
async fn serve_conn<I>(socket: I, conn: Conn, over_tls: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Conn {
        id,
        peer,
        permit,
        router,
        limits,
        shutdown,
    } = conn;
    let activity = Arc::new(Activity::new());
    let watch = SendWatch::for_conn(Some(peer), id);
    let kicked = watch.kicked().clone();
    let io = Watched {
        inner: SendTimeoutIo::with_watch(socket, watch, limits.send_timeout),
        activity: Arc::clone(&activity),
        _permit: permit,
    };
    let service = ConnService {
        router,
        peer,
        over_tls,
        activity: Arc::clone(&activity),
        watch: Arc::clone(io.inner.watch()),
    };
    let conn = http1::Builder::new()
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                match served {
                    // A malformed or oversized request head: say who sent it.
                    Err(err) if err.is_parse() || err.is_parse_too_large() => {
                        if err.is_parse_too_large() {
                            limits.conn_limits.oversized_request();
                        } else {
                            limits.conn_limits.protocol_error("bad_request_head");
                        }
                        tracing::info!(%peer, %err, "HTTP connection closed: bad request head")
                    }
                    Err(err) => tracing::debug!(%peer, %err, "HTTP connection ended with an error"),
                    Ok(()) => {}
                }
                return;
            }
            why = activity.expired(&limits) => {
                // Nothing is in flight: dropping the connection loses no response. A keep-alive
                // connection going quiet is ordinary; a request head that never completes
                // (silent or slowloris clients) is worth a line naming the peer.
                if why == HEAD_TIMEOUT {
                    limits.conn_limits.timed_out(Timeout::Request);
                    tracing::info!(%peer, "HTTP connection closed: {why}");
                } else {
                    limits.conn_limits.timed_out(Timeout::Idle);
                    tracing::debug!(%peer, "HTTP connection closed: {why}");
                }
                return;
            }
            _ = kicked.cancelled() => {
                // A kick through the API (`bus::clients`): the viewer's response is cut off and
                // the socket closed.
                tracing::info!(%peer, "HTTP connection closed: ended through the API");
                return;
            }
            _ = shutdown.cancelled(), if !draining => {
                // Finishes the response in flight, then closes.
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// What one connection is doing, for its timers: requests in flight, when it went idle, and
/// when the head of the next request started to arrive.
struct Activity {
    state: Mutex<ActivityState>,
    /// False while the connection waits for the first byte of a request: only then does a read
    /// need to take the lock and note the time.
    head_started: AtomicBool,
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    idle_since: Instant,
    head_since: Option<Instant>,
}

impl Activity {
    /// A new connection: the header timeout runs from now (a client that connects sends its
    /// request at once).
    fn new() -> Activity {
        let now = Instant::now();
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: now,
                head_since: Some(now),
            }),
            head_started: AtomicBool::new(true),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, ActivityState> {
        // Every update is one statement, so the state is whole even after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived on the socket.
    fn on_read(&self) {
        if self.head_started.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut s = self.state();
        if s.in_flight == 0 && s.head_since.is_none() {
            s.head_since = Some(Instant::now());
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// A request head was read; the returned guard ends the request when dropped.
    fn request_started(self: &Arc<Self>) -> InFlight {
        let mut s = self.state();
        s.in_flight += 1;
        s.head_since = None;
        self.head_started.store(true, Ordering::Relaxed);
        drop(s);
        self.changed.notify_waiters();
        InFlight(Arc::clone(self))
    }

    fn request_ended(&self) {
        let mut s = self.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.head_since = None;
            self.head_started.store(false, Ordering::Relaxed);
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// When the connection should be closed, if nothing changes before then.
    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, &'static str)> {
        let s = self.state();
        if s.in_flight > 0 {
            return None;
        }
        Some(match s.head_since {
            Some(t) => (t + limits.header_timeout, HEAD_TIMEOUT),
            None => (
                s.idle_since + limits.idle_timeout,
                "idle keep-alive timeout",
            ),
        })
    }

    /// Resolves when the connection has been idle, or its request head incomplete, for too long.
    async fn expired(&self, limits: &HttpLimits) -> &'static str {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the state is read, so no change is missed.
            changed.as_mut().enable();
            match self.deadline(limits) {
                None => changed.await,
                Some((at, why)) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => return why,
                    _ = changed => {}
                },
            }
        }
    }
}

/// One request in flight; ends it when dropped (with the response body, or the response future
/// if the connection closes first).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The router as one connection's hyper service: adds `ConnectInfo` and the connection's
/// `SendWatch`, and tracks the request.
struct ConnService {
    router: axum::Router,
    peer: SocketAddr,
    over_tls: bool,
    activity: Arc<Activity>,
    watch: Arc<SendWatch>,
}

type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        req.extensions_mut().insert(Arc::clone(&self.watch));
        if self.over_tls {
            req.extensions_mut().insert(OverTls);
        }
        let in_flight = self.activity.request_started();
        let mut router = self.router.clone();
        Box::pin(async move {
            let response = router.call(req).await?;
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that keeps its request in flight until hyper has written (or dropped) it.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, noting arrivals for the timers and holding the connection's place under the
/// caps for as long as the socket lives (also after a WebSocket upgrade takes it over).
struct Watched<I> {
    inner: SendTimeoutIo<I>,
    activity: Arc<Activity>,
    _permit: ConnPermit,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            conn_limits: ConnLimits::new("HTTP", netutil::Admission::default()),
            send_timeout: Duration::from_secs(20),
            send_buffer: None,
        }
    }

    /// How long until `activity` expires, and why; `None` if not within an hour.
    async fn expires_in(activity: &Activity) -> Option<(Duration, &'static str)> {
        let start = Instant::now();
        let limits = limits();
        tokio::time::timeout(Duration::from_secs(3600), activity.expired(&limits))
            .await
            .ok()
            .map(|why| (start.elapsed(), why))
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_has_the_header_timeout() {
        let a = Activity::new();
        let got = expires_in(&a).await;
        assert_eq!(
            got,
            Some((Duration::from_secs(10), "request head not received in time"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_never_expires() {
        let a = Arc::new(Activity::new());
        let _in_flight = a.request_started();
        assert_eq!(expires_in(&a).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_response_the_idle_timeout_then_the_header_timeout_from_the_first_byte() {
        let a = Arc::new(Activity::new());
        drop(a.request_started());
        assert_eq!(
            expires_in(&a).await,
            Some((Duration::from_secs(30), "idle keep-alive timeout"))
        );
        drop(a.request_started());
        tokio::time::advance(Duration::from_secs(25)).await;
        // The next request starts arriving 25 s into the idle time: it gets its own 10 s.
        a.on_read();
        assert_eq!(
            expires_in(&a).await,
            Some((Duration::from_secs(10), "request head not received in time"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_starts_resets_the_timers() {
        let a = Arc::new(Activity::new());
        let a2 = Arc::clone(&a);
        let watcher = tokio::spawn(async move { expires_in(&a2).await });
        // Let the watcher start its clock now.
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_secs(9)).await;
        let in_flight = a.request_started();
        tokio::time::advance(Duration::from_secs(100)).await;
        drop(in_flight);
        let (after, why) = watcher.await.expect("no panic").expect("expires");
        assert_eq!(
            (after, why),
            (Duration::from_secs(139), "idle keep-alive timeout")
        );
    }
}
