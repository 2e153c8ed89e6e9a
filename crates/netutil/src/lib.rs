//! What every listener shell shares: backing off on accept errors, logging at most once per
//! second, and capping connections in total and per client IP.
//!
//! Shells may not import each other, so the pieces every accept loop needs (RTMP, RTSP, MMST and
//! the gateway's HTTP listener) live here once. This crate knows no protocol, no bus and no
//! config; it needs only tokio's timer.
//!
//! | piece | what it does |
//! |---|---|
//! | [`AcceptBackoff`] | after a failed `accept` (EMFILE, ENFILE, ENOBUFS...) sleeps 50 ms, doubling up to 1 s, and logs once a second with the number of errors it kept quiet |
//! | [`RateLimit`] | the "at most once per interval, count the rest" rule on its own |
//! | [`ConnLimits`] | a cap on open connections, in total and per client IP; a refusal is counted and logged at most once a second |

mod backoff;
mod limits;

pub use crate::backoff::{AcceptBackoff, RateLimit};
pub use crate::limits::{ConnLimits, ConnPermit, Refused};
