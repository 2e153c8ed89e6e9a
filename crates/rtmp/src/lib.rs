//! Sans-IO RTMP: the handshake, the chunk stream, and the session state
//! machines a server (and a test or load client) runs on top of them.
//!
//! This crate does no networking, reads no clock and spawns nothing. Callers
//! feed received bytes in, pull events out, answer policy events (may this
//! client publish this name?) and write the bytes the session produces. The
//! tokio shell lives in the `rtmp-server` crate.
//!
//! | spec | section | module |
//! |---|---|---|
//! | Adobe RTMP Specification 1.0 | 5.2 handshake (plain) | [`handshake`] |
//! | (de facto, Flash Player 9+/FMS 3+) | digest handshake, schemes 0 and 1 | [`handshake`] |
//! | Adobe RTMP Specification 1.0 | 5.3 chunking, 5.3.1.3 extended timestamp | [`chunk`] |
//! | Adobe RTMP Specification 1.0 | 5.4 protocol control, 6.2/7.1.7 user control, 7.1.6 aggregate | [`message`] |
//! | Adobe RTMP Specification 1.0 | 7.2 NetConnection and NetStream commands | [`command`], [`session`], [`client`] |
//!
//! Not here: RTMPE/RTMPS/RTMPT, shared objects (ignored), seeking in
//! recorded streams, and anything about media codecs (the `flv` crate).

pub mod chunk;
pub mod client;
pub mod command;
pub mod handshake;
pub mod message;
pub mod session;

pub use chunk::{ChunkDecoder, ChunkEncoder, ChunkError, MessageChunking, RawMessage};
pub use client::{ClientSession, ClientSessionEvent};
pub use session::{ServerSession, ServerSessionConfig, ServerSessionEvent, SessionError};

#[cfg(test)]
mod tests;
