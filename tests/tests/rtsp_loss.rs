//! Induced loss on RTSP/UDP: GStreamer's `rtspsrc` (and ffmpeg) play `live/test` through
//! [`LossyRtsp`], a proxy that drops every 20th RTP packet from the gateway (5 %), and the loss
//! the client's RTCP receiver reports give must show in `GET /api/streams/live/test/rtsp` (and in
//! `/metrics` as `gateway_rtsp_receiver_fraction_lost`, with the stream flagged `viewer_loss` in
//! `/api/streams` past `health.max_viewer_loss_percent`):
//! receiver reports on every track (ffmpeg: on the video track, since it reports by bytes
//! received and audio brings too few in a short run), and on the video track a fraction lost
//! above 2 % and a cumulative loss no larger than what the proxy dropped, at some point while
//! playing. The control plays through the same proxy without drops and must report (nearly)
//! none, so the figures come from the proxy's drops and nothing else: a proxy that did not
//! drop fails the lossy cells.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gateway_tests::{
    assert_media, ffprobe_decode_with, http_get, require_gst_element, require_tool, Expect, Ffmpeg,
    Gst, Live, LossyRtsp, TrackStats,
};
use serde_json::Value;

/// Drop every 20th RTP packet: 5 % loss.
const DROP_EVERY: u32 = 20;

/// The video track's fraction lost must go above this in the lossy run and stay below it in
/// the control.
const LOSS_THRESHOLD: f64 = 0.02;

/// The longest a run plays (GStreamer's first RTCP report comes some 1 to 4 s after PLAY, the
/// next ones about every 5 s; ffmpeg reports once per some 280 KB received on a track).
const MAX_PLAY: Duration = Duration::from_secs(20);

/// The RTSP client that plays through the proxy.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Client {
    /// `rtspsrc protocols=udp` with depayloaders into `fakesink`.
    Gst,
    /// `ffmpeg -rtsp_transport udp -i URL -f null -`.
    Ffmpeg,
}

/// A running client, stopped by its PID on drop.
enum Player {
    Gst(Gst),
    Ffmpeg(Ffmpeg),
}

impl Player {
    fn start(client: Client, url: &str) -> Player {
        match client {
            // Depayloaders only: what is measured is what reaches the client's RTP session, and
            // a decoder would only add CPU load to the shared machine.
            Client::Gst => Player::Gst(Gst::spawn(&format!(
                "rtspsrc location={url} protocols=udp latency=200 name=d \
                 d. ! rtph264depay ! fakesink sync=false \
                 d. ! rtpmp4gdepay ! fakesink sync=false"
            ))),
            Client::Ffmpeg => Player::Ffmpeg(Ffmpeg::spawn(&[
                "-rtsp_transport",
                "udp",
                "-i",
                url,
                "-map",
                "0",
                "-c",
                "copy",
                "-t",
                "60",
                "-f",
                "null",
                "-",
            ])),
        }
    }

    fn assert_running(&mut self) {
        match self {
            Player::Gst(p) => p.assert_running(),
            Player::Ffmpeg(p) => p.assert_running(),
        }
    }
}

/// What the API said about one track while the client played.
#[derive(Debug, Default, Clone)]
struct TrackSeen {
    receiver_reports: u64,
    max_fraction_lost: f64,
    max_cumulative_lost: i64,
    max_jitter: u64,
}

/// What one run saw: per track from the API, per track from the proxy, and how long it played.
struct Run {
    client: Client,
    api: BTreeMap<usize, TrackSeen>,
    proxy: Vec<TrackStats>,
    played: Duration,
    dropped: u64,
    forwarded: u64,
    last_answer: String,
    /// The highest `gateway_rtsp_receiver_fraction_lost` of the video track in `/metrics`.
    metrics_fraction_lost: f64,
    /// `/api/streams` flagged the stream with `viewer_loss` (the gateway runs with
    /// `health.max_viewer_loss_percent = 2`).
    flagged_loss: bool,
}

impl Run {
    /// The track the proxy saw set up as the SDP's video.
    fn video_track(&self) -> usize {
        self.proxy
            .iter()
            .find(|t| t.media.as_deref() == Some("video"))
            .and_then(|t| t.track)
            .unwrap_or_else(|| panic!("the proxy relayed no video track: {:?}", self.proxy))
    }

    /// What the proxy did to the video track.
    fn proxy_video(&self) -> TrackStats {
        let id = self.video_track();
        self.proxy
            .iter()
            .find(|t| t.track == Some(id))
            .cloned()
            .expect("the video track was relayed")
    }

    fn video(&self) -> TrackSeen {
        self.api
            .get(&self.video_track())
            .cloned()
            .unwrap_or_default()
    }

    /// Every relayed track has receiver reports in the API.
    fn every_track_reported(&self, min: u64) -> bool {
        !self.proxy.is_empty()
            && self.proxy.iter().all(|t| {
                t.track
                    .and_then(|id| self.api.get(&id))
                    .is_some_and(|s| s.receiver_reports >= min)
            })
    }

