//! Reloading the configuration while the gateway runs (SIGHUP, `POST /api/reload`).
//!
//! A reload reads the file the gateway was started with (or takes a [`Config`] in tests) and
//! compares it key by key with the configuration in force. What can change live is applied,
//! without dropping a publisher or a viewer:
//!
//! - `log.level` (unless `RUST_LOG` decides the filter);
//! - everything in `[auth]` (rules, tokens, users, hooks, `api_token`): new requests are decided
//!   by the new policy, connections already admitted are not asked again;
//! - the admission keys of every listener (`max_connections`, `max_connections_per_ip`,
//!   `connection_rate_per_ip`, `connection_burst_per_ip`): open connections stay and count
//!   against the new caps;
//! - the options of `[bus]`, `[rtmp]`, `[http]`, `[hls]`, `[rtsp]` and `[mms]`: each shell reads
//!   its options from a cell ([`arc_swap::ArcSwap`]) the reload replaces, and a connection, a
//!   session or a per-stream muxer takes the options in force when it starts and keeps them, so
//!   the new values apply to what starts next and nothing running is disturbed (an HLS playlist
//!   keeps its target duration, which RFC 8216 forbids changing under a player);
//! - `[health]`: the next judgement (within a second) uses the new limits;
//! - a listen address: the reload binds the new address first (a failure leaves the listener
//!   where it was and is reported in `failed`), then hands the socket to the accept loop
//!   ([`netutil::Listener`]), which closes the old one; accepted connections stay.
//!
//! Keys built once at start ([`restart_only`], turning a listener on or off) are reported as
//! needing a restart and keep their old value until then. A file that does not parse or
//! validate changes nothing.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use access::Access;
use gateway_config::{Config, ConfigError};
use netutil::{Admission, ConnLimits, Rebind};
use tokio::net::{TcpListener, TcpSocket};

use crate::monitor;

/// What a reload did: the keys that changed and took effect, those that changed but keep their
/// old value until a restart, and those that could not be applied (with why), which also keep
/// their old value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub applied: Vec<String>,
    pub needs_restart: Vec<String>,
    /// `"key: why"`, such as a new listen address that could not be bound.
    pub failed: Vec<String>,
}

/// A list of keys as a log line shows it to people: `a.b, c.d`, or `none`.
fn keys_for_log(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".to_owned()
    } else {
        keys.join(", ")
    }
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the gateway was started without a configuration file, so there is none to re-read")]
    NoFile,
    #[error("{0}")]
    Config(#[from] ConfigError),
}

/// The `[health]` limits the monitor reads on every pass, which a reload replaces.
pub(crate) type SharedHealth = Arc<RwLock<monitor::Limits>>;

/// Puts a shell's options, rebuilt from the configuration in force, where the shell reads them.
type Apply = Box<dyn Fn(&Config) + Send + Sync>;

/// One bound listener a reload can move.
struct Movable {
    /// Its address key: `"rtmp.listen"`, `"http.tls_listen"`.
    key: &'static str,
    /// Its name in logs, the API and `/readyz`: `"rtmp"`, `"https"`.
    name: &'static str,
    rebind: Rebind,
}

