//! Values in log lines, written for the people who read them rather than in Rust's `Debug`
//! form: a field `timeout = %Secs(d)` reads `timeout=20.0 s`, not `timeout=19.952403998s`.
//!
//! An optional value that is absent is best left out of the line altogether: tracing records
//! nothing for a `None` field, so `rtmps = addr.map(tracing::field::display)` shows the address
//! when there is one and no `rtmps=` at all otherwise (never `Some(...)` or `None`).

use std::fmt;
use std::time::Duration;

/// A duration in seconds with one decimal and the unit: `20.0 s`, `0.5 s`, `3600.0 s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} s", self.0.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_with_one_decimal_and_a_unit() {
        let check = |d: Duration, want: &str| assert_eq!(Secs(d).to_string(), want, "{d:?}");
        check(Duration::from_secs(20), "20.0 s");
        check(Duration::from_nanos(19_952_403_998), "20.0 s");
        check(Duration::from_millis(500), "0.5 s");
        check(Duration::from_millis(1_940), "1.9 s");
        check(Duration::ZERO, "0.0 s");
        check(Duration::from_secs(3_600), "3600.0 s");
    }
}
