//! The media gateway as a library: binds the configured listeners, creates the media bus, and runs
//! RTMP ingest/play and every egress on it until shut down.
//!
//! The binary (`src/main.rs`) and the end-to-end tests both start it through [`Gateway::start`];
//! tests configure every listener as `127.0.0.1:0` and read the bound addresses back.

mod api;
pub mod cli;
mod control;
mod fd_limit;
mod health;
mod http_listener;
mod memory;
mod metrics;
mod monitor;
mod recordings;
mod reload;
mod wiring;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bus::Bus;
use gateway_config::Config;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use health::Readiness;
pub use reload::{ReloadError, ReloadReport};

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
    #[error("cannot use the TLS certificate (tls.cert_file, tls.key_file): {0}")]
    Tls(#[from] tls::TlsError),
}

/// A running gateway.
pub struct Gateway {
    bus: Bus,
    access: Arc<access::Access>,
    /// Every bound listener by name ("rtmp", "rtmps", "http", "https", "rtsp", "rtsps", "mms").

    /// The TLS listeners' handshakes, for their failure counts.
    acceptors: Vec<tls::Acceptor>,
    /// What `/readyz` answers: which configured listeners serve.
    readiness: Arc<Readiness>,
    reloader: Arc<reload::Reloader>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Gateway {
    /// Binds every enabled listener and starts serving. Fails if any listener cannot be bound, or
    /// a TLS listener is on and the certificate cannot be loaded.
    pub async fn start(config: &Config) -> Result<Gateway, StartError> {
        Gateway::start_inner(config, None).await
    }

    /// As [`Gateway::start`], for a `config` read from the file at `path`: SIGHUP (in the
    /// binary), [`Gateway::reload_file`] and `POST /api/reload` re-read that file.
    pub async fn start_with_file(config: &Config, path: PathBuf) -> Result<Gateway, StartError> {
        Gateway::start_inner(config, Some(path)).await
    }

    async fn start_inner(config: &Config, path: Option<PathBuf>) -> Result<Gateway, StartError> {
        fd_limit::raise_once();
        let bus = Bus::new(wiring::bus_options(&config.bus));
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let tls_on = [
            &config.rtmp.tls_listen,
            &config.http.tls_listen,
            &config.rtsp.tls_listen,
        ]
        .iter()
        .any(|l| !l.is_empty());
        let certs = match tls_on {
            true => Some(load_certs(config)?),
            false => None,
        };
        let rtsp_on = |addr: &str| {
            if config.rtsp.enabled {
                addr.to_owned()
            } else {
                String::new()
            }
        };
        let mms_on = if config.mms.enabled {
            config.mms.listen.clone()
        } else {
            String::new()
        };
        let readiness = Arc::new(Readiness::new(configured_listeners(config)));
        let listeners = wiring::Listeners {
            rtmp: bind("rtmp", &config.rtmp.listen).await?,
            rtmps: bind("rtmps", &config.rtmp.tls_listen).await?,
            http: bind("http", &config.http.listen).await?,
            https: bind("https", &config.http.tls_listen).await?,
            rtsp: bind("rtsp", &rtsp_on(&config.rtsp.listen)).await?,
            rtsps: bind("rtsps", &rtsp_on(&config.rtsp.tls_listen)).await?,
            mms: bind("mms", &mms_on).await?,
        };
        let bound = bound_addrs(&listeners);
        // The API and page are open without a token only when every HTTP listener is loopback.
        let http_loopback_only = bound
            .iter()
            .filter(|(n, _)| matches!(*n, "http" | "https"))
            .all(|(_, a)| a.ip().is_loopback());
        let access = access::Access::new(wiring::access_options(&config.auth, http_loopback_only));
        let reloader = Arc::new(reload::Reloader::new(
            config,
            path,
            &access,
            http_loopback_only,
        ));
        if let Some(certs) = &certs {
            let every = Duration::from_secs(config.tls.reload_check_secs);
            tasks.spawn(Arc::clone(certs).watch(every, shutdown.clone()));
        }
        let acceptors = wiring::spawn_all(
            &mut tasks,
            config,
            &bus,
            &access,
            listeners,
            certs.as_ref(),
            &readiness,
            &reloader,
            &shutdown,
        );
        memory::spawn(&mut tasks, bus.clone(), shutdown.clone());
        let shown: Vec<String> = bound.iter().map(|(n, a)| format!("{n}={a}")).collect();
        tracing::info!(listeners = %shown.join(" "), "listening");
        Ok(Gateway {
            bus,
            access,
            acceptors,
            readiness,
            reloader,
            shutdown,
            tasks,
        })
    }

    /// Applies `config` as a reload would (see the `reload` module: log level, `[auth]`, the
    /// listeners' admission keys and `[health]` take effect; other changed keys are reported as
    /// needing a restart). The result is logged.
    pub fn reload(&self, config: &Config) -> ReloadReport {
        self.reloader.apply(config)
    }

    /// Re-reads the file the gateway was started with ([`Gateway::start_with_file`]) and applies
    /// it; a file that does not parse or validate changes nothing and its error is logged.
    pub fn reload_file(&self) -> Result<ReloadReport, ReloadError> {
        self.reloader.reload_file()
    }

    /// The media bus, for tests and embedding.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The one authorization point every shell asks (its counters, signing play links).
    pub fn access(&self) -> &Arc<access::Access> {
        &self.access
    }

    /// Every bound listener by name: "rtmp", "rtmps", "http", "https", "rtsp", "rtsps", "mms",
    /// with the address it listens on now (a reload may have moved it).
    pub fn listeners(&self) -> Vec<(&'static str, SocketAddr)> {
        self.reloader.bound()
    }

    fn listener(&self, name: &str) -> Option<SocketAddr> {
        self.listeners()
            .into_iter()
            .find_map(|(n, a)| (n == name).then_some(a))
    }

    /// The plain RTMP listener. Panics if `rtmp.listen` is empty (it is off); see
    /// [`Gateway::listeners`].
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.listener("rtmp")
            .expect("rtmp.listen is set (the plain RTMP listener is on)")
    }