/// Everything a reload changes, shared by the signal handler and the API route.
pub(crate) struct Reloader {
    path: Option<PathBuf>,
    /// The configuration in force: the started one with every reloaded live key applied.
    running: Mutex<Config>,
    access: Arc<Access>,
    /// Whether every HTTP listener is loopback (an empty `api_token` then leaves the API open).
    http_loopback_only: bool,
    /// Each listener section's admission (`"rtmp"`, `"http"`, `"rtsp"`, `"mms"`).
    listeners: Mutex<Vec<(&'static str, ConnLimits)>>,
    movable: Mutex<Vec<Movable>>,
    /// Every shell's options, replaced from the configuration in force after each reload.
    appliers: Mutex<Vec<Apply>>,
    health: SharedHealth,
}

/// Changed keys that keep their old value until a restart: what is built once at start (the
/// routes of optional parts, the log format, the UDP port pool, the static file service, the
/// certificate store). A listen address is moved live, unless it turns a listener on or off.
fn restart_only(key: &str) -> bool {
    matches!(
        key,
        "log.format"
            | "hls.enabled"
            | "rtsp.enabled"
            | "mms.enabled"
            | "metrics.enabled"
            | "metrics.public"
            | "rtsp.rtp_port_min"
            | "rtsp.rtp_port_max"
            | "http.web_root"
    ) || key.starts_with("tls.")
        || key == "record"
        || key.starts_with("record.")
}

fn is_listen_key(key: &str) -> bool {
    key.ends_with(".listen") || key.ends_with(".tls_listen")
}

/// The value of a listen key in `config`.
fn listen_value<'a>(config: &'a Config, key: &str) -> &'a str {
    match key {
        "rtmp.listen" => &config.rtmp.listen,
        "rtmp.tls_listen" => &config.rtmp.tls_listen,
        "http.listen" => &config.http.listen,
        "http.tls_listen" => &config.http.tls_listen,
        "rtsp.listen" => &config.rtsp.listen,
        "rtsp.tls_listen" => &config.rtsp.tls_listen,
        "mms.listen" => &config.mms.listen,
        _ => "",
    }
}

