//! TLS for the gateway's listeners: RTMPS, HTTPS (HLS, HTTP-FLV, WebSocket-FLV as WSS, MMSH, the
//! API and the web page) and RTSPS.
//!
//! What it is: the glue between the operator's PEM files and rustls (ring provider). A
//! [`CertStore`] loads the certificate chain and private key, serves them to every handshake
//! through a `ResolvesServerCert`, and [`CertStore::watch`] swaps in new files when their
//! modification time changes, without touching connections already open. An [`Acceptor`] is
//! one listener's view of it (its ALPN list, its handshake-failure count and log) and runs a
//! handshake under a timeout.
//!
//! What it is not: a protocol shell. It knows no RTMP, HTTP or RTSP and no config file; the
//! shells accept TCP, set their socket options on the TCP socket, then hand it to
//! [`Acceptor::handshake`] and serve the stream it returns exactly like a plain socket.
//!
//! | spec | where |
//! |---|---|
//! | TLS 1.2 (RFC 5246) and 1.3 (RFC 8446), rustls' safe defaults | [`CertStore::server_config`] |
//! | ALPN (RFC 7301): `http/1.1` on the HTTPS listener | [`Acceptor::new`] |
//! | PEM (RFC 7468): certificate chain; PKCS#8, PKCS#1 (RSA) or SEC1 private key | [`certs`] |

pub mod acceptor;
pub mod certs;

pub use acceptor::{accept_either, Accepted, Acceptor};
pub use certs::{CertStore, Reload, TlsError};
pub use tokio_rustls::server::TlsStream;
