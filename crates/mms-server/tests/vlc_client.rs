//! VLC as a second real client: its own MMST and MMSH access modules (its own command and chunk
//! parsers, not ffmpeg's), over `mms://` (MMST), `mmst://` and `mmsh://`.
//!
//! VLC 3.0.24 hands the ASF bytes to its libavformat demuxer: its own ASF reader declines a
//! broadcast Data Object of size 0 (see `asf::header::BROADCAST_DATA_OBJECT_SIZE` for why that
//! is the better outcome).

mod common;

use std::time::Duration;

use common::*;

/// How long VLC is asked to play.
const RUN_TIME: Duration = Duration::from_secs(3);

/// Plays `url` for [`RUN_TIME`] with VLC's dummy outputs; returns its verbose log and how long it
/// ran.
///
/// VLC refuses to run as root, so under root it runs as `nobody` through `runuser`.
async fn vlc_log(url: &str) -> (String, Duration) {
    let run_time = format!("--run-time={}", RUN_TIME.as_secs());
    let vlc = [
        "cvlc",
        "--aout=dummy",
        "--vout=dummy",
        &run_time,
        "--play-and-exit",
        "-vv",
        url,
    ];
    let root = std::env::var("USER").map(|u| u == "root").unwrap_or(false) || is_root().await;
    let (tool, args): (&str, Vec<&str>) = if root {
        ("runuser", [&["-u", "nobody", "--"][..], &vlc[..]].concat())
    } else {
        (vlc[0], vlc[1..].to_vec())
    };
    let started = std::time::Instant::now();
    let (_, out, err) = run_tool(tool, &args, Duration::from_secs(40)).await;
    (out + &err, started.elapsed())
}

async fn is_root() -> bool {
    let (_, out, _) = run_tool("id", &["-u"], Duration::from_secs(5)).await;
    out.trim() == "0"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlc_plays_mms_streams_with_its_own_demuxer() {
    if !have_tool("cvlc").await {
        return;
    }
    let h = start().await;
    for url in [
        format!("mms://{}/LiveEvents", h.mmst),
        format!("mmst://{}/LiveEvents", h.mmst),
        format!("mmsh://{}/LiveEvents", h.http),
    ] {
        let (log, ran) = vlc_log(&url).await;
        assert!(
            log.contains("access_mms stream debug: HTTP reply 'HTTP/1.0 200 OK'")
                || log.contains("streaming started"),
            "{url}: VLC's MMS access connected:\n{log}"
        );
        assert!(
            log.contains("Received first picture"),
            "{url}: decoded pictures:\n{log}"
        );
        assert!(
            ran >= RUN_TIME,
            "{url}: VLC stopped after {ran:?}, before its {RUN_TIME:?} run time:\n{log}"
        );
        for bad in [
            "buffer deadlock",
            "truncated packet",
            "cannot receive header",
            "unrecognized chunk",
        ] {
            assert!(
                !log.contains(bad),
                "{url}: VLC complained \"{bad}\":\n{log}"
            );
        }
    }
}
