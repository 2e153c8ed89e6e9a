//! The MMST listener: accept, spawn one task per connection, stop on shutdown.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bus::Bus;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{conn, Options};

/// Serves MMST (MMS over TCP, default port 1755) on an already-bound listener until `shutdown`
/// is cancelled, with fixed options (for tests and examples). Each connection runs in its own
/// task; one client's failure never touches another's.
pub async fn run(
    listener: TcpListener,
    bus: Bus,
    opts: Options,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (listener, _) = netutil::Listener::new("MMST", listener);
    serve(
        listener,
        bus,
        Arc::new(ArcSwap::from_pointee(opts)),
        shutdown,
    )
    .await
}

/// [`run`] on a listener a reload can move (see [`netutil::Listener`]), with options a reload
/// can replace: each connection takes the options in force when it is accepted for its life,
/// except the publishing points, which each OpenFile resolves against the options in force
/// when it arrives.
pub async fn serve(
    mut listener: netutil::Listener,
    bus: Bus,
    opts: Arc<ArcSwap<Options>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(
        addr = listener.local_addr().ok().map(tracing::field::display),
        "MMST listening"
    );
    let mut backoff = netutil::AcceptBackoff::new("MMST");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: keep serving the others.
                        backoff.failed(&e).await;
                        continue;
                    }
                };
                backoff.succeeded();
                let conn_opts = opts.load_full();
                // Over a cap the socket is dropped, which closes it; `conn_limits` logged it.
                let Ok(permit) = conn_opts.conn_limits.try_acquire(peer.ip()) else { continue };
                let shared = conn::Shared { bus: bus.clone(), opts: Arc::clone(&opts) };
                let id = netutil::ConnId::next();
                let serve = conn::serve(socket, peer, shared, conn_opts, shutdown.child_token(), id);
                let conn = async move {
                    tracing::info!(%peer, "MMST: connection");
                    serve.await;
                    drop(permit);
                };
                tokio::spawn(conn.instrument(netutil::conn_span!(id, peer)));
            }
        }
    }
}
