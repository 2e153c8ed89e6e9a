//! `gwload`: a load tool that opens many cheap viewers of one protocol against any server
//! (our gateway, nginx-rtmp, ...), optionally publishes the stream itself with latency stamps,
//! and reports rates, time to first frame, end-to-end latency and the server's CPU and memory.
//!
//! It is not a player: nothing is decoded. Each viewer parses only container framing (RTMP
//! chunks via the `rtmp` crate, FLV tag headers, TS packet headers, RTP headers), reads into
//! one buffer per worker thread, and looks for the latency stamp at most once a second.
//!
//! | spec | what is used |
//! |---|---|
//! | RTMP (Adobe, 2012) | plain handshake, connect, createStream, play, publish (`rtmp` crate) |
//! | RFC 8446 / 5246 (TLS, rustls) | `rtmps://` viewers and publisher |
//! | FLV 10.1 (E.4) | tag framing of HTTP-FLV bodies, AVC NALU packets of the publish file |
//! | RFC 9112 | HTTP/1.1 GET, keep-alive, Content-Length / chunked / close-delimited bodies |
//! | RFC 8216 | HLS media and master playlists (target duration, media sequence, URIs) |
//! | ISO/IEC 13818-1 2.4.3 | TS packet headers, adaptation fields, PES start codes |
//! | RFC 2326 | RTSP OPTIONS, DESCRIBE, SETUP (TCP interleaved 10.12, UDP), PLAY |
//! | RFC 3550 5.1 | RTP header (marker bit, CSRC count, extension) |
//! | ITU-T H.264 7.3.2.3, D.1.6 | the SEI `user_data_unregistered` latency stamp |
//!
//! What a viewer counts as media bytes: RTMP audio/video message payloads, FLV audio/video
//! tag bodies, RTP payloads (after the RTP header), and whole TS segments for HLS (so HLS
//! rates include TS overhead, some 5-10 %).

pub mod cli;
pub mod flv_scan;
pub mod hls;
pub mod http;
pub mod net;
pub mod procstat;
pub mod publish;
pub mod report;
pub mod rtmp_view;
pub mod rtsp;
pub mod run;
pub mod sei;
pub mod tls;
pub mod ts;
pub mod viewer;
pub mod ws;

pub use cli::{Options, Protocol, USAGE};
pub use report::Report;
pub use run::run;

/// Why one viewer (or the publisher) stopped.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// A socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// A reused keep-alive connection was already closed (retried once).
    #[error("the server closed an idle keep-alive connection")]
    Stale,
    /// A non-success status for the request named.
    #[error("status {0} for {1}")]
    Status(u16, String),
    /// The server sent something we cannot frame.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A URL or file we cannot use.
    #[error("{0}")]
    Url(String),
    /// An RTMP session error.
    #[error("rtmp: {0}")]
    Rtmp(#[from] rtmp::SessionError),
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad command line.
    #[error("{0}\n{USAGE}")]
    Usage(String),
    /// The publisher could not start.
    #[error("publisher: {0}")]
    Publish(String),
    /// The JSON report could not be written.
    #[error("writing {path}: {source}")]
    Json {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Runs as the command line says: prints the table, writes the JSON if asked.
pub async fn main_with(opts: &Options) -> Result<Report, RunError> {
    let report = run(opts).await?;
    print!("{}", report.table());
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report.json).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|source| RunError::Json {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(report)
}
