//! Who may publish and who may play, decided in one place for every protocol.
//!
//! Every shell builds a [`Request`] (action, protocol, app, stream, peer, the URL's query and an
//! `Authorization` header if its protocol has one) and awaits [`Access::check`] before it accepts
//! a publisher or a viewer. The answer is a [`Grant`] or a [`Denial`] that says how to refuse
//! (HTTP 401 with a challenge, or 403) and why; the denial is already logged (peer, key, reason,
//! at most a few lines a second) and counted in [`AccessStats`].
//!
//! The decision, in order:
//! 1. The first [`Rule`] whose app and stream patterns match the key governs; without one the
//!    request is allowed (the gateway is open unless the operator writes rules).
//! 2. The action's [`Policy`]: a peer in `deny_ips`, or outside a non-empty `allow_ips`, is
//!    refused (403).
//! 3. A policy that names credentials (tokens, users, signed URLs) needs one of them: a `token=`
//!    in the query, a user and password (RTSP/HTTP basic or digest), or a signed URL
//!    (`expires=` and `sig=`, see [`signed`]). None sent is 401; a wrong one 401; an expired
//!    link 403.
//! 4. The `on_publish` / `on_play` hook, when configured: a JSON POST whose 2xx allows; any other
//!    status, an unreachable hook or its timeout refuses (fail-closed).
//!
//! `on_unpublish` and `on_stop` hooks are notifications ([`Access::notify`]): sent in the
//! background, at most [`MAX_NOTIFICATIONS_IN_FLIGHT`] at a time, never awaited by a shell.
//!
//! This crate reads the clock (signed-URL expiry, digest nonces) and spawns hook requests on the
//! tokio runtime; the decision itself ([`Access::decide`]) takes `now` and is tested without one.

mod digest;
mod hook;
mod pattern;
mod query;
pub mod signed;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use ipnet::IpNet;

pub use crate::digest::Challenge;
pub use crate::hook::MAX_NOTIFICATIONS_IN_FLIGHT;
pub use crate::query::credential_query;

/// What a client asks to do with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Play,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

/// The protocol a request arrived on (as hooks and logs name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rtmp,
    HttpFlv,
    WsFlv,
    Hls,
    Rtsp,
    Mmsh,
    Mmst,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::HttpFlv => "http-flv",
            Protocol::WsFlv => "ws-flv",
            Protocol::Hls => "hls",
            Protocol::Rtsp => "rtsp",
            Protocol::Mmsh => "mmsh",
            Protocol::Mmst => "mmst",
        }
    }
}

/// A user name and password (RTSP/HTTP basic or digest authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: String,
}

/// Who may do one action (publish or play) on the streams of one rule.
///
/// A policy with no tokens, no users and `signed == false` needs no credential: the IP lists
/// alone decide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// A `token=` query value any of these admits.
    pub tokens: Vec<String>,
    /// User names and passwords (RTSP basic/digest; RTMP and HTTP URLs use tokens).
    pub users: Vec<User>,
    /// A signed, unexpired URL (`expires=`, `sig=`) admits; needs [`Options::sign_secret`].
    pub signed: bool,
    /// When not empty, only peers in these networks.
    pub allow_ips: Vec<IpNet>,
    /// Never peers in these networks (checked first).
    pub deny_ips: Vec<IpNet>,
}

impl Policy {
    /// Whether the policy asks for a credential at all.
    pub fn needs_credentials(&self) -> bool {
        !self.tokens.is_empty() || !self.users.is_empty() || self.signed
    }
}

/// One `[[auth.rule]]`: which streams, and who may publish and play them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// App pattern: `*` matches any run of characters, `?` one character. `*` for every app.
    pub app: String,
    /// Stream pattern, as `app`.
    pub stream: String,
    pub publish: Policy,
    pub play: Policy,
}

/// HTTP callbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// Asked before a publish is accepted (2xx allows).
    pub on_publish: Option<String>,
    /// Asked before a viewer is accepted (2xx allows).
    pub on_play: Option<String>,
    /// Told when a publisher leaves.
    pub on_unpublish: Option<String>,
    /// Told when a viewer leaves.
    pub on_stop: Option<String>,
    /// How long a decision hook may take before the request is refused.
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks {
            on_publish: None,
            on_play: None,
            on_unpublish: None,
            on_stop: None,
            timeout: Duration::from_secs(3),
        }
    }
}

