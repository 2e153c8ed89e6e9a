//! What a viewer joining a running stream receives first, over the FLV-family egresses (RTMP play
//! and HTTP-FLV): the tags in arrival order, and the check that a player can start on them
//! (metadata, then both decoder configurations, then a video keyframe).
//!
//! The tags are read with the project's own RTMP client (the `rtmp` crate through the load tool's
//! connection helper) and the `flv` crate's reader; each cell confirms the result with ffprobe.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flv::{AudioPacketKind, AudioTagHeader, VideoPacketKind, VideoTagHeader};
use rtmp::ClientSessionEvent;

/// Tags collected at most, should the first keyframe or the first audio frame never come.
const MAX_START_TAGS: usize = 400;

/// The largest HTTP response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// One audio, video or script tag as a viewer received it.
#[derive(Debug, Clone)]
pub struct StartTag {
    /// 8 audio, 9 video, 18 script.
    pub tag_type: u8,
    /// The viewer's timestamp in milliseconds.
    pub timestamp: u32,
    pub body: Bytes,
    /// Time from the viewer's first connect attempt to this tag's arrival.
    pub arrived: Duration,
}

/// What a tag is, as far as starting playback goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRole {
    Script,
    VideoConfig,
    AudioConfig,
    KeyFrame,
    InterFrame,
    AudioFrame,
    Other,
}

impl StartTag {
    pub fn role(&self) -> StartRole {
        match self.tag_type {
            18 => StartRole::Script,
            9 => match VideoTagHeader::parse(&self.body) {
                Ok(h) if h.packet == VideoPacketKind::SequenceHeader => StartRole::VideoConfig,
                Ok(h) if h.is_keyframe() => StartRole::KeyFrame,
                Ok(h) if h.packet == VideoPacketKind::Frame => StartRole::InterFrame,
                _ => StartRole::Other,
            },
            8 => match AudioTagHeader::parse(&self.body) {
                Ok(h) if h.packet == AudioPacketKind::SequenceHeader => StartRole::AudioConfig,
                Ok(h) if h.packet == AudioPacketKind::Frame => StartRole::AudioFrame,
                _ => StartRole::Other,
            },
            _ => StartRole::Other,
        }
    }
}

/// How much a viewer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadUntil {
    /// The first video frame and, when true, the first audio frame.
    FirstFrames { audio: bool },
    /// Video frames spanning this many milliseconds of the viewer's timeline.
    VideoMillis(u32),
}

/// Collects tags until [`ReadUntil`] is met.
struct Collector {
    started: Instant,
    until: ReadUntil,
    tags: Vec<StartTag>,
    /// Timestamps of the first and the latest video frame.
    video_span: Option<(u32, u32)>,
}

impl Collector {
    fn new(until: ReadUntil) -> Collector {
        Collector {
            started: Instant::now(),
            until,
            tags: Vec::new(),
            video_span: None,
        }
    }

    /// Adds a tag; returns true once enough has arrived.
    fn push(&mut self, tag_type: u8, timestamp: u32, body: Bytes) -> bool {
        if !matches!(tag_type, 8 | 9 | 18) {
            return false;
        }
        let arrived = self.started.elapsed();
        let tag = StartTag {
            tag_type,
            timestamp,
            body,
            arrived,
        };
        if matches!(tag.role(), StartRole::KeyFrame | StartRole::InterFrame) {
            let first = self.video_span.map_or(timestamp, |(first, _)| first);
            self.video_span = Some((first, timestamp));
        }
        self.tags.push(tag);
        match self.until {
            ReadUntil::FirstFrames { audio } => {
                let has_audio = self.tags.iter().any(|t| t.role() == StartRole::AudioFrame);
                (self.video_span.is_some() && (has_audio || !audio))
                    || self.tags.len() >= MAX_START_TAGS
            }
            ReadUntil::VideoMillis(ms) => self
                .video_span
                .is_some_and(|(first, last)| last.wrapping_sub(first) >= ms),
        }
    }
}

/// Plays `url` (`rtmp://host:port/app/stream`) with the project's own RTMP client and returns the
/// tags it received, in order, until `until` is met.
pub fn rtmp_tags(url: &str, until: ReadUntil, timeout: Duration) -> Result<Vec<StartTag>, String> {
    let url = gwload::rtmp_view::RtmpUrl::parse(url).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    let mut collector = Collector::new(until);
    let read = read_rtmp(&url, &mut collector);
    match runtime.block_on(async { tokio::time::timeout(timeout, read).await }) {
        Ok(result) => result.map(|()| collector.tags),
        Err(_) => Err(format!(
            "{until:?} not met within {timeout:?}; got {} tags",
            collector.tags.len()
        )),
    }
}

