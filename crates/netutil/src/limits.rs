//! Caps on open connections, in total and per client IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::RateLimit;

/// Refusals are logged at most this often.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The listener already holds its maximum number of connections.
    Total,
    /// This client IP already holds its maximum number of connections.
    PerIp,
}

/// The open connections of one listener, counted in total and per client IP.
///
/// Cloning shares the counts. A connection holds a [`ConnPermit`] for as long as it is open.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    listener: &'static str,
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
    refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    log: Option<RateLimit>,
}

impl ConnLimits {
    /// At most `max_total` connections on the listener named `listener` (in log lines), and at
    /// most `max_per_ip` from one client address. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn new(listener: &'static str, max_total: usize, max_per_ip: usize) -> ConnLimits {
        ConnLimits {
            inner: Arc::new(Inner {
                listener,
                max_total,
                max_per_ip,
                counts: Mutex::new(Counts::default()),
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// A permit for one more connection from `ip`, or why not. A refusal is counted and logged
    /// (at most once a second, with the number of refusals kept quiet); the caller closes the
    /// socket at once.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnPermit, Refused> {
        let ip = ip.to_canonical();
        let mut counts = self.counts();
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        let refused = if counts.total >= self.inner.max_total {
            Some(Refused::Total)
        } else if from_ip >= self.inner.max_per_ip {
            Some(Refused::PerIp)
        } else {
            None
        };
        if let Some(why) = refused {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            self.log_refusal(&mut counts, ip, why);
            return Err(why);
        }
        counts.total += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        Ok(ConnPermit {
            limits: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts().total
    }

    /// Connections refused since start.
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: every update is one statement.
        self.inner.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log_refusal(&self, counts: &mut Counts, ip: IpAddr, why: Refused) {
        let log = counts
            .log
            .get_or_insert_with(|| RateLimit::new(REFUSAL_LOG_INTERVAL));
        let Some(suppressed) = log.check(Instant::now()) else {
            return;
        };
        let (limit, key) = match why {
            Refused::Total => (self.inner.max_total, "max_connections"),
            Refused::PerIp => (self.inner.max_per_ip, "max_connections_per_ip"),
        };
        tracing::warn!(
            listener = self.inner.listener,
            peer = %ip,
            limit,
            refused_total = self.refused(),
            suppressed,
            "connection refused: {key} reached"
        );
    }

    fn release(&self, ip: IpAddr) {
        let mut counts = self.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}

/// One open connection's place in its [`ConnLimits`]; dropping it frees the place.
#[derive(Debug)]
pub struct ConnPermit {
    limits: ConnLimits,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limits.release(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("a test address")
    }

    #[test]
    fn per_ip_and_total_caps() {
        let limits = ConnLimits::new("test", 3, 2);
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
    }

    #[test]
    fn a_client_that_leaves_is_forgotten() {
        let limits = ConnLimits::new("test", 10, 1);
        drop(limits.try_acquire(ip("10.0.0.1")).expect("free"));
        assert!(limits.counts().per_ip.is_empty());
    }
}
