//! Admission of new connections (caps on open connections in total and per client, a per-client
//! rate of new connections) and the counters of every refusal and timeout of one listener.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::rate::{RateTable, Verdict, MAX_RATE_CLIENTS};
use crate::RateLimit;

/// Refusals are logged at most this often.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Default of every listener's `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default of every listener's `max_connections_per_ip`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1000;
/// Default of every listener's `connection_rate_per_ip`: new connections a second from one
/// client, sustained. A load tool ramping up 500 viewers a second from one address (gwload's
/// default) stays within it.
pub const DEFAULT_CONNECTION_RATE_PER_IP: u32 = 500;
/// Default of every listener's `connection_burst_per_ip`: new connections one client may open at
/// once before the rate applies; as many as it may hold open by default.
pub const DEFAULT_CONNECTION_BURST_PER_IP: u32 = 1000;

/// What a listener admits (the keys of the same names in its config section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client at most.
    pub max_connections_per_ip: usize,
    /// New connections a second from one client, sustained (a token bucket refilled at this
    /// rate)...
    pub connection_rate_per_ip: u32,
    /// ... holding this many tokens when full.
    pub connection_burst_per_ip: u32,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            connection_rate_per_ip: DEFAULT_CONNECTION_RATE_PER_IP,
            connection_burst_per_ip: DEFAULT_CONNECTION_BURST_PER_IP,
        }
    }
}

/// The client a peer address belongs to, for every per-client limit: an IPv4 address (also when
/// it arrives IPv4-mapped on a dual-stack listener), or an IPv6 address's /64 prefix, the
/// smallest network a site is given, so one host cannot step around the limits by using many
/// addresses of its own prefix.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The listener already holds `max_connections`.
    Total,
    /// This client already holds `max_connections_per_ip`.
    PerIp,
    /// This client opens connections faster than `connection_rate_per_ip` allows.
    Rate,
}

/// Why a connection that was admitted was closed by one of its timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// It did not complete its start in time: the RTMP handshake, an HTTP request head, an RTSP
    /// request without a session, an MMST command before play (silent and slowloris clients).
    Request,
    /// It went silent after that: RTMP idle, an HTTP keep-alive connection with no request, an
    /// RTSP UDP session without RTCP or requests.
    Idle,
}

/// A snapshot of one listener's admission counters, for the stats API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerStats {
    /// The limits in force.
    pub admission: Admission,
    /// Connections open now.
    pub open: usize,
    /// Connections admitted since start.
    pub accepted: u64,
    /// Refused since start because the listener held `max_connections`...
    pub refused_max_connections: u64,
    /// ... because the client held `max_connections_per_ip`...
    pub refused_max_connections_per_ip: u64,
    /// ... because the client connected faster than `connection_rate_per_ip`.
    pub refused_connection_rate: u64,
    /// Admitted without a rate check because the rate table was full (see [`Admission`]).
    pub rate_untracked: u64,
    /// Closed by [`Timeout::Request`] since start.
    pub request_timeouts: u64,
    /// Closed by [`Timeout::Idle`] since start.
    pub idle_timeouts: u64,
    /// Closed since start for a request over the listener's size limit (an HTTP head over
    /// 32 KiB, an RTSP request over its head or body limit, an RTMP message over
    /// `rtmp.max_message_size`).
    pub oversized_requests: u64,
    /// Connections whose handshake failed (RTMP's, or TLS's) since start.
    pub handshake_failures: u64,
}

/// The most distinct protocol-error kinds a listener counts; kinds are names in the code, so
/// this is never reached, but the table is bounded all the same.
const MAX_ERROR_KINDS: usize = 32;

/// One listener's admission: its open connections, counted in total and per client, the rate
/// of new connections per client, and counters of every refusal and timeout.
///
/// Cloning shares everything. A connection holds a [`ConnPermit`] for as long as it is open.
#[derive(Clone)]
pub struct ConnLimits {
    inner: Arc<Inner>,
}

struct Inner {
    listener: &'static str,
    state: Mutex<State>,
    counters: Counters,
}

struct State {
    /// The limits in force; [`ConnLimits::set_admission`] replaces them.
    admission: Admission,
    /// How many clients the rate table may hold (kept when the table is rebuilt).
    rate_capacity: usize,
    total: usize,
    per_client: HashMap<IpAddr, usize>,
    rates: RateTable,
    log: RateLimit,
    untracked_log: RateLimit,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused_total: AtomicU64,
    refused_per_ip: AtomicU64,
    refused_rate: AtomicU64,
    rate_untracked: AtomicU64,
    request_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    oversized_requests: AtomicU64,
    handshake_failures: AtomicU64,
    protocol_errors: Mutex<Vec<(&'static str, u64)>>,
}

impl fmt::Debug for ConnLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnLimits")
            .field("listener", &self.inner.listener)
            .field("admission", &self.admission())
            .finish_non_exhaustive()
    }
}