async fn read_rtmp(
    url: &gwload::rtmp_view::RtmpUrl,
    collector: &mut Collector,
) -> Result<(), String> {
    let (mut sock, mut session, id) = gwload::rtmp_view::open(url, 0x1a7e, None)
        .await
        .map_err(|e| format!("RTMP connect: {e}"))?;
    session.play(id, &url.stream);
    let io = |e: gwload::ViewError| format!("RTMP play: {e}");
    loop {
        sock.write_all(&session.take_output()).await.map_err(io)?;
        let n = sock
            .read_with(|d: &[u8]| Ok(session.feed(d)?))
            .await
            .map_err(io)?;
        if n == 0 {
            return Err("the server closed the RTMP connection".into());
        }
        while let Some(event) = session.poll_event().map_err(|e| e.to_string())? {
            let done = match event {
                ClientSessionEvent::Media(m) => collector.push(m.type_id, m.timestamp, m.payload),
                ClientSessionEvent::Status { level, code, .. } if level == "error" => {
                    return Err(format!("RTMP play: {code}"));
                }
                _ => false,
            };
            if done {
                return Ok(());
            }
        }
    }
}

/// GETs an HTTP-FLV `url` and returns the tags it received, in order, until `until` is met,
/// parsed with the `flv` crate's reader.
pub fn http_flv_tags(
    url: &str,
    until: ReadUntil,
    timeout: Duration,
) -> Result<Vec<StartTag>, String> {
    let mut collector = Collector::new(until);
    let mut body = http_stream(url, timeout)?;
    let mut reader = flv::FlvReader::new();
    reader.push(&body.1);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(tag) = reader.next_tag().map_err(|e| format!("{url}: {e}"))? {
            if collector.push(tag.tag_type, tag.timestamp, tag.body) {
                return Ok(collector.tags);
            }
        }
        let n = body.0.read(&mut buf).map_err(|e| {
            format!(
                "{url}: {e} after {:?} and {} tags",
                collector.started.elapsed(),
                collector.tags.len()
            )
        })?;
        if n == 0 {
            return Err(format!(
                "{url}: the body ended after {} tags",
                collector.tags.len()
            ));
        }
        reader.push(&buf[..n]);
    }
}

/// Sends an HTTP/1.0 GET (close-delimited body, never chunked) and returns the connection and the
/// body bytes read with the head; fails unless the status is 200.
fn http_stream(url: &str, timeout: Duration) -> Result<(TcpStream, Vec<u8>), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {host}: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if raw.len() > MAX_HEAD {
            return Err(format!("{url}: no end of the response head"));
        }
        let n = stream.read(&mut buf).map_err(|e| format!("{url}: {e}"))?;
        if n == 0 {
            return Err(format!("{url}: closed before the response head"));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{url}: {head}"));
    }
    Ok((stream, raw.split_off(end + 4)))
}

/// The H.265 video of `tags` (an hvcC sequence header, then length-prefixed frames, legacy or
/// Enhanced RTMP) as an Annex B elementary stream that ffprobe can decode, parameter sets first.
/// This is how a cell decodes H.265 that arrived over FLV when no installed client reads H.265 in
/// FLV (ffmpeg before 6.1).
pub fn hevc_annex_b(tags: &[StartTag]) -> Result<Vec<u8>, String> {
    let mut out = bytes::BytesMut::new();
    let mut length_size = None;
    for t in tags.iter().filter(|t| t.tag_type == 9) {
        let h = VideoTagHeader::parse(&t.body).map_err(|e| e.to_string())?;
        let payload = t.body.slice(h.header_len.min(t.body.len())..);
        match h.packet {
            VideoPacketKind::SequenceHeader => {
                let config =
                    codecs::HevcDecoderConfig::parse(&payload).map_err(|e| e.to_string())?;
                for nal in config.arrays.iter().flat_map(|a| &a.nals) {
                    codecs::nal::write_annex_b(&mut out, nal);
                }
                length_size = Some(config.nal_length_size);
            }
            VideoPacketKind::Frame => {
                let size = length_size.ok_or("a video frame before the hvcC sequence header")?;
                codecs::nal::length_prefixed_to_annex_b(&payload, size, &mut out)
                    .map_err(|e| format!("frame at {} ms: {e}", t.timestamp))?;
            }
            _ => {}
        }
    }
    Ok(out.to_vec())
}

/// The roles of `tags` in order, for messages.
pub fn roles(tags: &[StartTag]) -> Vec<StartRole> {
    tags.iter().map(StartTag::role).collect()
}