    fn summary(&self) -> String {
        let tracks: Vec<String> = self
            .api
            .iter()
            .map(|(id, s)| {
                format!(
                    "track {id}: {} RRs, max fraction lost {:.3}, max cumulative lost {}, max jitter {}",
                    s.receiver_reports, s.max_fraction_lost, s.max_cumulative_lost, s.max_jitter
                )
            })
            .collect();
        format!(
            "{:?} played {:.1} s; proxy dropped {} and forwarded {} RTP packets ({:.2} %); {}; proxy tracks {:?}",
            self.client,
            self.played.as_secs_f64(),
            self.dropped,
            self.forwarded,
            100.0 * self.dropped as f64 / (self.dropped + self.forwarded).max(1) as f64,
            tracks.join("; "),
            self.proxy
        )
    }
}

fn require_clients(client: Client) -> bool {
    require_tool("ffmpeg")
        && (client == Client::Ffmpeg
            || ["rtspsrc", "rtph264depay", "rtpmp4gdepay", "fakesink"]
                .iter()
                .all(|e| require_gst_element(e)))
}

/// Publishes `av.flv`, plays it over RTSP/UDP with `client` through a proxy dropping every
/// `drop_every`-th RTP packet, and polls the stats API until `enough` holds or [`MAX_PLAY`]
/// passes.
fn play_through_proxy(client: Client, drop_every: u32, enough: impl Fn(&Run) -> bool) -> Run {
    let mut live = Live::ffmpeg_with("av.flv", |c| c.health.max_viewer_loss_percent = 2);
    let rtsp = live
        .gateway
        .rtsp_addr()
        .expect("RTSP is enabled in the default configuration");
    let proxy = LossyRtsp::start(rtsp, drop_every);
    let url = proxy.url(Live::KEY);
    let mut player = Player::start(client, &url);
    let api = live.http_url(&format!("/api/streams/{}/rtsp", Live::KEY));
    let start = Instant::now();
    let mut run = Run {
        client,
        api: BTreeMap::new(),
        proxy: Vec::new(),
        played: Duration::ZERO,
        dropped: 0,
        forwarded: 0,
        last_answer: String::from("no answer"),
        metrics_fraction_lost: 0.0,
        flagged_loss: false,
    };
    let metrics = live.http_url("/metrics");
    let stream = live.http_url(&format!("/api/streams/{}", Live::KEY));
    while start.elapsed() < MAX_PLAY {
        std::thread::sleep(Duration::from_millis(250));
        player.assert_running();
        if let Ok(res) = http_get(&api, Duration::from_secs(5)) {
            run.last_answer = res.text();
            if let Ok(json) = serde_json::from_str::<Value>(&run.last_answer) {
                record(&mut run.api, &json);
            }
        }
        let video = run
            .proxy
            .iter()
            .find(|t| t.media.as_deref() == Some("video"))
            .and_then(|t| t.track);
        if let (Some(track), Ok(res)) = (video, http_get(&metrics, Duration::from_secs(5))) {
            let series = format!(
                r#"gateway_rtsp_receiver_fraction_lost{{app="live",stream="test",track="{track}"}} "#
            );
            for v in res.text().lines().filter_map(|l| l.strip_prefix(&series)) {
                let v: f64 = v.trim().parse().unwrap_or(0.0);
                run.metrics_fraction_lost = run.metrics_fraction_lost.max(v);
            }
        }
        if let Ok(res) = http_get(&stream, Duration::from_secs(5)) {
            let v: Value = serde_json::from_slice(&res.body).unwrap_or_default();
            let reasons = v["health"]["reasons"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            run.flagged_loss |= reasons.iter().any(|r| r == "viewer_loss");
        }
        run.proxy = proxy.tracks();
        run.dropped = proxy.dropped();
        run.forwarded = proxy.forwarded();
        run.played = start.elapsed();
        if enough(&run) {
            break;
        }
    }
    live.assert_publishing();
    drop(player);
    drop(proxy);
    println!("rtsp_loss, drop every {drop_every}: {}", run.summary());
    run
}

/// Folds one API answer into the per-track maxima (of every UDP session: there is one).
fn record(seen: &mut BTreeMap<usize, TrackSeen>, json: &Value) {
    let sessions = json["sessions"].as_array().into_iter().flatten();
    for s in sessions.filter(|s| s["transport"] == "udp") {
        for t in s["tracks"].as_array().into_iter().flatten() {
            let Some(id) = t["track"].as_u64() else {
                continue;
            };
            let e = seen.entry(id as usize).or_default();
            e.receiver_reports = e
                .receiver_reports
                .max(t["receiver_reports"].as_u64().unwrap_or(0));
            e.max_fraction_lost = e
                .max_fraction_lost
                .max(t["fraction_lost"].as_f64().unwrap_or(0.0));
            e.max_cumulative_lost = e
                .max_cumulative_lost
                .max(t["cumulative_lost"].as_i64().unwrap_or(0));
            e.max_jitter = e.max_jitter.max(t["jitter"].as_u64().unwrap_or(0));
        }
    }
}

/// The lossy cell: receiver reports on the tracks `reported` picks, and the video track's loss
/// above the threshold, counted and no larger than what the proxy dropped.
fn reports_show_induced_loss(client: Client, reported: fn(&Run) -> bool) {
    if !require_clients(client) {
        return;
    }
    // Two reports on the video track: the loss is seen while playing, not once at the start.
    let run = play_through_proxy(client, DROP_EVERY, |r| {
        let v = r.video();
        reported(r)
            && v.receiver_reports >= 2
            && v.max_fraction_lost > LOSS_THRESHOLD
            && v.max_cumulative_lost > 0
            && r.metrics_fraction_lost > LOSS_THRESHOLD
            && r.flagged_loss
    });
    let what = run.summary();
    assert_eq!(run.proxy.len(), 2, "two UDP tracks relayed: {what}");
    assert!(
        run.dropped > 0 && run.forwarded > 0,
        "the proxy dropped and relayed RTP: {what}"
    );
    assert!(
        run.proxy_video().rtcp_to_gateway > 0,
        "the client's RTCP went through the proxy: {what}"
    );
    assert!(
        reported(&run),
        "receiver reports in the API: {what}; last answer: {}",
        run.last_answer
    );
    let video = run.video();
    assert!(
        video.max_fraction_lost > LOSS_THRESHOLD,
        "the video track's fraction lost went above {LOSS_THRESHOLD}: {what}"
    );
    assert!(
        video.max_cumulative_lost > 0,
        "the video track's cumulative loss is counted: {what}"
    );
    // 5 % induced: a report far above it, or more lost than dropped (a packet or two of real
    // loss aside), would mean the figures measure something else.
    assert!(
        video.max_fraction_lost < 0.25,
        "the video track's fraction lost is about the induced 5 %: {what}"
    );
    assert!(
        video.max_cumulative_lost <= run.proxy_video().dropped as i64 + 2,
        "the video track's cumulative loss is what the proxy dropped: {what}"
    );
    assert!(
        run.metrics_fraction_lost > LOSS_THRESHOLD && run.metrics_fraction_lost < 0.25,
        "/metrics shows the loss: {} ({what})",
        run.metrics_fraction_lost
    );
    assert!(
        run.flagged_loss,
        "the stream is flagged viewer_loss: {what}"
    );
}

#[test]
fn gstreamer_receiver_reports_show_the_loss_a_proxy_induces() {
    reports_show_induced_loss(Client::Gst, |r| r.every_track_reported(1));
}

#[test]
fn ffmpeg_receiver_reports_show_the_loss_a_proxy_induces() {
    reports_show_induced_loss(Client::Ffmpeg, |r| r.video().receiver_reports > 0);
}

#[test]
fn receiver_reports_show_no_loss_through_the_proxy_without_drops() {
    if !require_clients(Client::Gst) {
        return;
    }
    // Two reports per track: the second covers an interval of steady playing.
    let run = play_through_proxy(Client::Gst, 0, |r| r.every_track_reported(2));
    let what = run.summary();
    assert_eq!(run.proxy.len(), 2, "two UDP tracks relayed: {what}");
    assert_eq!(run.dropped, 0, "the control drops nothing: {what}");
    assert!(run.forwarded > 0, "the proxy relayed RTP: {what}");
    assert!(
        run.every_track_reported(1),
        "every track has receiver reports in the API: {what}; last answer: {}",
        run.last_answer
    );
    let video = run.video();
    assert!(
        video.max_fraction_lost < LOSS_THRESHOLD,
        "without drops the video track reports (nearly) no loss: {what}"
    );
    assert!(
        run.metrics_fraction_lost < LOSS_THRESHOLD,
        "/metrics shows no loss: {}",
        run.metrics_fraction_lost
    );
    assert!(!run.flagged_loss, "the stream is not flagged: {what}");
    // Loopback loses nothing; a packet or two for a client starved of CPU at most.
    assert!(
        video.max_cumulative_lost <= 2,
        "without drops the video track's cumulative loss stays at about 0: {what}"
    );
}

/// RTP over TCP (interleaved `$` frames) passes through the proxy untouched: ffprobe decodes
/// it without an error and the proxy relays no UDP track and drops nothing.
#[test]
fn interleaved_tcp_passes_through_the_proxy_untouched() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let secs = 4.0;
    let mut live = Live::ffmpeg("av.flv");
    let rtsp = live.gateway.rtsp_addr().expect("RTSP is enabled");
    let proxy = LossyRtsp::start(rtsp, DROP_EVERY);
    let report = ffprobe_decode_with(
        &proxy.url(Live::KEY),
        secs + 0.5,
        &["-rtsp_transport", "tcp"],
    );
    live.assert_publishing();
    assert_media(
        "ffprobe rtsp/tcp through the proxy",
        &report,
        &Expect::for_fixture("av.flv", secs),
    );
    assert!(proxy.tracks().is_empty(), "{:?}", proxy.tracks());
    assert_eq!(proxy.dropped(), 0);
}
