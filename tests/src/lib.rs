//! Harness for the gateway's end-to-end tests: the gateway runs in-process on loopback ports
//! chosen by the kernel, and real third-party clients (ffmpeg/ffprobe, GStreamer, VLC, rtmpdump,
//! Chromium) are the oracle for what a user would see.
//!
//! What it is: helpers to find fixtures and tools, start and bound external processes, publish a
//! fixture, and turn what a client decoded into a [`MediaReport`] that [`assert_media`] checks
//! (codecs, picture size, and at least N seconds of frames decoded without errors).
//! What it is not: a protocol implementation; the only protocol code here is a 40-line HTTP
//! listener for browser result beacons, another for access hooks, the project's own RTMP client (through the load tool)
//! where ffmpeg cannot publish or where a test needs the very first messages a player receives,
//! and [`LossyRtsp`], an RTSP proxy that parses only message heads and `client_port`/`server_port`
//! to relay UDP tracks with induced RTP loss.
//!
//! Rules every test follows:
//!
//! | rule | how |
//! |---|---|
//! | tests run in parallel | every gateway and helper binds `127.0.0.1:0` |
//! | a missing tool never passes silently | [`require_tool`]: panics under `CI`, else prints `SKIPPED: <test> needs <tool>` |
//! | no client can hang the run | every process runs under [`run_with_timeout`] or a [`ChildGuard`] |
//! | processes are stopped by their own id | process groups created per child; never by name |
//!
//! The integration tests live in `tests/tests/*.rs`, one file per protocol, named after
//! behaviours.

pub mod certs;
pub mod chromium;
pub mod clients;
pub mod ffmpeg;
pub mod flv_start;
pub mod gateway;
pub mod gateway_process;
pub mod gst;
pub mod hook;
pub mod http;
pub mod logs;
pub mod lossy_rtsp;
pub mod media;
pub mod openapi;
pub mod process;
pub mod retina_play;
pub mod rtmp_publish;
pub mod self_stat;
pub mod tools;
pub mod watch;

pub use certs::{CertFiles, Issued, TestCa};
pub use chromium::{
    browser_play, browser_play_with, require_browser_check, require_chromium, Beacon, Chromium,
};
pub use clients::{rtmpdump_record, vlc_record, vlc_record_with};
pub use ffmpeg::{ffmpeg_record, ffprobe_decode, ffprobe_decode_with, ffprobe_json, Ffmpeg};
pub use flv_start::{
    check_start, http_flv_tags, rtmp_tags, ReadUntil, StartReport, StartRole, StartTag,
};
pub use gateway::{loopback_config, with_tls, Live, Publisher, TestGateway};
pub use gateway_process::GatewayProcess;
pub use gst::{gst_timeout, require_gst_encoder, require_gst_player, Gst};
pub use hook::HookServer;
pub use http::{http_get, http_get_with, http_request, GetOptions, HttpResponse};
pub use logs::Logs;
pub use lossy_rtsp::{LossyRtsp, TrackStats};
pub use media::{assert_media, check_media, Expect, Kind, MediaReport};
pub use process::{run_with_timeout, timed_out, wait_until, ChildGuard, TempDir};
pub use rtmp_publish::{hevc_mp4_to_enhanced_flv, RtmpPublisher};
pub use tools::{
    find_on_path, fixture, in_ci, require_gst_element, require_tool, skip, skip_unsupported,
    vlc_has_plugin, workspace_root,
};
pub use watch::{WatchReport, Watcher};

/// Seconds of media every interop cell must decode.
pub const CELL_SECS: f64 = 10.0;

/// What a live player is asked to decode: a little more than [`CELL_SECS`], because a live
/// capture may lose a frame or two at each end.
pub const PLAY_SECS: f64 = CELL_SECS + 0.5;

/// What a recorder records; the recording is then decoded for [`PLAY_SECS`], which leaves out a
/// last frame the recorder may have truncated when it was stopped.
pub const RECORD_SECS: f64 = CELL_SECS + 1.5;
