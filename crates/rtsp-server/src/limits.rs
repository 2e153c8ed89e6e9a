//! The per-client-address cap on RTSP sessions.
//!
//! Each session holds at most one UDP port pair per track of its stream, so capping sessions per
//! client IP also caps the port pairs one host can take from the shared pool: a single client
//! cannot exhaust the pool and lock every other UDP viewer out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counts the sessions of each client address against a limit.
#[derive(Debug, Clone)]
pub struct PeerLimits {
    max_per_ip: usize,
    sessions: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One counted session; the count drops when the slot is dropped.
#[derive(Debug)]
pub struct SessionSlot {
    ip: IpAddr,
    limits: PeerLimits,
}

impl PeerLimits {
    /// Allows `max_per_ip` sessions per client address at once.
    pub fn new(max_per_ip: usize) -> Self {
        PeerLimits {
            max_per_ip,
            sessions: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new session of `ip`; `None` when `ip` already holds the maximum.
    pub fn acquire(&self, ip: IpAddr) -> Option<SessionSlot> {
        // An IPv4 client on a dual-stack listener shows up as ::ffff:a.b.c.d; count it as a.b.c.d.
        let ip = ip.to_canonical();
        let mut sessions = self.lock();
        let n = sessions.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(SessionSlot {
            ip,
            limits: self.clone(),
        })
    }

    /// The limit per address.
    pub fn max_per_ip(&self) -> usize {
        self.max_per_ip
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
        let limits = PeerLimits::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("an address");
        let b: IpAddr = "10.0.0.2".parse().expect("an address");
        let s1 = limits.acquire(a).expect("first session");
        let _s2 = limits.acquire(a).expect("second session");
        assert!(
            limits.acquire(a).is_none(),
            "a third session of one address"
        );
        let _other = limits.acquire(b).expect("another address is not affected");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("an address");
        assert!(
            limits.acquire(mapped).is_none(),
            "a v4-mapped address is the same client"
        );
        drop(s1);
        assert!(limits.acquire(a).is_some(), "a freed slot is reusable");
    }
}