    /// The plain HTTP listener. Panics if `http.listen` is empty (it is off).
    pub fn http_addr(&self) -> SocketAddr {
        self.listener("http")
            .expect("http.listen is set (the plain HTTP listener is on)")
    }

    /// The RTSP listener, if `[rtsp] enabled` and `rtsp.listen` is set.
    pub fn rtsp_addr(&self) -> Option<SocketAddr> {
        self.listener("rtsp")
    }

    /// The MMST listener, if `[mms] enabled`.
    pub fn mms_addr(&self) -> Option<SocketAddr> {
        self.listener("mms")
    }

    /// The RTMPS listener, if `rtmp.tls_listen` is set.
    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.listener("rtmps")
    }

    /// The HTTPS listener, if `http.tls_listen` is set.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.listener("https")
    }

    /// The RTSPS listener, if `[rtsp] enabled` and `rtsp.tls_listen` is set.
    pub fn rtsps_addr(&self) -> Option<SocketAddr> {
        self.listener("rtsps")
    }

    /// TLS handshakes that failed or timed out, on all TLS listeners together.
    pub fn failed_tls_handshakes(&self) -> u64 {
        self.acceptors.iter().map(|a| a.failed_handshakes()).sum()
    }

    /// Which configured listeners serve (what `GET /readyz` answers).
    pub fn readiness(&self) -> &Arc<Readiness> {
        &self.readiness
    }

    /// Stops accepting, asks every connection to close, and waits briefly for them.
    pub async fn shutdown(mut self) {
        self.readiness.set_all_down();
        self.shutdown.cancel();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!("some connections did not close in time; abandoning them");
            self.tasks.abort_all();
        }
    }
}

/// Binds `addr`; an empty address is a listener that is off.
async fn bind(what: &'static str, addr: &str) -> Result<Option<TcpListener>, StartError> {
    if addr.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            what,
            addr: addr.to_owned(),
            source,
        })?;
    Ok(Some(listener))
}

fn load_certs(config: &Config) -> Result<Arc<tls::CertStore>, StartError> {
    let (cert, key) = (&config.tls.cert_file, &config.tls.key_file);
    Ok(tls::CertStore::load(Path::new(cert), Path::new(key))?)
}