impl ConnLimits {
    /// The admission of the listener named `listener` (in log lines and the stats API).
    pub fn new(listener: &'static str, admission: Admission) -> ConnLimits {
        ConnLimits::with_rate_capacity(listener, admission, MAX_RATE_CLIENTS)
    }

    fn with_rate_capacity(
        listener: &'static str,
        admission: Admission,
        capacity: usize,
    ) -> ConnLimits {
        let rates = RateTable::new(
            admission.connection_rate_per_ip,
            admission.connection_burst_per_ip,
            capacity,
        );
        ConnLimits {
            inner: Arc::new(Inner {
                listener,
                state: Mutex::new(State {
                    admission,
                    rate_capacity: capacity,
                    total: 0,
                    per_client: HashMap::new(),
                    rates,
                    log: RateLimit::new(REFUSAL_LOG_INTERVAL),
                    untracked_log: RateLimit::new(REFUSAL_LOG_INTERVAL),
                }),
                counters: Counters::default(),
            }),
        }
    }

    /// The listener's name.
    pub fn listener(&self) -> &'static str {
        self.inner.listener
    }

    /// The limits in force.
    pub fn admission(&self) -> Admission {
        self.state().admission
    }

    /// Replaces the limits (a configuration reload). Open connections keep their permits and
    /// stay counted against the new caps; the per-client rate table starts afresh with the new
    /// rate and burst. An unchanged admission changes nothing.
    pub fn set_admission(&self, admission: Admission) {
        let mut state = self.state();
        if state.admission == admission {
            return;
        }
        if (
            state.admission.connection_rate_per_ip,
            state.admission.connection_burst_per_ip,
        ) != (
            admission.connection_rate_per_ip,
            admission.connection_burst_per_ip,
        ) {
            state.rates = RateTable::new(
                admission.connection_rate_per_ip,
                admission.connection_burst_per_ip,
                state.rate_capacity,
            );
        }
        state.admission = admission;
    }

    /// A permit for one more connection from `ip`, or why not. Every attempt counts against the
    /// client's rate, admitted or not. A refusal is counted and logged (at most once a second,
    /// with the number of refusals kept quiet); the caller closes the socket at once.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnPermit, Refused> {
        self.try_acquire_at(ip, Instant::now())
    }

    fn try_acquire_at(&self, ip: IpAddr, now: Instant) -> Result<ConnPermit, Refused> {
        let client = client_of(ip);
        let mut state = self.state();
        let a = state.admission;
        let verdict = state.rates.check(client, now);
        let from_client = state.per_client.get(&client).copied().unwrap_or(0);
        let refused = if verdict == Verdict::Refuse {
            Some(Refused::Rate)
        } else if state.total >= a.max_connections {
            Some(Refused::Total)
        } else if from_client >= a.max_connections_per_ip {
            Some(Refused::PerIp)
        } else {
            None
        };
        if let Some(why) = refused {
            self.count_refusal(why);
            self.log_refusal(&mut state, client, why, now);
            return Err(why);
        }
        if verdict == Verdict::Untracked {
            self.note_untracked(&mut state, now);
        }
        state.total += 1;
        state.per_client.insert(client, from_client + 1);
        self.inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(ConnPermit {
            limits: self.clone(),
            client,
        })
    }

    /// Counts a connection this listener closed by one of its timers.
    pub fn timed_out(&self, which: Timeout) {
        let c = &self.inner.counters;
        let counter = match which {
            Timeout::Request => &c.request_timeouts,
            Timeout::Idle => &c.idle_timeouts,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection this listener closed for a request over its size limit.
    pub fn oversized_request(&self) {
        let c = &self.inner.counters;
        c.oversized_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection whose handshake failed or timed out.
    pub fn handshake_failed(&self) {
        let c = &self.inner.counters;
        c.handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection ended because its peer broke the protocol; `kind` names how, in a few
    /// lowercase words (`"chunk"`, `"amf"`, `"bad_request"`).
    pub fn protocol_error(&self, kind: &'static str) {
        let mut errors = self
            .inner
            .counters
            .protocol_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((_, n)) = errors.iter_mut().find(|(k, _)| *k == kind) {
            *n += 1;
        } else if errors.len() < MAX_ERROR_KINDS {
            errors.push((kind, 1));
        }
    }

    /// Protocol errors counted so far, by kind ([`ConnLimits::protocol_error`]).
    pub fn protocol_errors(&self) -> Vec<(&'static str, u64)> {
        let errors = self
            .inner
            .counters
            .protocol_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        errors.clone()
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.state().total
    }

    /// Connections refused since start, for every reason.
    pub fn refused(&self) -> u64 {
        // Atomics only: this is called with the state locked.
        let c = &self.inner.counters;
        [&c.refused_total, &c.refused_per_ip, &c.refused_rate]
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// The counters now.
    pub fn stats(&self) -> ListenerStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ListenerStats {
            admission: self.admission(),
            open: self.open(),
            accepted: get(&c.accepted),
            refused_max_connections: get(&c.refused_total),
            refused_max_connections_per_ip: get(&c.refused_per_ip),
            refused_connection_rate: get(&c.refused_rate),
            rate_untracked: get(&c.rate_untracked),
            request_timeouts: get(&c.request_timeouts),
            idle_timeouts: get(&c.idle_timeouts),
            oversized_requests: get(&c.oversized_requests),
            handshake_failures: get(&c.handshake_failures),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one statement.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_refusal(&self, why: Refused) {
        let c = &self.inner.counters;
        let counter = match why {
            Refused::Total => &c.refused_total,
            Refused::PerIp => &c.refused_per_ip,
            Refused::Rate => &c.refused_rate,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn log_refusal(&self, state: &mut State, client: IpAddr, why: Refused, now: Instant) {
        let Some(suppressed) = state.log.check(now) else {
            return;
        };
        let a = state.admission;
        let (limit, key) = match why {
            Refused::Total => (a.max_connections, "max_connections"),
            Refused::PerIp => (a.max_connections_per_ip, "max_connections_per_ip"),
            Refused::Rate => (
                a.connection_rate_per_ip as usize,
                "connection_rate_per_ip (and connection_burst_per_ip)",
            ),
        };
        tracing::warn!(
            listener = %self.inner.listener,
            peer = %client,
            limit,
            refused_total = self.refused(),
            suppressed,
            "connection refused: {key} reached"
        );
    }

    fn note_untracked(&self, state: &mut State, now: Instant) {
        let c = &self.inner.counters;
        c.rate_untracked.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = state.untracked_log.check(now) {
            tracing::warn!(
                listener = %self.inner.listener,
                clients = MAX_RATE_CLIENTS,
                suppressed,
                "per-client rate table full: new clients are admitted without a rate check"
            );
        }
    }

    fn release(&self, client: IpAddr) {
        let mut state = self.state();
        state.total = state.total.saturating_sub(1);
        if let Some(n) = state.per_client.get_mut(&client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.per_client.remove(&client);
            }
        }
    }
}

/// One open connection's place in its [`ConnLimits`]; dropping it frees the place.
#[derive(Debug)]
pub struct ConnPermit {
    limits: ConnLimits,
    client: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limits.release(self.client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("a test address")
    }

    fn caps(total: usize, per_ip: usize) -> ConnLimits {
        ConnLimits::new(
            "test",
            Admission {
                max_connections: total,
                max_connections_per_ip: per_ip,
                ..Admission::default()
            },
        )
    }

    #[test]
    fn per_ip_and_total_caps() {
        let limits = caps(3, 2);
        let a1 = limits.try_acquire(ip("10.0.0.1")).expect("first from a");
        let _a2 = limits.try_acquire(ip("10.0.0.1")).expect("second from a");
        assert_eq!(
            limits.try_acquire(ip("10.0.0.1")).err(),
            Some(Refused::PerIp)
        );
        // The IPv4-mapped form of the same address is the same client.
        let mapped = ip("::ffff:10.0.0.1");
        assert_eq!(limits.try_acquire(mapped).err(), Some(Refused::PerIp));
        let _b1 = limits.try_acquire(ip("10.0.0.2")).expect("first from b");
        assert_eq!(
            limits.try_acquire(ip("10.0.0.3")).err(),
            Some(Refused::Total)
        );
        assert_eq!((limits.open(), limits.refused()), (3, 3));
        drop(a1);
        assert_eq!(limits.open(), 2);
        let _a3 = limits
            .try_acquire(ip("10.0.0.1"))
            .expect("a place was freed");
        let s = limits.stats();
        assert_eq!(
            (
                s.accepted,
                s.refused_max_connections,
                s.refused_max_connections_per_ip
            ),
            (4, 1, 2)
        );
    }

    #[test]
    fn an_ipv6_client_is_its_64_prefix() {
        let limits = caps(10, 2);
        let _a = limits.try_acquire(ip("2001:db8:1:2::1")).expect("first");
        let _b = limits
            .try_acquire(ip("2001:db8:1:2:ffff::9"))
            .expect("second");
        assert_eq!(
            limits.try_acquire(ip("2001:db8:1:2:abcd::1")).err(),
            Some(Refused::PerIp),
            "a third address of the same /64"
        );
        let _c = limits
            .try_acquire(ip("2001:db8:1:3::1"))
            .expect("another /64 is another client");
        assert_eq!(client_of(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
    }

    #[test]
    fn a_client_that_leaves_is_forgotten() {
        let limits = caps(10, 1);
        drop(limits.try_acquire(ip("10.0.0.1")).expect("free"));
        assert!(limits.state().per_client.is_empty());
    }

    #[test]
    fn connecting_faster_than_the_rate_is_refused_per_client() {
        let limits = ConnLimits::new(
            "test",
            Admission {
                connection_rate_per_ip: 10,
                connection_burst_per_ip: 5,
                ..Admission::default()
            },
        );
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        // Connect and close at once: the open-connection caps never trigger, the rate does.
        for i in 0..5 {
            assert!(limits.try_acquire_at(a, t0).is_ok(), "burst {i}");
        }
        assert_eq!(limits.try_acquire_at(a, t0).err(), Some(Refused::Rate));
        assert!(limits.try_acquire_at(ip("10.0.0.2"), t0).is_ok());
        let later = t0 + Duration::from_millis(100);
        assert!(limits.try_acquire_at(a, later).is_ok(), "refilled one");
        let s = limits.stats();
        assert_eq!((s.accepted, s.refused_connection_rate, s.open), (7, 1, 0));
    }

    #[test]
    fn a_full_rate_table_admits_newcomers_untracked() {
        let admission = Admission {
            connection_rate_per_ip: 1,
            connection_burst_per_ip: 1,
            ..Admission::default()
        };
        let limits = ConnLimits::with_rate_capacity("test", admission, 2);
        let t0 = Instant::now();
        assert!(limits.try_acquire_at(ip("10.0.0.1"), t0).is_ok());
        assert!(limits.try_acquire_at(ip("10.0.0.2"), t0).is_ok());
        assert!(limits.try_acquire_at(ip("10.0.0.3"), t0).is_ok());
        assert_eq!(
            limits.try_acquire_at(ip("10.0.0.1"), t0).err(),
            Some(Refused::Rate),
            "a tracked client is still limited"
        );
        assert_eq!(limits.stats().rate_untracked, 1);
    }

    #[test]
    fn timeouts_and_oversized_requests_are_counted() {
        let limits = caps(10, 10);
        limits.timed_out(Timeout::Request);
        limits.timed_out(Timeout::Idle);
        limits.timed_out(Timeout::Idle);
        limits.oversized_request();
        let s = limits.stats();
        assert_eq!(
            (s.request_timeouts, s.idle_timeouts, s.oversized_requests),
            (1, 2, 1)
        );
    }

    #[test]
    fn new_limits_apply_to_new_connections_and_open_ones_stay_counted() {
        let limits = caps(3, 3);
        let a = ip("10.0.0.1");
        let held: Vec<_> = (0..3)
            .map(|_| limits.try_acquire(a).expect("within the caps"))
            .collect();
        limits.set_admission(Admission {
            max_connections: 10,
            max_connections_per_ip: 2,
            ..limits.admission()
        });
        assert_eq!(
            limits.stats().open,
            3,
            "open connections keep their permits"
        );
        assert_eq!(limits.stats().admission.max_connections_per_ip, 2);
        assert_eq!(limits.try_acquire(a).err(), Some(Refused::PerIp));
        drop(held);
        assert_eq!(limits.stats().open, 0);
        let _b = limits.try_acquire(a).expect("under the new cap");

        // A new rate starts a fresh table with the new burst.
        let t0 = Instant::now();
        limits.set_admission(Admission {
            connection_rate_per_ip: 1,
            connection_burst_per_ip: 2,
            ..limits.admission()
        });
        let c = ip("10.0.0.9");
        drop(limits.try_acquire_at(c, t0).expect("burst 1"));
        drop(limits.try_acquire_at(c, t0).expect("burst 2"));
        assert_eq!(limits.try_acquire_at(c, t0).err(), Some(Refused::Rate));
    }
}
