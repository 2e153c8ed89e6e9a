//! Reloading the configuration while the gateway runs (SIGHUP, `POST /api/reload`).
//!
//! A reload reads the file the gateway was started with (or takes a [`Config`] in tests) and
//! compares it key by key with the configuration in force. What can change live is applied:
//!
//! - `log.level` (unless `RUST_LOG` decides the filter);
//! - everything in `[auth]` (rules, tokens, users, hooks, `api_token`): new requests are decided
//!   by the new policy, connections already admitted are not asked again;
//! - the admission keys of every listener (`max_connections`, `max_connections_per_ip`,
//!   `connection_rate_per_ip`, `connection_burst_per_ip`): open connections stay and count
//!   against the new caps;
//! - `[health]`: the next judgement (within a second) uses the new limits.
//!
//! Every other changed key is reported as needing a restart, and keeps its old value until then.
//! A file that does not parse or validate changes nothing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use access::Access;
use gateway_config::{Config, ConfigError};
use netutil::{Admission, ConnLimits, Rebind};

use crate::monitor;

/// What a reload did: the keys that changed and took effect, and those that changed but keep
/// their old value until a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub applied: Vec<String>,
    pub needs_restart: Vec<String>,
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
    /// Each bound listener's handle by its address key (`"rtmp.listen"`, `"http.tls_listen"`).
    rebinds: Mutex<Vec<(&'static str, Rebind)>>,
    health: SharedHealth,
}

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
            rebinds: Mutex::new(Vec::new()),
            health: Arc::new(RwLock::new(monitor::Limits::from_config(&config.health))),
        }
    }

    /// Registers the admission of section `section`'s listener.
    pub(crate) fn add_listener(&self, section: &'static str, limits: &ConnLimits) {
        lock(&self.listeners).push((section, limits.clone()));
    }

    /// Registers the listener whose address is the key `key`, which a reload can move.
    pub(crate) fn add_rebind(&self, key: &'static str, rebind: Rebind) {
        lock(&self.rebinds).push((key, rebind));
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
        let changed = running.changed_keys(new);
        let mut auth_changed = false;
        for key in changed {
            let (section, rest) = key.split_once('.').unwrap_or((key.as_str(), ""));
            let live = match (section, rest) {
                ("log", "level") => match crate::set_log_level(&new.log.level) {
                    Ok(()) => {
                        running.log.level = new.log.level.clone();
                        true
                    }
                    Err(why) => {
                        tracing::warn!("log.level not changed: {why}");
                        false
                    }
                },
                ("auth", _) => {
                    auth_changed = true;
                    true
                }
                ("health", _) => true,
                (
                    "rtmp" | "http" | "rtsp" | "mms",
                    "max_connections"
                    | "max_connections_per_ip"
                    | "connection_rate_per_ip"
                    | "connection_burst_per_ip",
                ) => true,
                _ => false,
            };
            match live {
                true => report.applied.push(key),
                false => report.needs_restart.push(key),
            }
        }
        if auth_changed {
            self.access.replace(self.access_options(new));
            running.auth = new.auth.clone();
        }
        if running.health != new.health {
            *self.health.write().unwrap_or_else(|p| p.into_inner()) =
                monitor::Limits::from_config(&new.health);
            running.health = new.health.clone();
        }
        running.rtmp.set_caps(new.rtmp.caps());
        running.http.set_caps(new.http.caps());
        running.rtsp.set_caps(new.rtsp.caps());
        running.mms.set_caps(new.mms.caps());
        for (section, limits) in lock(&self.listeners).iter() {
            let caps = match *section {
                "rtmp" => new.rtmp.caps(),
                "http" => new.http.caps(),
                "rtsp" => new.rtsp.caps(),
                _ => new.mms.caps(),
            };
            limits.set_admission(Admission {
                max_connections: caps.max_connections,
                max_connections_per_ip: caps.max_connections_per_ip,
                connection_rate_per_ip: caps.connection_rate_per_ip,
                connection_burst_per_ip: caps.connection_burst_per_ip,
            });
        }
        tracing::info!(
            applied = ?report.applied,
            needs_restart = ?report.needs_restart,
            "configuration reloaded"
        );
        report
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