/// The listeners the configuration turns on, by name: those `/readyz` waits for.
fn configured_listeners(config: &Config) -> Vec<&'static str> {
    let rtsp = config.rtsp.enabled;
    let named = [
        ("rtmp", !config.rtmp.listen.is_empty()),
        ("rtmps", !config.rtmp.tls_listen.is_empty()),
        ("http", !config.http.listen.is_empty()),
        ("https", !config.http.tls_listen.is_empty()),
        ("rtsp", rtsp && !config.rtsp.listen.is_empty()),
        ("rtsps", rtsp && !config.rtsp.tls_listen.is_empty()),
        ("mms", config.mms.enabled && !config.mms.listen.is_empty()),
    ];
    named
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect()
}

fn bound_addrs(l: &wiring::Listeners) -> Vec<(&'static str, SocketAddr)> {
    let named = [
        ("rtmp", &l.rtmp),
        ("rtmps", &l.rtmps),
        ("http", &l.http),
        ("https", &l.https),
        ("rtsp", &l.rtsp),
        ("rtsps", &l.rtsps),
        ("mms", &l.mms),
    ];
    named
        .into_iter()
        .filter_map(|(name, l)| {
            let addr = l
                .as_ref()?
                .local_addr()
                .expect("a bound listener has a local address");
            Some((name, addr))
        })
        .collect()
}

/// The handle that swaps the log filter on a reload; set once [`init_logging`] installed it.
static LOG_FILTER: std::sync::OnceLock<
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>,
> = std::sync::OnceLock::new();

/// Sets up `tracing` output on standard output from `[log]`: `level` (which `RUST_LOG`
/// overrides) and `format`, readable text (coloured only on a terminal) or one JSON object per
/// line. A JSON line carries the connection's span (`span`: its `name`, `id` and `peer`) and
/// the spans it is in (`spans`). The filter sits behind a reload layer, so [`set_log_level`]
/// can change it while running.
pub fn init_logging(log: &gateway_config::LogSection) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(with_quiet_rustls(&log.level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let (text, json) = match log.format {
        gateway_config::LogFormat::Text => (
            Some(tracing_subscriber::fmt::layer().with_ansi(colours_wanted(
                std::io::IsTerminal::is_terminal(&std::io::stdout()),
                std::env::var_os("NO_COLOR"),
            ))),
            None,
        ),
        gateway_config::LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true),
            ),
        ),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .try_init();
    // A second initialisation (tests start several gateways) is harmless and ignored.
    if installed.is_ok() {
        let _ = LOG_FILTER.set(handle);
    }
}

/// Whether text log lines are coloured: only on a terminal (a file, a pipe or a log collector
/// gets plain text), and never with `NO_COLOR` set to anything but the empty string
/// (<https://no-color.org>).
fn colours_wanted(stdout_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Why [`set_log_level`] left the filter as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogLevelError {
    #[error("RUST_LOG is set and overrides log.level")]
    EnvOverrides,
    #[error("this process's logging was not set up by the gateway")]
    NotInstalled,
    #[error("log.level `{0}` is not a valid filter")]
    Invalid(String),
}

/// Replaces the log filter with `level` (as `log.level` reads), unless `RUST_LOG` decides it.
pub fn set_log_level(level: &str) -> Result<(), LogLevelError> {
    if std::env::var_os("RUST_LOG").is_some() {
        return Err(LogLevelError::EnvOverrides);
    }
    let handle = LOG_FILTER.get().ok_or(LogLevelError::NotInstalled)?;
    let filter = tracing_subscriber::EnvFilter::try_new(with_quiet_rustls(level))
        .map_err(|_| LogLevelError::Invalid(level.to_owned()))?;
    handle
        .reload(filter)
        .map_err(|_| LogLevelError::NotInstalled)
}

/// rustls logs a warning for every client that sends an IP address as its SNI name (GnuTLS, so
/// ffmpeg and GStreamer on Debian, connecting to `rtmps://127.0.0.1`) and for every failed
/// handshake; the TLS listeners log failed handshakes themselves, with the peer and at most once
/// a second. So rustls says only errors unless the filter names it.
fn with_quiet_rustls(level: &str) -> String {
    match level.contains("rustls") {
        true => level.to_owned(),
        false => format!("{level},rustls=error"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_coloured_only_on_a_terminal_without_no_color() {
        let set = |v: &str| Some(std::ffi::OsString::from(v));
        assert!(colours_wanted(true, None));
        assert!(colours_wanted(true, set("")));
        assert!(!colours_wanted(true, set("1")));
        assert!(!colours_wanted(false, None));
        assert!(!colours_wanted(false, set("1")));
    }
}
