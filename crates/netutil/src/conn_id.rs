//! Connection ids for the logs: every accepted connection on every listener gets one, short and
//! unique within the process, and a `conn{id=... peer=...}` span around its whole task, so that
//! every line it logs (in text or JSON) can be picked out.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The next id to hand out; ids start at 1.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// The fewest characters an id is written with, so ids line up and one is not a prefix of a
/// later one before there are 36^4 (1.7 million) of them; past that they grow.
const MIN_WIDTH: usize = 4;

/// A connection's id: a process-wide counter, written in base 36 (`0001`, `000a`, `00zz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// A new id, never handed out before in this process.
    pub fn next() -> ConnId {
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The counter value.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Reads an id as [`Display`](fmt::Display) writes it (base 36, lower or upper case,
    /// leading zeros optional); `None` for anything else.
    pub fn parse(text: &str) -> Option<ConnId> {
        if text.is_empty() || text.len() > 13 || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        u64::from_str_radix(text, 36)
            .ok()
            .filter(|n| *n > 0)
            .map(ConnId)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut buf = [b'0'; 13]; // u64::MAX is 13 base-36 digits
        let mut n = self.0;
        let mut start = buf.len();
        while n > 0 {
            start -= 1;
            buf[start] = DIGITS[(n % 36) as usize];
            n /= 36;
        }
        let start = start.min(buf.len() - MIN_WIDTH);
        // Only ASCII digits and letters were written.
        f.write_str(std::str::from_utf8(&buf[start..]).unwrap_or_default())
    }
}

/// The span of one accepted connection, `conn{id=... peer=...}`, to enter for the connection's
/// whole task (`tracing::Instrument::instrument`). A macro, so that the span's target is the
/// shell that accepted the connection, as its other lines' targets are.
///
/// The span is at `ERROR` level: a span's level only decides whether a filter keeps it, and at
/// `ERROR` it is kept whenever any of the connection's lines are, so with `log.level = "warn"`
/// the warnings still carry the id.
///
/// `conn_span!(id, peer)` takes an id the accept loop made with [`ConnId::next`], for a
/// connection that also registers with the bus's client list under it.
#[macro_export]
macro_rules! conn_span {
    ($peer:expr) => {
        $crate::conn_span!($crate::ConnId::next(), $peer)
    };
    ($id:expr, $peer:expr) => {
        $crate::__tracing::error_span!(
            "conn",
            id = %$id,
            peer = %$peer
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_base_36_at_least_four_wide() {
        let table = [
            (1, "0001"),
            (10, "000a"),
            (35, "000z"),
            (36, "0010"),
            (36 * 36 * 36 * 36 - 1, "zzzz"),
            (36 * 36 * 36 * 36, "10000"),
            (u64::MAX, "3w5e11264sgsf"),
        ];
        for (n, want) in table {
            assert_eq!(ConnId(n).to_string(), want, "{n}");
        }
    }

    #[test]
    fn ids_read_back() {
        for n in [1, 10, 36, 1_679_616, u64::MAX] {
            let id = ConnId(n);
            assert_eq!(ConnId::parse(&id.to_string()), Some(id), "{n}");
        }
        assert_eq!(ConnId::parse("00A"), Some(ConnId(10)));
        for bad in ["", "0000", "-1", "+1", "00 1", "zzzzzzzzzzzzzz", "é"] {
            assert_eq!(ConnId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_id_is_new() {
        let a = ConnId::next();
        let b = ConnId::next();
        assert!(b.get() > a.get());
        assert_ne!(a.to_string(), b.to_string());
    }
}
