//! Real players against the HLS shell: the bus is fed in real time from ffmpeg-made FLV
//! fixtures, and ffprobe/ffmpeg read the playlist over HTTP.

mod common;

use std::time::Duration;

use common::*;

fn playlist_url(addr: std::net::SocketAddr, key: &str) -> String {
    format!("http://{addr}/{key}/index.m3u8")
}

/// Codecs and dimensions as published; 20 s decoded without a single error; every segment
/// within the target; DTS continuous across consecutive segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn av_stream_probes_decodes_and_is_continuous() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let bus = bus();
    let addr = serve(bus.clone(), hls_server::Options::default()).await;
    let feeder = tokio::spawn(feed(bus.clone(), "live/av", fixture(Kind::AudioVideo), 8));
    let (first, took) = first_playlist(addr, "/live/av/index.m3u8").await;
    println!(
        "MEASURE: first publish to first playable playlist: {} ms",
        took.as_millis()
    );
    assert_eq!(
        first.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    assert_eq!(first.header("access-control-allow-origin"), Some("*"));

    let url = playlist_url(addr, "live/av");
    let probe = [
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height,sample_rate",
        "-of",
        "csv=p=0",
        &url,
    ];
    let (ok, out, err) = run("ffprobe", &probe).await;
    assert!(ok, "ffprobe failed: {err}");
    let mut lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines.dedup(); // ffprobe lists each stream once per program and once on its own.
    assert_eq!(
        lines,
        vec!["aac,44100", "h264,640,360"],
        "ffprobe saw: {out}"
    );

    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-nostdin", "-v", "error", "-i", &url, "-t", "20", "-f", "null", "-",
        ],
    )
    .await;
    assert!(ok && err.is_empty(), "ffmpeg reported errors: {err}");

    check_segments_and_continuity(addr, "/live/av").await;
    feeder.abort();
}

