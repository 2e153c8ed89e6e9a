//! The accept loop: one task per connection, all stopped by the shutdown token. It accepts on the
//! plain listener and the RTMPS listener alike; an RTMPS connection runs its TLS handshake in its
//! own task (under the RTMP handshake timeout) before the same connection code serves it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::conn::Connection;
use crate::{Listeners, Options};

/// The listener half of the shell.
pub struct Server {
    plain: Option<netutil::Listener>,
    tls: Option<(netutil::Listener, tls::Acceptor)>,
    bus: bus::Bus,
    /// Replaced by a reload; each connection takes the options in force when it is accepted.
    opts: Arc<ArcSwap<Options>>,
    shutdown: CancellationToken,
    /// Seeds each connection's handshake filler differently.
    next_seed: AtomicU64,
}

impl Server {
    /// Wraps the bound listeners.
    pub fn new(
        listeners: Listeners,
        bus: bus::Bus,
        opts: Arc<ArcSwap<Options>>,
        shutdown: CancellationToken,
    ) -> Self {
        Server {
            plain: listeners.plain,
            tls: listeners.tls,
            bus,
            opts,
            shutdown,
            next_seed: AtomicU64::new(0x5EED),
        }
    }

    /// Accepts connections until shutdown, then waits for them to end.
    pub async fn run(mut self) -> std::io::Result<()> {
        let addr = self.plain.as_ref().map(|l| l.local_addr()).transpose()?;
        let tls_addr = self.tls.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
        tracing::info!(
            rtmp = addr.map(tracing::field::display),
            rtmps = tls_addr.map(tracing::field::display),
            "RTMP listening"
        );
        let mut tasks = JoinSet::new();
        let mut backoff = netutil::AcceptBackoff::new("RTMP");
        // One handle for the life of the listener: a reload changes its admission in place.
        let caps = self.opts.load().conn_limits.clone();
        loop {
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                a = tls::accept_either(self.plain.as_mut(), self.tls.as_mut().map(|(l, _)| l)) => a,
                // Reap finished connections so the set does not grow.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            };
            let tls::Accepted { socket, peer, tls } = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Accept errors (EMFILE and friends) are transient; back off, quietly.
                    backoff.failed(&e).await;
                    continue;
                }
            };
            backoff.succeeded();
            // Over a cap the socket is dropped, which closes it; `caps` counted and logged it.
            let Ok(permit) = caps.try_acquire(peer.ip()) else {
                continue;
            };
            let opts = self.opts.load_full();
            let _ = socket.set_nodelay(true);
            if let Some(size) = opts.send_buffer {
                if let Err(e) = socket2::SockRef::from(&socket).set_send_buffer_size(size) {
                    tracing::warn!(%peer, error = %e, "could not set the TCP send buffer size");
                }
            }
            let seed = self.next_seed.fetch_add(1, Ordering::Relaxed);
            let bus = self.bus.clone();
            let token = self.shutdown.child_token();
            let acceptor = self.tls.as_ref().filter(|_| tls).map(|(_, a)| a.clone());
            let id = netutil::ConnId::next();
            let span = netutil::conn_span!(id, peer);
            let conn = async move {
                match acceptor {
                    None => {
                        Connection::new(socket, peer, bus, opts, seed)
                            .with_id(id)
                            .run(token)
                            .await
                    }
                    Some(acceptor) => {
                        // The TLS handshake gets the handshake timeout, and then RTMP's own.
                        let limit = opts.handshake_timeout;
                        let handshake = acceptor.handshake(socket, peer, limit);
                        let stream = tokio::select! {
                            s = handshake => s,
                            _ = token.cancelled() => None,
                        };
                        if let Some(stream) = stream {
                            Connection::new(stream, peer, bus, opts, seed)
                                .with_id(id)
                                .over_tls()
                                .run(token)
                                .await;
                        }
                    }
                }
                drop(permit);
            };
            tasks.spawn(conn.instrument(span));
        }
        let addr = self.plain.as_ref().and_then(|l| l.local_addr().ok());
        let tls_addr = self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok());
        tracing::info!(
            rtmp = addr.map(tracing::field::display),
            rtmps = tls_addr.map(tracing::field::display),
            "RTMP listener stopping"
        );
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}