/// Everything [`Access`] decides by. The default allows everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Tried in order; the first whose patterns match a stream governs it.
    pub rules: Vec<Rule>,
    /// The HMAC-SHA256 key of signed URLs; `None` turns them off.
    pub sign_secret: Option<Vec<u8>>,
    /// Realm named in RTSP `WWW-Authenticate` challenges.
    pub realm: String,
    /// How long a digest nonce stays valid.
    pub nonce_lifetime: Duration,
    pub hooks: Hooks,
    /// The token the API and the web page ask for; `None` leaves them open.
    pub api_token: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rules: Vec::new(),
            sign_secret: None,
            realm: "gateway".to_owned(),
            nonce_lifetime: Duration::from_secs(300),
            hooks: Hooks::default(),
            api_token: None,
        }
    }
}

/// An `Authorization` header as an RTSP or HTTP request carried it.
#[derive(Debug, Clone, Copy)]
pub struct Authorization<'a> {
    /// The header's value (`Basic ...` or `Digest ...`).
    pub header: &'a str,
    /// The request's method (digest hashes it), e.g. `DESCRIBE`.
    pub method: &'a str,
    /// The request's target as its request line carried it (`rtsp://host/live/x`,
    /// `/live/x?token=...`). A digest response counts only for this target: its `uri=` must
    /// name the same path and query, so a response seen on one URL cannot open another.
    pub uri: &'a str,
}

/// What a shell asks.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub action: Action,
    pub protocol: Protocol,
    /// Whether the connection is TLS (RTMPS, HTTPS, RTSPS); hooks see it.
    pub tls: bool,
    pub app: &'a str,
    pub stream: &'a str,
    pub peer: SocketAddr,
    /// The URL's query string, without the `?`.
    pub query: Option<&'a str>,
    pub authorization: Option<Authorization<'a>>,
}

/// Put into an HTTP request's extensions by a listener that received it over TLS (HTTPS, WSS):
/// the shells on the HTTP listener read it for [`Request::tls`], and the API for the scheme of
/// the URLs it shows.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// An accepted request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The user that authenticated, if one did.
    pub user: Option<String>,
    /// The credential part of the request's query (`token`, `expires`, `sig`), encoded, for URLs
    /// the response hands on (HLS segment and key URIs); `None` when there was none.
    pub carry: Option<String>,
}

impl Grant {
    /// `uri` with [`Grant::carry`] appended as (more) query parameters.
    pub fn carry_into(&self, uri: &str) -> String {
        match &self.carry {
            None => uri.to_owned(),
            Some(c) if uri.contains('?') => format!("{uri}&{c}"),
            Some(c) => format!("{uri}?{c}"),
        }
    }
}

/// How a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    /// No credential, or a wrong one: HTTP/RTSP 401 with a challenge.
    Unauthorized,
    /// Not allowed whatever the credential: HTTP/RTSP 403.
    Forbidden,
}

/// Why a request was refused, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialCause {
    Ip,
    NoCredentials,
    BadCredentials,
    /// A correct digest response to a nonce that has expired: challenged again with `stale=true`.
    StaleNonce,
    Expired,
    HookDenied,
    HookFailed,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub kind: DenialKind,
    pub cause: DenialCause,
    /// A sentence for the client and the log; never echoes the credential.
    pub reason: String,
}

impl Denial {
    fn new(kind: DenialKind, cause: DenialCause, reason: impl Into<String>) -> Denial {
        Denial {
            kind,
            cause,
            reason: reason.into(),
        }
    }

    /// 401 or 403.
    pub fn http_status(&self) -> u16 {
        match self.kind {
            DenialKind::Unauthorized => 401,
            DenialKind::Forbidden => 403,
        }
    }
}

/// Counters of decisions, for the API.
#[derive(Debug, Default)]
pub struct AccessStats {
    pub allowed: AtomicU64,
    pub denied_ip: AtomicU64,
    pub denied_no_credentials: AtomicU64,
    pub denied_bad_credentials: AtomicU64,
    pub denied_expired: AtomicU64,
    pub denied_by_hook: AtomicU64,
    pub hook_failures: AtomicU64,
    pub notifications_sent: AtomicU64,
    pub notifications_dropped: AtomicU64,
    pub api_denied: AtomicU64,
}

/// A snapshot of [`AccessStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccessCounts {
    pub allowed: u64,
    pub denied_ip: u64,
    pub denied_no_credentials: u64,
    pub denied_bad_credentials: u64,
    pub denied_expired: u64,
    pub denied_by_hook: u64,
    pub hook_failures: u64,
    pub notifications_sent: u64,
    pub notifications_dropped: u64,
    pub api_denied: u64,
}