async fn check_segments_and_continuity(addr: std::net::SocketAddr, dir: &str) {
    let playlist = http(addr, "GET", &format!("{dir}/index.m3u8")).await.text();
    let (target, segments) = parse_playlist(&playlist);
    assert!(segments.len() >= 3, "{playlist}");
    assert_eq!(target, 2.0, "{playlist}");
    let mut joined = Vec::new();
    for (dur, uri) in &segments {
        assert!(*dur <= target && *dur > 0.5, "segment {uri} lasts {dur} s");
        let r = http(addr, "GET", &format!("{dir}/{uri}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("video/mp2t"));
        assert!(r
            .header("cache-control")
            .is_some_and(|c| c.contains("immutable")));
        joined.extend_from_slice(&r.body);
    }
    let path = scratch().join(format!("joined-{}.ts", dir.replace('/', "_")));
    std::fs::write(&path, &joined).expect("write joined segments");
    let p = path.to_string_lossy();
    let args = [
        "-v",
        "error",
        "-select_streams",
        "v",
        "-show_entries",
        "packet=dts",
        "-of",
        "csv=p=0",
        &p,
    ];
    let (ok, out, err) = run("ffprobe", &args).await;
    assert!(ok, "{err}");
    let dts: Vec<i64> = out
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    assert!(dts.len() >= 100, "packets: {}", dts.len());
    for w in dts.windows(2) {
        assert_eq!(
            w[1] - w[0],
            3600,
            "25 fps DTS steps by 3600 ticks across segments"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only_and_video_only_streams_play() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let bus = bus();
    let addr = serve(bus.clone(), hls_server::Options::default()).await;
    let a = tokio::spawn(feed(bus.clone(), "live/a", fixture(Kind::AudioOnly), 4));
    let v = tokio::spawn(feed(bus.clone(), "live/v", fixture(Kind::VideoOnly), 4));
    for (key, want) in [("live/a", "aac,44100"), ("live/v", "h264,640,360")] {
        first_playlist(addr, &format!("/{key}/index.m3u8")).await;
        let url = playlist_url(addr, key);
        let probe = [
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height,sample_rate",
            "-of",
            "csv=p=0",
            &url,
        ];
        let (ok, out, err) = run("ffprobe", &probe).await;
        assert!(ok, "{err}");
        let mut lines: Vec<&str> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        lines.dedup();
        assert_eq!(lines, vec![want]);
        let (ok, _, err) = run(
            "ffmpeg",
            &[
                "-nostdin", "-v", "error", "-i", &url, "-t", "6", "-f", "null", "-",
            ],
        )
        .await;
        assert!(ok && err.is_empty(), "{key}: ffmpeg reported errors: {err}");
    }
    a.abort();
    v.abort();
}

/// The publisher leaves and comes back on the same key: the playlist shows a discontinuity and
/// a player that was already reading goes on through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republish_shows_a_discontinuity_and_playback_continues() {
    if !have("ffmpeg") {
        return;
    }
    let bus = bus();
    let addr = serve(bus.clone(), hls_server::Options::default()).await;
    let tags = fixture(Kind::AudioVideo);
    let first = tokio::spawn(feed(bus.clone(), "live/re", tags.clone(), 2));
    first_playlist(addr, "/live/re/index.m3u8").await;
    let url = playlist_url(addr, "live/re");
    let args: Vec<String> = [
        "-nostdin",
        "-v",
        "error",
        "-i",
        &url,
        "-t",
        "16",
        "-progress",
        "pipe:1",
        "-f",
        "null",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let player = tokio::spawn(async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run("ffmpeg", &refs).await
    });
    first.await.expect("first session fed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = tokio::spawn(feed(bus.clone(), "live/re", tags, 3));
    let t0 = std::time::Instant::now();
    loop {
        let text = http(addr, "GET", "/live/re/index.m3u8").await.text();
        if text.contains("#EXT-X-DISCONTINUITY\n") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no discontinuity after republish: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, progress, err) = player.await.expect("player task");
    assert!(ok, "ffmpeg failed across the republish: {err}");
    let out_us: u64 = progress
        .lines()
        .filter_map(|l| l.strip_prefix("out_time_us="))
        .filter_map(|v| v.parse().ok())
        .max()
        .unwrap_or(0);
    assert!(
        out_us >= 15_000_000,
        "ffmpeg stopped early at {out_us} us: {err}"
    );
    second.abort();
}

/// An app configured for AES-128: segments are encrypted, the playlist points at the key URL,
/// and ffmpeg plays it with the key it fetches from the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes128_stream_plays_with_the_served_key() {
    if !have("ffmpeg") {
        return;
    }
    let bus = bus();
    let opts = hls_server::Options {
        encrypt_apps: vec!["secure".into()],
        key_rotation: 2,
        ..Default::default()
    };
    let addr = serve(bus.clone(), opts).await;
    let feeder = tokio::spawn(feed(bus.clone(), "secure/s", fixture(Kind::AudioVideo), 4));
    let (reply, _) = first_playlist(addr, "/secure/s/index.m3u8").await;
    let text = reply.text();
    let key_line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-KEY:METHOD=AES-128,URI=\""))
        .expect("EXT-X-KEY");
    let key_uri = key_line.split('"').nth(1).expect("quoted URI");
    let key = http(addr, "GET", &format!("/secure/s/{key_uri}")).await;
    assert_eq!((key.status, key.body.len()), (200, 16));
    assert_eq!(key.header("cache-control"), Some("private, no-store"));
    let (_, segments) = parse_playlist(&text);
    let seg = http(addr, "GET", &format!("/secure/s/{}", segments[0].1)).await;
    assert_ne!(seg.body.first(), Some(&0x47), "segments are encrypted");
    let url = playlist_url(addr, "secure/s");
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-nostdin", "-v", "error", "-i", &url, "-t", "8", "-f", "null", "-",
        ],
    )
    .await;
    assert!(ok && err.is_empty(), "ffmpeg reported errors: {err}");
    feeder.abort();
}

