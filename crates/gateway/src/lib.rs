//! The media gateway as a library: binds the configured listeners, creates the media bus, and runs
//! RTMP ingest/play and every egress on it until shut down.
//!
//! The binary (`src/main.rs`) and the end-to-end tests both start it through [`Gateway::start`];
//! tests configure every listener as `127.0.0.1:0` and read the bound addresses back.

mod api;
mod fd_limit;
mod http_listener;
mod memory;
mod wiring;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bus::Bus;
use gateway_config::Config;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for connections to finish before abandoning them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {what} address {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// A running gateway.
pub struct Gateway {
    bus: Bus,
    access: Arc<access::Access>,
    rtmp_addr: SocketAddr,
    http_addr: SocketAddr,
    rtsp_addr: Option<SocketAddr>,
    mms_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Gateway {
    /// Binds every enabled listener and starts serving. Fails if any listener cannot be bound.
    pub async fn start(config: &Config) -> Result<Gateway, StartError> {
        fd_limit::raise_once();
        let bus = Bus::new(wiring::bus_options(&config.bus));
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let rtmp = bind("rtmp", &config.rtmp.listen).await?;
        let http = bind("http", &config.http.listen).await?;
        let rtsp = match config.rtsp.enabled {
            true => Some(bind("rtsp", &config.rtsp.listen).await?),
            false => None,
        };
        let mms = match config.mms.enabled {
            true => Some(bind("mms", &config.mms.listen).await?),
            false => None,
        };
        let addr = |l: &TcpListener| {
            l.local_addr()
                .expect("a bound listener has a local address")
        };
        let gateway_addrs = (
            addr(&rtmp),
            addr(&http),
            rtsp.as_ref().map(addr),
            mms.as_ref().map(addr),
        );
        let access = access::Access::new(wiring::access_options(
            &config.auth,
            gateway_addrs.1.ip().is_loopback(),
        ));
        let listeners = wiring::Listeners {
            rtmp,
            http,
            rtsp,
            mms,
        };
        wiring::spawn_all(&mut tasks, config, &bus, &access, listeners, &shutdown);
        memory::spawn(&mut tasks, bus.clone(), shutdown.clone());
        tracing::info!(
            rtmp = %gateway_addrs.0,
            http = %gateway_addrs.1,
            rtsp = ?gateway_addrs.2,
            mms = ?gateway_addrs.3,
            "listening"
        );
        Ok(Gateway {
            bus,
            access,
            rtmp_addr: gateway_addrs.0,
            http_addr: gateway_addrs.1,
            rtsp_addr: gateway_addrs.2,
            mms_addr: gateway_addrs.3,
            shutdown,
            tasks,
        })
    }

    /// The media bus, for tests and embedding.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The one authorization point every shell asks (its counters, signing play links).
    pub fn access(&self) -> &Arc<access::Access> {
        &self.access
    }

    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The RTSP listener, if `[rtsp] enabled`.
    pub fn rtsp_addr(&self) -> Option<SocketAddr> {
        self.rtsp_addr
    }

    /// The MMST listener, if `[mms] enabled`.
    pub fn mms_addr(&self) -> Option<SocketAddr> {
        self.mms_addr
    }

    /// Stops accepting, asks every connection to close, and waits briefly for them.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!("some connections did not close in time; abandoning them");
            self.tasks.abort_all();
        }
    }
}

async fn bind(what: &'static str, addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            what,
            addr: addr.to_owned(),
            source,
        })
}

/// Sets up `tracing` output; `RUST_LOG` overrides the configured level.
pub fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A second initialisation (tests start several gateways) is harmless and ignored.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .try_init();
}

/// Resolves on Ctrl-C, or on SIGTERM on Unix.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