impl AccessStats {
    pub fn snapshot(&self) -> AccessCounts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AccessCounts {
            allowed: g(&self.allowed),
            denied_ip: g(&self.denied_ip),
            denied_no_credentials: g(&self.denied_no_credentials),
            denied_bad_credentials: g(&self.denied_bad_credentials),
            denied_expired: g(&self.denied_expired),
            denied_by_hook: g(&self.denied_by_hook),
            hook_failures: g(&self.hook_failures),
            notifications_sent: g(&self.notifications_sent),
            notifications_dropped: g(&self.notifications_dropped),
            api_denied: g(&self.api_denied),
        }
    }

    fn count(&self, cause: DenialCause) {
        let c = match cause {
            DenialCause::Ip => &self.denied_ip,
            DenialCause::NoCredentials => &self.denied_no_credentials,
            DenialCause::BadCredentials | DenialCause::StaleNonce => &self.denied_bad_credentials,
            DenialCause::Expired => &self.denied_expired,
            DenialCause::HookDenied => &self.denied_by_hook,
            DenialCause::HookFailed => &self.hook_failures,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// What [`Access::decide`] found before any hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Grant),
    Deny(Denial),
}

/// Something a notification hook is told.
#[derive(Debug, Clone)]
pub struct Notice {
    /// `Publish` for on_unpublish (the publisher left), `Play` for on_stop (a viewer left).
    pub action: Action,
    pub protocol: Protocol,
    pub app: String,
    pub stream: String,
    pub peer: SocketAddr,
    /// Bytes the connection sent (a viewer) or received (a publisher), when the shell knows.
    pub bytes: Option<u64>,
    /// How long it lasted.
    pub duration: Duration,
}

/// The options in force and the hook client built from them, replaced together.
struct Live {
    opts: Arc<Options>,
    hooks: hook::HookClient,
}

impl Live {
    fn new(opts: Options) -> Live {
        let hooks = hook::HookClient::new(&opts.hooks);
        Live {
            opts: Arc::new(opts),
            hooks,
        }
    }
}

/// The one authorization point. Cheap to share (`Arc`); shells hold one each.
///
/// Its options can be replaced while it runs ([`Access::replace`], a configuration reload):
/// requests decided from then on use the new ones; its counters and digest nonce key stay.
pub struct Access {
    live: RwLock<Arc<Live>>,
    stats: AccessStats,
    log_limit: Mutex<netutil::RateLimit>,
    nonce_key: [u8; 32],
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let live = self.live();
        f.debug_struct("Access")
            .field("rules", &live.opts.rules.len())
            .finish_non_exhaustive()
    }
}

/// Longest `app` plus `stream` matched against rules (pattern matching is linear in it).
pub const MAX_KEY_LEN: usize = 1024;

/// At most one denial line per this interval; the rest are counted into the next line.
const DENIAL_LOG_INTERVAL: Duration = Duration::from_millis(100);

impl Access {
    pub fn new(opts: Options) -> Arc<Access> {
        Arc::new(Access {
            live: RwLock::new(Arc::new(Live::new(opts))),
            stats: AccessStats::default(),
            log_limit: Mutex::new(netutil::RateLimit::new(DENIAL_LOG_INTERVAL)),
            nonce_key: rand::random(),
        })
    }

    /// An `Access` that allows everything (no rules, no hooks): what shells use by default.
    pub fn open() -> Arc<Access> {
        Access::new(Options::default())
    }

    /// The options in force (a reload may replace them right after).
    pub fn options(&self) -> Arc<Options> {
        Arc::clone(&self.live().opts)
    }

    /// Replaces the options, building a new hook client from them (a configuration reload).
    /// Requests decided from now on use them; what was already decided stays decided. The
    /// counters and the digest nonce key are kept, so nonces handed out stay valid.
    pub fn replace(&self, opts: Options) {
        let live = Arc::new(Live::new(opts));
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = live;
    }

