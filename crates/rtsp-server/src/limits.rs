//! The per-client-address cap on RTSP sessions, and the counts of SETUPs the limits refused.
//!
//! Each session holds at most one UDP port pair per track of its stream, so capping sessions per
//! client IP also caps the port pairs one host can take from the shared pool: a single client
//! cannot exhaust the pool and lock every other UDP viewer out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// SETUPs refused by the limits, counted since start; shared with the gateway's stats API
/// through [`crate::Options::setup_refusals`].
#[derive(Debug, Default)]
pub struct SetupRefusals {
    per_ip: AtomicU64,
    per_connection: AtomicU64,
    destination: AtomicU64,
    client_port: AtomicU64,
    no_free_ports: AtomicU64,
}

/// Why a SETUP was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupRefusal {
    /// The client address holds `rtsp.max_sessions_per_ip` sessions (453).
    SessionsPerIp,
    /// A second session on one connection (455).
    SessionsPerConnection,
    /// A `destination` other than the client's own address (461).
    Destination,
    /// A UDP client port below 1024 (461).
    ClientPort,
    /// No UDP port pair free in the range (453).
    NoFreePorts,
}

/// A snapshot of [`SetupRefusals`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetupRefusalStats {
    pub sessions_per_ip: u64,
    pub sessions_per_connection: u64,
    pub destination: u64,
    pub client_port: u64,
    pub no_free_ports: u64,
}

impl SetupRefusals {
    pub fn count(&self, why: SetupRefusal) {
        let counter = match why {
            SetupRefusal::SessionsPerIp => &self.per_ip,
            SetupRefusal::SessionsPerConnection => &self.per_connection,
            SetupRefusal::Destination => &self.destination,
            SetupRefusal::ClientPort => &self.client_port,
            SetupRefusal::NoFreePorts => &self.no_free_ports,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> SetupRefusalStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SetupRefusalStats {
            sessions_per_ip: get(&self.per_ip),
            sessions_per_connection: get(&self.per_connection),
            destination: get(&self.destination),
            client_port: get(&self.client_port),
            no_free_ports: get(&self.no_free_ports),
        }
    }
}

/// Counts the sessions of each client address against a limit, which each acquisition names
/// (the connection's `rtsp.max_sessions_per_ip`, so a reload that lowers it refuses new sessions
/// and leaves those already counted alone).
#[derive(Debug, Clone, Default)]
pub struct PeerLimits {
    sessions: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One counted session; the count drops when the slot is dropped.
#[derive(Debug)]
pub struct SessionSlot {
    ip: IpAddr,
    limits: PeerLimits,
}

impl PeerLimits {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new session of `ip`; `None` when `ip` already holds `max_per_ip` sessions (or
    /// more, counted under a higher limit).
    pub fn acquire(&self, ip: IpAddr, max_per_ip: usize) -> Option<SessionSlot> {
        // One client as every listener limit sees it: ::ffff:a.b.c.d is a.b.c.d, and an IPv6
        // client is its /64.
        let ip = netutil::client_of(ip);
        let mut sessions = self.lock();
        let n = sessions.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            return None;
        }
        *n += 1;
        Some(SessionSlot {
            ip,
            limits: self.clone(),
        })
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut sessions = self.limits.lock();
        if let Some(n) = sessions.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                sessions.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_capped_per_address_and_freed_on_drop() {
        let limits = PeerLimits::default();
        let acquire = |ip| limits.acquire(ip, 2);
        let a: IpAddr = "10.0.0.1".parse().expect("an address");
        let b: IpAddr = "10.0.0.2".parse().expect("an address");
        let s1 = acquire(a).expect("first session");
        let _s2 = acquire(a).expect("second session");
        assert!(acquire(a).is_none(), "a third session of one address");
        let _other = acquire(b).expect("another address is not affected");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("an address");
        assert!(
            acquire(mapped).is_none(),
            "a v4-mapped address is the same client"
        );
        let v6: IpAddr = "2001:db8::1".parse().expect("an address");
        let same_64: IpAddr = "2001:db8::2".parse().expect("an address");
        let _v6a = acquire(v6).expect("first");
        let _v6b = acquire(same_64).expect("second of the /64");
        assert!(acquire(v6).is_none(), "one /64 is one client");
        drop(s1);
        assert!(acquire(a).is_some(), "a freed slot is reusable");
    }

    #[test]
    fn a_lowered_limit_refuses_new_sessions_and_keeps_those_counted() {
        let limits = PeerLimits::default();
        let a: IpAddr = "10.0.0.1".parse().expect("an address");
        let s1 = limits.acquire(a, 3).expect("first");
        let s2 = limits.acquire(a, 3).expect("second");
        assert!(limits.acquire(a, 1).is_none(), "two held, one allowed now");
        drop(s1);
        assert!(limits.acquire(a, 1).is_none(), "one held, one allowed");
        drop(s2);
        assert!(limits.acquire(a, 1).is_some(), "none held");
    }
}
