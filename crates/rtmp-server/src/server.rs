//! The accept loop: one task per connection, all stopped by the shutdown token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::conn::Connection;
use crate::Options;

/// The listener half of the shell.
pub struct Server {
    listener: TcpListener,
    bus: bus::Bus,
    opts: Arc<Options>,
    shutdown: CancellationToken,
    /// Seeds each connection's handshake filler differently.
    next_seed: AtomicU64,
}

impl Server {
    /// Wraps a bound listener.
    pub fn new(
        listener: TcpListener,
        bus: bus::Bus,
        opts: Options,
        shutdown: CancellationToken,
    ) -> Self {
        Server {
            listener,
            bus,
            opts: Arc::new(opts),
            shutdown,
            next_seed: AtomicU64::new(0x5EED),
        }
    }

    /// Accepts connections until shutdown, then waits for them to end.
    pub async fn run(self) -> std::io::Result<()> {
        let addr = self.listener.local_addr()?;
        tracing::info!(%addr, "RTMP listening");
        let mut tasks = JoinSet::new();
        let mut backoff = netutil::AcceptBackoff::new("RTMP");
        let caps = self.opts.conn_limits.clone();
        loop {
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                a = self.listener.accept() => a,
                // Reap finished connections so the set does not grow.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            };
            let (socket, peer) = match accepted {
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
            let _ = socket.set_nodelay(true);
            if let Some(size) = self.opts.send_buffer {
                if let Err(e) = socket2::SockRef::from(&socket).set_send_buffer_size(size) {
                    tracing::warn!(%peer, error = %e, "could not set the TCP send buffer size");
                }
            }
            let seed = self.next_seed.fetch_add(1, Ordering::Relaxed);
            let conn =
                Connection::new(socket, peer, self.bus.clone(), Arc::clone(&self.opts), seed);
            let token = self.shutdown.child_token();
            tasks.spawn(async move {
                conn.run(token).await;
                drop(permit);
            });
        }
        tracing::info!(%addr, "RTMP listener stopping");
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}