    fn live(&self) -> Arc<Live> {
        Arc::clone(&self.live.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn stats(&self) -> &AccessStats {
        &self.stats
    }

    /// Whether any rule or hook could refuse an action at all (shells may skip work when not).
    pub fn restricts(&self, action: Action) -> bool {
        let live = self.live();
        let hook = match action {
            Action::Publish => live.opts.hooks.on_publish.is_some(),
            Action::Play => live.opts.hooks.on_play.is_some(),
        };
        hook || !live.opts.rules.is_empty()
    }

    /// The rule governing `app/stream`, if any.
    pub fn rule_for(&self, app: &str, stream: &str) -> Option<Rule> {
        rule_in(&self.live().opts, app, stream).cloned()
    }

    /// Decides `req` at `now` (seconds since the Unix epoch) by the rules alone, without hooks
    /// and without logging or counting.
    pub fn decide(&self, req: &Request<'_>, now_unix: u64) -> Decision {
        self.decide_by(&self.live(), req, now_unix)
    }

    fn decide_by(&self, live: &Live, req: &Request<'_>, now_unix: u64) -> Decision {
        if live.opts.rules.is_empty() {
            return Decision::Allow(Grant::default());
        }
        if req.app.len() + req.stream.len() > MAX_KEY_LEN {
            return Decision::Deny(Denial::new(
                DenialKind::Forbidden,
                DenialCause::BadCredentials,
                "the stream name is too long",
            ));
        }
        let Some(rule) = rule_in(&live.opts, req.app, req.stream) else {
            return Decision::Allow(Grant::default());
        };
        let policy = match req.action {
            Action::Publish => &rule.publish,
            Action::Play => &rule.play,
        };
        let ip = canonical_ip(req.peer.ip());
        if policy.deny_ips.iter().any(|n| n.contains(&ip))
            || (!policy.allow_ips.is_empty() && !policy.allow_ips.iter().any(|n| n.contains(&ip)))
        {
            return Decision::Deny(Denial::new(
                DenialKind::Forbidden,
                DenialCause::Ip,
                format!("{} is not allowed from this address", req.action.as_str()),
            ));
        }
        if !policy.needs_credentials() {
            return Decision::Allow(Grant::default());
        }
        let params = query::Credentials::parse(req.query);
        let carry = params.carry();
        let mut tried = false;
        if let Some(token) = params.token.as_deref() {
            tried = true;
            if policy
                .tokens
                .iter()
                .any(|t| constant_eq(t.as_bytes(), token.as_bytes()))
            {
                return Decision::Allow(Grant { user: None, carry });
            }
        }
        if let (Some(expires), Some(sig)) = (params.expires.as_deref(), params.sig.as_deref()) {
            if policy.signed {
                if let Some(secret) = &live.opts.sign_secret {
                    tried = true;
                    match signed::verify(
                        secret, req.action, req.app, req.stream, expires, sig, now_unix,
                    ) {
                        Ok(()) => return Decision::Allow(Grant { user: None, carry }),
                        Err(signed::SignError::Expired) => {
                            return Decision::Deny(Denial::new(
                                DenialKind::Forbidden,
                                DenialCause::Expired,
                                "the signed link has expired",
                            ))
                        }
                        Err(signed::SignError::Bad) => {}
                    }
                }
            }
        }
        if let Some(auth) = req.authorization {
            tried = true;
            match digest::verify(
                auth,
                &policy.users,
                &live.opts.realm,
                &self.nonce_key,
                live.opts.nonce_lifetime,
                now_unix,
            ) {
                Ok(user) => {
                    return Decision::Allow(Grant {
                        user: Some(user),
                        carry,
                    })
                }
                Err(digest::AuthError::Stale) => {
                    return Decision::Deny(Denial::new(
                        DenialKind::Unauthorized,
                        DenialCause::StaleNonce,
                        "the authentication nonce is stale",
                    ))
                }
                Err(digest::AuthError::Bad) => {}
            }
        }
        if tried {
            Decision::Deny(Denial::new(
                DenialKind::Unauthorized,
                DenialCause::BadCredentials,
                "invalid credentials",
            ))
        } else {
            Decision::Deny(Denial::new(
                DenialKind::Unauthorized,
                DenialCause::NoCredentials,
                "credentials required",
            ))
        }
    }

    /// Decides `req` now: the rules, then the hook. A denial is logged and counted here.
    pub async fn check(&self, req: &Request<'_>) -> Result<Grant, Denial> {
        let live = self.live();
        let decision = match self.decide_by(&live, req, unix_now()) {
            Decision::Allow(grant) => match live.hooks.decide(req).await {
                Ok(()) => Ok(grant),
                Err(denial) => Err(denial),
            },
            Decision::Deny(denial) => Err(denial),
        };
        match &decision {
            Ok(_) => {
                self.stats.allowed.fetch_add(1, Ordering::Relaxed);
            }
            Err(denial) => {
                self.stats.count(denial.cause);
                self.log_denial(req, denial);
            }
        }
        decision
    }

    /// Decides `req` now by the rules alone, logging and counting a denial as [`Access::check`]
    /// does but asking no hook and counting no allowance. For a later request of a client that
    /// `check` has already admitted to the same stream on the same connection (an RTSP SETUP or
    /// PLAY after its DESCRIBE), so the hook answers once per client while every credential the
    /// client sends is still verified.
    pub fn recheck(&self, req: &Request<'_>) -> Result<Grant, Denial> {
        match self.decide(req, unix_now()) {
            Decision::Allow(grant) => Ok(grant),
            Decision::Deny(denial) => {
                self.stats.count(denial.cause);
                self.log_denial(req, &denial);
                Err(denial)
            }
        }
    }

    fn log_denial(&self, req: &Request<'_>, denial: &Denial) {
        let suppressed = {
            let mut limit = self
                .log_limit
                .lock()
                .expect("the log limiter is never poisoned");
            limit.check(Instant::now())
        };
        if let Some(suppressed) = suppressed {
            tracing::warn!(
                peer = %req.peer,
                protocol = %req.protocol.as_str(),
                action = %req.action.as_str(),
                stream = format_args!("{}/{}", req.app, req.stream),
                reason = %denial.reason,
                suppressed,
                "access denied"
            );
        }
    }

    /// The `WWW-Authenticate` challenges to send with a 401 (digest first, then basic).
    pub fn challenges(&self) -> [String; 2] {
        let live = self.live();
        digest::challenges(
            &live.opts.realm,
            &self.nonce_key,
            unix_now() + live.opts.nonce_lifetime.as_secs(),
            false,
        )
    }

    /// The challenges answering `denial`: as [`Access::challenges`], with `stale=true` on the
    /// digest one when the client's only fault was an expired nonce (RFC 2617 section 3.2.1), so
    /// it retries with the new nonce without asking its user again.
    pub fn challenges_for(&self, denial: &Denial) -> [String; 2] {
        let live = self.live();
        digest::challenges(
            &live.opts.realm,
            &self.nonce_key,
            unix_now() + live.opts.nonce_lifetime.as_secs(),
            denial.cause == DenialCause::StaleNonce,
        )
    }

    /// Tells the on_unpublish / on_stop hook, in the background (needs a tokio runtime).
    pub fn notify(&self, notice: Notice) {
        let live = self.live();
        let url = match notice.action {
            Action::Publish => live.opts.hooks.on_unpublish.as_deref(),
            Action::Play => live.opts.hooks.on_stop.as_deref(),
        };
        if let Some(url) = url {
            if live.hooks.notify(url, &notice) {
                self.stats
                    .notifications_sent
                    .fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats
                    .notifications_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Posts an event that is not about one connection (such as a stream's health changing) to
    /// `url`, in the background, with the hooks' client, timeout and in-flight limit; counted like
    /// the notifications.
    pub fn post_event(&self, url: &str, body: &serde_json::Value) {
        let live = self.live();
        let counter = match live.hooks.post(url, body) {
            true => &self.stats.notifications_sent,
            false => &self.stats.notifications_dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A signed query (`expires=...&sig=...`) for `action` on `app/stream`, valid until
    /// `expires_unix`; `None` when no signing secret is configured.
    pub fn sign(
        &self,
        action: Action,
        app: &str,
        stream: &str,
        expires_unix: u64,
    ) -> Option<String> {
        let live = self.live();
        let secret = live.opts.sign_secret.as_deref()?;
        Some(signed::sign_query(
            secret,
            action,
            app,
            stream,
            expires_unix,
        ))
    }

    /// Whether an API or web-page request may pass: always when no token is configured,
    /// otherwise when `Authorization: Bearer <token>` or a `token=` query parameter carries it.
    /// A refusal is counted.
    pub fn api_allowed(&self, authorization: Option<&str>, query: Option<&str>) -> bool {
        let live = self.live();
        let Some(want) = live.opts.api_token.as_deref() else {
            return true;
        };
        let bearer = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim);
        let from_query = query::Credentials::parse(query).token;
        let ok = bearer.is_some_and(|b| constant_eq(b.as_bytes(), want.as_bytes()))
            || from_query.is_some_and(|t| constant_eq(t.as_bytes(), want.as_bytes()));
        if !ok {
            self.stats.api_denied.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}

fn rule_in<'a>(opts: &'a Options, app: &str, stream: &str) -> Option<&'a Rule> {
    opts.rules
        .iter()
        .find(|r| pattern::matches(&r.app, app) && pattern::matches(&r.stream, stream))
}

/// Whether `text` (an app or a stream name) matches `pattern` as an `[[auth.rule]]` pattern
/// does: `*` any run of characters, `?` one. Other crates that pick per-stream settings by
/// pattern (the recorder's rules) use it so that patterns mean the same everywhere.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    pattern::matches(pattern, text)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is, so `127.0.0.0/8` matches `::ffff:127.0.0.1`.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