/// Options replaced while streams are muxed (a configuration reload): the running muxer keeps
/// its segment options (a playlist is never re-keyed or re-timed under its players), a stream
/// muxed afterwards gets the new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_options_apply_to_the_next_muxer_only() {
    if !have("ffmpeg") {
        return;
    }
    let bus = bus();
    let live = std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(
        hls_server::Options::default(),
    ));
    let addr = serve_live(bus.clone(), std::sync::Arc::clone(&live)).await;
    let running = tokio::spawn(feed(bus.clone(), "live/a", fixture(Kind::AudioVideo), 4));
    let (before, _) = first_playlist(addr, "/live/a/index.m3u8").await;
    assert!(!before.text().contains("#EXT-X-KEY"), "{}", before.text());

    live.store(std::sync::Arc::new(hls_server::Options {
        encrypt_apps: vec!["live".into()],
        ..hls_server::Options::default()
    }));
    let next = tokio::spawn(feed(bus.clone(), "live/b", fixture(Kind::AudioVideo), 4));
    let (b, _) = first_playlist(addr, "/live/b/index.m3u8").await;
    assert!(
        b.text().contains("#EXT-X-KEY:METHOD=AES-128"),
        "{}",
        b.text()
    );
    let a = http(addr, "GET", "/live/a/index.m3u8").await;
    assert_eq!(a.status, 200);
    assert!(
        !a.text().contains("#EXT-X-KEY"),
        "the running muxer kept its options"
    );
    running.abort();
    next.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_live_head_options_and_viewer_count() {
    let bus = bus();
    let addr = serve(bus.clone(), hls_server::Options::default()).await;
    let r = http(addr, "GET", "/live/none/index.m3u8").await;
    assert_eq!((r.status, r.text().as_str()), (404, "stream not live\n"));
    let r = http(addr, "OPTIONS", "/live/none/index.m3u8").await;
    assert_eq!(r.status, 204);
    assert!(r
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("GET")));
    if !have("ffmpeg") {
        return;
    }
    let feeder = tokio::spawn(feed(bus.clone(), "live/h", fixture(Kind::AudioVideo), 3));
    let (get, _) = first_playlist(addr, "/live/h/index.m3u8").await;
    let head = http(addr, "HEAD", "/live/h/index.m3u8").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), get.header("content-length"));
    let stats = bus.stream("live/h").expect("stream").stats();
    assert_eq!(
        stats.viewers_of(bus::Protocol::Hls),
        1,
        "one client (address + User-Agent)"
    );
    assert_eq!(
        stats.viewers_of(bus::Protocol::Internal),
        1,
        "one muxer subscriber"
    );
    feeder.abort();
}

/// Without requests the muxer stops (and its subscriber and viewers go away); the next request
/// starts a new one with new segment names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_muxer_stops_and_restarts_on_demand() {
    if !have("ffmpeg") {
        return;
    }
    let bus = bus();
    let opts = hls_server::Options {
        idle_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let addr = serve(bus.clone(), opts).await;
    let feeder = tokio::spawn(feed(bus.clone(), "live/idle", fixture(Kind::AudioVideo), 3));
    let (before, _) = first_playlist(addr, "/live/idle/index.m3u8").await;
    let stream = bus.stream("live/idle").expect("stream");
    assert_eq!(stream.stats().viewers_of(bus::Protocol::Internal), 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stats = stream.stats();
    assert_eq!(
        stats.viewers_of(bus::Protocol::Internal),
        0,
        "muxer stopped"
    );
    assert_eq!(
        stats.viewers_of(bus::Protocol::Hls),
        0,
        "viewers expired with it"
    );
    let (after, _) = first_playlist(addr, "/live/idle/index.m3u8").await;
    let name = |r: &Reply| {
        parse_playlist(&r.text()).1[0]
            .1
            .split('-')
            .next()
            .map(str::to_owned)
    };
    assert_ne!(name(&before), name(&after), "a new session token");
    feeder.abort();
}

/// A second, independent HLS client: GStreamer's hlsdemux/tsdemux plays the stream for 8 s
/// (in real time) without an error or warning message on the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_plays_the_playlist() {
    if !have("ffmpeg") || !have("gst-launch-1.0") {
        return;
    }
    let bus = bus();
    let addr = serve(bus.clone(), hls_server::Options::default()).await;
    let feeder = tokio::spawn(feed(bus.clone(), "live/gst", fixture(Kind::AudioVideo), 4));
    first_playlist(addr, "/live/gst/index.m3u8").await;
    let uri = format!("uri={}", playlist_url(addr, "live/gst"));
    let mut child = tokio::process::Command::new("gst-launch-1.0")
        .args([
            "-m",
            "playbin",
            &uri,
            "video-sink=fakesink sync=true",
            "audio-sink=fakesink sync=true",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("gst-launch-1.0 starts");
    let exited = tokio::time::timeout(Duration::from_secs(8), child.wait()).await;
    assert!(exited.is_err(), "gst-launch-1.0 stopped early: {exited:?}");
    child.start_kill().expect("stop gst-launch-1.0");
    let out = child.wait_with_output().await.expect("gst output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("(async-done)") || text.contains("ASYNC_DONE") || text.contains("async-done"),
        "{text}"
    );
    for bad in ["(error)", "(warning)", "ERROR"] {
        assert!(!text.contains(bad), "GStreamer reported {bad}: {text}");
    }
    feeder.abort();
}
