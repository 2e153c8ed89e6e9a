//! The per-client rate of new connections: one token bucket per client, in a table of bounded
//! size.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Clients whose recent connections the table remembers at most (about 1 MB). A bucket that has
/// refilled says nothing a new one would not, so a full table first forgets those; only more than
/// this many clients connecting within one refill time (`burst / rate`) fill it for good.
pub(crate) const MAX_RATE_CLIENTS: usize = 16_384;
/// A full table is swept for refilled buckets at most this often, so a flood of new addresses
/// costs one pass over the table a second, not one per connection.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What the table says about one new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the client's rate.
    Admit,
    /// The client has used its burst and connects faster than the rate.
    Refuse,
    /// The table is full of clients that connected within the last refill time: this one is not
    /// tracked (and so not limited) until room is made. Failing open keeps honest newcomers
    /// served; the connection caps still hold.
    Untracked,
}

/// `rate` new connections a second per client, `burst` at once.
#[derive(Debug)]
pub(crate) struct RateTable {
    rate: f64,
    burst: f64,
    capacity: usize,
    buckets: HashMap<IpAddr, Bucket>,
    next_sweep: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refilled(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst)
    }
}

impl RateTable {
    /// `rate` and `burst` are at least 1 (the config checks it); `capacity` is
    /// [`MAX_RATE_CLIENTS`] outside tests.
    pub(crate) fn new(rate: u32, burst: u32, capacity: usize) -> RateTable {
        RateTable {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            capacity,
            buckets: HashMap::new(),
            next_sweep: None,
        }
    }

    /// Takes one token from `client`'s bucket at `now`.
    pub(crate) fn check(&mut self, client: IpAddr, now: Instant) -> Verdict {
        let (rate, burst) = (self.rate, self.burst);
        if let Some(b) = self.buckets.get_mut(&client) {
            let tokens = b.refilled(now, rate, burst);
            *b = Bucket { tokens, at: now };
            if tokens < 1.0 {
                return Verdict::Refuse;
            }
            b.tokens -= 1.0;
            return Verdict::Admit;
        }
        if self.buckets.len() >= self.capacity && !self.sweep(now) {
            return Verdict::Untracked;
        }
        let tokens = burst - 1.0;
        self.buckets.insert(client, Bucket { tokens, at: now });
        Verdict::Admit
    }

    /// Forgets the clients whose buckets are full again; true if that made room.
    fn sweep(&mut self, now: Instant) -> bool {
        if self.next_sweep.is_some_and(|t| now < t) {
            return false;
        }
        self.next_sweep = Some(now + SWEEP_INTERVAL);
        let (rate, burst) = (self.rate, self.burst);
        self.buckets
            .retain(|_, b| b.refilled(now, rate, burst) < burst);
        self.buckets.len() < self.capacity
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // 10 a second, 3 at once.
        let mut t = RateTable::new(10, 3, 100);
        let table = [
            (0, Verdict::Admit),
            (0, Verdict::Admit),
            (0, Verdict::Admit),
            (0, Verdict::Refuse),
            (50, Verdict::Refuse),
            // 100 ms refill one token.
            (100, Verdict::Admit),
            (100, Verdict::Refuse),
            // A long pause refills the burst, no more.
            (10_000, Verdict::Admit),
            (10_000, Verdict::Admit),
            (10_000, Verdict::Admit),
            (10_000, Verdict::Refuse),
        ];
        for (i, (at, want)) in table.into_iter().enumerate() {
            assert_eq!(t.check(ip(1), ms(at)), want, "connection {i} at {at} ms");
        }
        assert_eq!(t.check(ip(2), ms(10_000)), Verdict::Admit, "another client");
    }

    #[test]
    fn the_table_is_bounded_and_forgets_refilled_clients_first() {
        let t0 = Instant::now();
        let mut t = RateTable::new(1, 2, 4);
        for n in 0..4 {
            assert_eq!(t.check(ip(n), t0), Verdict::Admit);
        }
        // Full of clients that connected just now: a fifth is let through untracked.
        assert_eq!(t.check(ip(4), t0), Verdict::Untracked);
        assert_eq!(t.len(), 4);
        // A known client is still limited meanwhile.
        assert_eq!(t.check(ip(0), t0), Verdict::Admit);
        assert_eq!(t.check(ip(0), t0), Verdict::Refuse);
        // Within the sweep interval nothing is swept again.
        let soon = t0 + Duration::from_millis(500);
        assert_eq!(t.check(ip(5), soon), Verdict::Untracked);
        // 1.5 s on, clients 1 to 3 have refilled their burst and are forgotten; client 0, which
        // used its whole burst at t0, has 1.5 tokens of 2 and is remembered.
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(t.check(ip(6), later), Verdict::Admit);
        assert!(t.len() <= 4, "{} clients remembered", t.len());
        assert_eq!(t.check(ip(0), later), Verdict::Admit, "client 0 refilled");
    }
}