/// How a viewer's stream started.
#[derive(Debug, Clone, Copy)]
pub struct StartReport {
    /// Time from connecting to the arrival of the first video keyframe.
    pub first_keyframe: Duration,
    /// The viewer's timestamp of that keyframe, in milliseconds.
    pub keyframe_ts: u32,
    /// The viewer's timestamp of the first audio frame, if any.
    pub audio_ts: Option<u32>,
    /// Tags before the keyframe (metadata and configurations).
    pub tags_before_keyframe: usize,
}

/// Checks that `tags` start the way a player needs: metadata first (when `metadata`), the video
/// configuration before any video frame, the first video frame a keyframe, and the audio
/// configuration before any audio frame (when `audio`).
pub fn check_start(tags: &[StartTag], metadata: bool, audio: bool) -> Result<StartReport, String> {
    let order = roles(tags);
    let first = |role| order.iter().position(|r| *r == role);
    let fail = |what: &str| Err(format!("{what}; tags in arrival order: {order:?}"));
    if metadata && order.first() != Some(&StartRole::Script) {
        return fail("the first tag is not the metadata");
    }
    let frame = order
        .iter()
        .position(|r| matches!(r, StartRole::KeyFrame | StartRole::InterFrame));
    let Some(frame) = frame else {
        return fail("no video frame");
    };
    if order[frame] != StartRole::KeyFrame {
        return fail("the first video frame is not a keyframe");
    }
    if first(StartRole::VideoConfig).is_none_or(|c| c > frame) {
        return fail("no video configuration before the first video frame");
    }
    let audio_frame = first(StartRole::AudioFrame);
    if audio {
        let Some(a) = audio_frame else {
            return fail("no audio frame");
        };
        if first(StartRole::AudioConfig).is_none_or(|c| c > a) {
            return fail("no audio configuration before the first audio frame");
        }
    }
    Ok(StartReport {
        first_keyframe: tags[frame].arrived,
        keyframe_ts: tags[frame].timestamp,
        audio_ts: audio_frame.map(|a| tags[a].timestamp),
        tags_before_keyframe: frame,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(tag_type: u8, body: &'static [u8]) -> StartTag {
        StartTag {
            tag_type,
            timestamp: 0,
            body: Bytes::from_static(body),
            arrived: Duration::ZERO,
        }
    }

    const META: &[u8] = b"\x02\x00\x0aonMetaData";
    const AVCC: &[u8] = &[0x17, 0, 0, 0, 0, 1, 0x4d];
    const KEY: &[u8] = &[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65];
    const INTER: &[u8] = &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41];
    const ASC: &[u8] = &[0xaf, 0, 0x12, 0x10];
    const AAC: &[u8] = &[0xaf, 1, 0x21];

    #[test]
    fn start_orders_table() {
        // (tags, metadata expected, audio expected, problem or None)
        let cases: Vec<(Vec<StartTag>, bool, bool, Option<&str>)> = vec![
            (
                vec![
                    tag(18, META),
                    tag(9, AVCC),
                    tag(8, ASC),
                    tag(9, KEY),
                    tag(8, AAC),
                ],
                true,
                true,
                None,
            ),
            (
                vec![tag(9, AVCC), tag(8, ASC), tag(9, KEY), tag(8, AAC)],
                true,
                true,
                Some("not the metadata"),
            ),
            (
                vec![tag(18, META), tag(9, AVCC), tag(8, ASC), tag(9, INTER)],
                true,
                true,
                Some("not a keyframe"),
            ),
            (
                vec![tag(18, META), tag(8, ASC), tag(9, KEY), tag(9, AVCC)],
                true,
                true,
                Some("no video configuration"),
            ),
            (
                vec![
                    tag(18, META),
                    tag(9, AVCC),
                    tag(8, AAC),
                    tag(8, ASC),
                    tag(9, KEY),
                ],
                true,
                true,
                Some("no audio configuration"),
            ),
            (vec![tag(9, AVCC), tag(9, KEY)], false, false, None),
            (
                vec![tag(18, META), tag(9, AVCC), tag(8, ASC)],
                true,
                true,
                Some("no video frame"),
            ),
        ];
        for (tags, metadata, audio, problem) in cases {
            let result = check_start(&tags, metadata, audio);
            match problem {
                None => assert!(result.is_ok(), "{result:?}"),
                Some(p) => assert!(
                    result.as_ref().is_err_and(|e| e.contains(p)),
                    "expected {p:?}, got {result:?}"
                ),
            }
        }
    }

    #[test]
    fn enhanced_rtmp_video_tags_have_roles() {
        assert_eq!(tag(9, b"\x90hvc1\x01").role(), StartRole::VideoConfig);
        assert_eq!(
            tag(9, b"\x91hvc1\0\0\0\0\0\0\x01").role(),
            StartRole::KeyFrame
        );
        assert_eq!(tag(9, b"\xa3hvc1\0\0\0\x01").role(), StartRole::InterFrame);
    }
}
