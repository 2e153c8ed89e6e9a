//! What every listener shell shares: backing off on accept errors, logging at most once per
//! second, admitting connections under caps and a per-client rate, with counters, and writing
//! values in log lines for people.
//!
//! Shells may not import each other, so the pieces every accept loop needs (RTMP, RTSP, MMST and
//! the gateway's HTTP listener) live here once. This crate knows no protocol, no bus and no
//! config; it needs only tokio's timer.
//!
//! | piece | what it does |
//! |---|---|
//! | [`AcceptBackoff`] | after a failed `accept` (EMFILE, ENFILE, ENOBUFS...) sleeps 50 ms, doubling up to 1 s, and logs once a second with the number of errors it kept quiet |
//! | [`RateLimit`] | the "at most once per interval, count the rest" rule on its own |
//! | [`ConnLimits`] | a listener's [`Admission`]: open connections capped in total and per client, new connections per client capped by a token bucket (in a table of bounded size); every refusal counted and logged at most once a second, the timeouts its connections report counted, all of it readable as [`ListenerStats`] |
//! | [`client_of`] | what "one client" is for every per-client limit: an IPv4 address or an IPv6 /64 |
//! | [`Listener`], [`Rebind`] | a listening socket a reload moves to another address while its accept loop runs; open connections stay |
//! | [`ConnId`], [`conn_span!`] | a short id unique in the process for every accepted connection, and the `conn{id=... peer=...}` span its task runs in, so every line it logs carries the id |
//! | [`display`] | values in log lines written for people: [`display::Secs`] (`20.0 s`) |

mod backoff;
mod conn_id;
pub mod display;
mod limits;
mod listener;
mod rate;

pub use crate::backoff::{AcceptBackoff, RateLimit};
pub use crate::conn_id::ConnId;
pub use crate::limits::{
    client_of, Admission, ConnLimits, ConnPermit, ListenerStats, Refused, Timeout,
    DEFAULT_CONNECTION_BURST_PER_IP, DEFAULT_CONNECTION_RATE_PER_IP, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP,
};
pub use crate::listener::{Listener, Rebind};

#[doc(hidden)]
pub use tracing as __tracing;