/// Binds `addr` as the gateway binds at start (SO_REUSEADDR, as tokio does), without blocking.
fn bind_now(addr: &str) -> std::io::Result<TcpListener> {
    let resolved = addr.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    })?;
    let socket = match resolved {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(resolved)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The accept queue of a rebound listener, tokio's default for `TcpListener::bind`.
const LISTEN_BACKLOG: u32 = 1024;

impl Reloader {
    pub(crate) fn new(
        config: &Config,
        path: Option<PathBuf>,
        access: &Arc<Access>,
        http_loopback_only: bool,
    ) -> Reloader {
        Reloader {
            path,
            running: Mutex::new(config.clone()),
            access: Arc::clone(access),
            http_loopback_only,
            listeners: Mutex::new(Vec::new()),
            movable: Mutex::new(Vec::new()),
            appliers: Mutex::new(Vec::new()),
            health: Arc::new(RwLock::new(monitor::Limits::from_config(&config.health))),
        }
    }

    /// Registers the admission of section `section`'s listener.
    pub(crate) fn add_listener(&self, section: &'static str, limits: &ConnLimits) {
        lock(&self.listeners).push((section, limits.clone()));
    }

    /// Registers the listener `name` whose address is the key `key`, which a reload can move.
    pub(crate) fn add_rebind(&self, key: &'static str, name: &'static str, rebind: Rebind) {
        lock(&self.movable).push(Movable { key, name, rebind });
    }

    /// Registers what puts a shell's options, rebuilt from the configuration in force, in
    /// place after a reload. Called with the whole configuration on every reload that changed
    /// anything live.
    pub(crate) fn on_apply(&self, apply: impl Fn(&Config) + Send + Sync + 'static) {
        lock(&self.appliers).push(Box::new(apply));
    }

    /// Every listener by name and the address it listens on now.
    pub(crate) fn bound(&self) -> Vec<(&'static str, SocketAddr)> {
        lock(&self.movable)
            .iter()
            .map(|m| (m.name, m.rebind.addr()))
            .collect()
    }

    /// The port the listener `name` listens on now, if it is on.
    pub(crate) fn port_of(&self, name: &str) -> Option<u16> {
        lock(&self.movable)
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.rebind.addr().port())
    }

    pub(crate) fn health(&self) -> &SharedHealth {
        &self.health
    }

    /// Re-reads the file the gateway was started with and applies it; logs what it did or why
    /// it refused.
    pub(crate) fn reload_file(&self) -> Result<ReloadReport, ReloadError> {
        let result = match &self.path {
            None => Err(ReloadError::NoFile),
            Some(path) => Config::load(path).map_err(ReloadError::from),
        };
        match result {
            Ok(config) => Ok(self.apply(&config)),
            Err(err) => {
                tracing::error!("configuration reload refused, the running one stays: {err}");
                Err(err)
            }
        }
    }

    /// Applies `new` (already parsed and validated), logging what changed.
    pub(crate) fn apply(&self, new: &Config) -> ReloadReport {
        let mut running = lock(&self.running);
        let mut report = ReloadReport::default();
        let mut live = Vec::new();
        let mut listen = Vec::new();
        for key in running.changed_keys(new) {
            if key == "log.level" {
                match crate::set_log_level(&new.log.level) {
                    Ok(()) => live.push(key),
                    Err(why) => report.failed.push(format!("{key}: {why}")),
                }
            } else if is_listen_key(&key) {
                listen.push(key);
            } else if restart_only(&key) {
                report.needs_restart.push(key);
            } else {
                live.push(key);
            }
        }
        let auth_changed = live.iter().any(|k| k.starts_with("auth."));
        *running = running.with_keys_from(new, &live);
        report.applied = live;
        if auth_changed {
            self.access.replace(self.access_options(&running));
        }
        // After `[auth]`: moving the HTTP listener off loopback asks whether a token guards the
        // API by then.
        for key in listen {
            match self.move_listener(&key, listen_value(new, &key)) {
                Ok(true) => {
                    *running = running.with_keys_from(new, std::slice::from_ref(&key));
                    report.applied.push(key);
                }
                Ok(false) => report.needs_restart.push(key),
                Err(why) => report.failed.push(format!("{key}: {why}")),
            }
        }
        report.applied.sort();
        report.needs_restart.sort();
        if !report.applied.is_empty() {
            self.apply_running(&running);
        }
        tracing::info!(
            applied = %keys_for_log(&report.applied),
            needs_restart = %keys_for_log(&report.needs_restart),
            failed = %keys_for_log(&report.failed),
            "configuration reloaded"
        );
        report
    }

    /// Puts the configuration in force into every part that reads it.
    fn apply_running(&self, running: &Config) {
        *self.health.write().unwrap_or_else(|p| p.into_inner()) =
            monitor::Limits::from_config(&running.health);
        for (section, limits) in lock(&self.listeners).iter() {
            let caps = match *section {
                "rtmp" => running.rtmp.caps(),
                "http" => running.http.caps(),
                "rtsp" => running.rtsp.caps(),
                _ => running.mms.caps(),
            };
            limits.set_admission(Admission {
                max_connections: caps.max_connections,
                max_connections_per_ip: caps.max_connections_per_ip,
                connection_rate_per_ip: caps.connection_rate_per_ip,
                connection_burst_per_ip: caps.connection_burst_per_ip,
            });
        }
        for apply in lock(&self.appliers).iter() {
            apply(running);
        }
    }

    /// Moves the listener of `key` to `addr`: `Ok(true)` when it moved, `Ok(false)` when the
    /// change turns a listener on or off (a restart does that), `Err` when the new address
    /// cannot be bound or may not be used; the listener then stays where it is.
    fn move_listener(&self, key: &str, addr: &str) -> Result<bool, String> {
        let movable = lock(&self.movable);
        let Some(m) = movable.iter().find(|m| m.key == key) else {
            return Ok(false);
        };
        if addr.trim().is_empty() {
            return Ok(false);
        }
        let socket = bind_now(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = socket
            .local_addr()
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let http = key.starts_with("http.");
        if http
            && self.http_loopback_only
            && !bound.ip().is_loopback()
            && self.access.options().api_token.is_none()
        {
            return Err(format!(
                "{addr} is not loopback and auth.api_token is empty: the API would be open to the network (set auth.api_token, or restart to get a random one)"
            ));
        }
        m.rebind
            .replace(socket)
            .map_err(|_| "its listener has stopped".to_owned())?;
        Ok(true)
    }

    /// The access options of `new`; an empty `api_token` on a listener that needs one keeps the
    /// token in force (the random one logged at start), rather than drawing another.
    fn access_options(&self, new: &Config) -> access::Options {
        let mut opts = crate::wiring::access_options(&new.auth, true);
        if opts.api_token.is_none() && !self.http_loopback_only {
            opts.api_token = self.access.options().api_token.clone();
        }
        opts
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
