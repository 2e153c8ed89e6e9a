//! Sans-IO RTSP 1.0 for the gateway's RTSP egress.
//!
//! This crate parses RTSP requests and interleaved `$` frames from one byte stream, writes responses,
//! builds SDP descriptions and tracks the RTSP session state of one server connection. It does no
//! networking and holds no clock: the shell (crate `rtsp-server`) owns sockets and timers, and answers
//! the policy questions the state machine asks (is this stream live, which tracks does it have, which
//! ports were allocated) through [`ServerConnection`]'s `accept_*`/`reject` methods.
//!
//! It is not an RTSP client and does not implement RTSP 2.0, RECORD or multicast.
//!
//! | spec | what is implemented |
//! |---|---|
//! | RFC 2326 §6, §7 | request parsing (bounded header size and count), response writing |
//! | RFC 2326 §10 | OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER |
//! | RFC 2326 §10.12, §12.39 | interleaved binary data (`$`, channel, length) |
//! | RFC 2326 §12.33 | RTP-Info |
//! | RFC 2326 §12.37 | Session with `;timeout=` |
//! | RFC 2326 §12.39 | Transport: `RTP/AVP[/UDP];unicast;client_port=`, `RTP/AVP/TCP;interleaved=`; a SETUP's track and transport checked in [`check_setup`] (459, 461, no third-party `destination`) |
//! | RFC 2326 §11.2.1, §12.44 | 401 with `WWW-Authenticate` and 403, for the caller's access decision |
//! | RFC 2326 §A.1 | server state machine (Init, Ready, Playing) |
//! | RFC 4566 | SDP session description |
//! | RFC 6184 §8.2 | H.264 SDP parameters (packetization-mode, profile-level-id, sprop-parameter-sets) |
//! | RFC 7798 §7 | H.265 SDP parameters (sprop-vps, sprop-sps, sprop-pps) |
//! | RFC 3640 §4.1 | mpeg4-generic AAC-hbr SDP parameters |
//! | RFC 3551 §4.5.13, RFC 2250 | MPA |
//! | RFC 6184, RFC 7798, RFC 3640, RFC 2250 | a live stream's tracks and RTP packets from its FLV-style tags ([`packetize`], over crate `rtp`) |
//!
//! Architecture Invariant: nothing here blocks, sleeps, spawns or reads the clock; every length read
//! from the wire is checked against a named constant before anything is allocated.

mod base64;
pub mod message;
pub mod packetize;
pub mod sdp;
pub mod session;
pub mod setup;
pub mod transport;

pub use message::{parse, Header, Method, Parsed, Request, Response};
pub use session::{uri_query, Limit, RtpInfo, ServerConnection, ServerEvent, Status};
pub use setup::{check_setup, RefusedKind, SetupFacts, SetupRefused};
pub use transport::{Destination, Lower, Transport};

/// The largest request head (request line and headers) accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 8192;
/// The most header lines accepted in one request.
pub const MAX_HEADERS: usize = 64;
/// The largest request body accepted (SET_PARAMETER and GET_PARAMETER bodies are small).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Errors that end the parsing of a connection's byte stream.
///
/// Each is answered with a response (see [`Error::status`]) and the connection is closed, since the
/// framing of the rest of the stream is lost.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The request head exceeded [`MAX_HEADER_BYTES`] without ending.
    #[error("request header larger than {MAX_HEADER_BYTES} bytes")]
    HeaderTooLarge,
    /// The request had more than [`MAX_HEADERS`] header lines.
    #[error("more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    /// The request line was not `METHOD URI RTSP/x.y`.
    #[error("malformed request line: {line:?}")]
    BadRequestLine {
        /// The offending line, lossily decoded and cut to 80 characters.
        line: String,
    },
    /// A header line had no colon or was not UTF-8.
    #[error("malformed header line {index}")]
    BadHeader {
        /// The index of the header line.
        index: usize,
    },
    /// Content-Length was not a number or exceeded [`MAX_BODY_BYTES`].
    #[error("bad or too large Content-Length {value:?} (limit {MAX_BODY_BYTES})")]
    BadContentLength {
        /// The header value.
        value: String,
    },
}

impl Error {
    /// The status code the connection answers this error with before closing.
    ///
    /// An oversized head is answered 400: RTSP 1.0 (RFC 2326 §7.1.1) and 2.0 (RFC 7826 §17)
    /// define no "header fields too large" code (HTTP's 431, RFC 6585, is not registered for
    /// RTSP), so the body names the limit instead. An oversized body is 413 Request Entity Too
    /// Large (in the RFC 2326 §7.1.1 table).
    pub fn status(&self) -> u16 {
        match self {
            Error::BadContentLength { .. } => 413,
            _ => 400,
        }
    }
}
