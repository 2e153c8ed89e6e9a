//! From bus events to one viewer's FLV byte stream.
//!
//! [`FlvFramer`] is the sans-IO part: it turns bus [`Tag`]s into FLV frames and rebases
//! timestamps so every viewer starts near zero. [`flv_frames`] is the async part: it drains a
//! [`Subscriber`] into a stream of [`Bytes`] frames that the HTTP body and the WebSocket both send.
//!
//! Per tag, a viewer allocates one 15-byte buffer (the 11-byte tag header and the 4-byte
//! `PreviousTagSize` that follows the body); the body itself is the bus's shared `Bytes`, and
//! hyper sends each frame as one HTTP chunk with vectored writes. The exception is write batching
//! (`write_delay`): the frames of one delayed batch are joined into one buffer, one copy of a
//! few kilobytes per batch, because hyper's write queue flushes every 16 buffers and a batch of
//! separate frames would cost several system calls (and, measured, an extra batch of latency).

use std::collections::VecDeque;
use std::time::Duration;

use std::sync::Arc;

use bus::{Event, Protocol, SendWatch, Stream, Subscriber, Tag, TagKind};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream as FuturesStream;

use flv::{MAX_TAG_DATA_SIZE, TAG_HEADER_LEN};

/// Bytes of the `PreviousTagSize` field after every tag (FLV 10.1 annex E.3).
const PREVIOUS_TAG_SIZE_LEN: usize = 4;
/// At most this many events are taken from the start-up burst to choose the timestamp base. The
/// bus bounds its GOP cache too; this only keeps one viewer's scan bounded whatever it is set to.
const MAX_STARTUP_SCAN: usize = 4096;

/// Which tracks the FLV file header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracks {
    pub audio: bool,
    pub video: bool,
}

impl Tracks {
    /// The tracks a stream has now, from its cached sequence headers, its media info and the
    /// start-up tags a viewer is about to receive. A stream that shows neither (a publisher that
    /// has sent nothing yet) announces both, because a player told "no audio" would never play
    /// audio that arrives later.
    pub fn of(stream: &Stream, startup: &[Event]) -> Tracks {
        let info = stream.media_info();
        let seen = |kind: TagKind| {
            startup
                .iter()
                .any(|e| matches!(e, Event::Tag(t) if t.kind == kind))
        };
        let video = info.video_codec.is_some() || stream.has_video() || seen(TagKind::Video);
        let audio = info.audio_codec.is_some()
            || stream.audio_sequence_header().is_some()
            || seen(TagKind::Audio);
        if !audio && !video {
            return Tracks {
                audio: true,
                video: true,
            };
        }
        Tracks { audio, video }
    }
}

/// One viewer's FLV framing state.
#[derive(Debug, Default)]
pub struct FlvFramer {
    /// The stream timestamp that becomes zero for this viewer.
    base: Option<u64>,
    /// The last timestamp written, given to configuration tags so the output never goes back.
    last: u32,
}

impl FlvFramer {
    /// A framer whose zero is the earliest media timestamp among `startup`: the first tags a
    /// viewer receives (the cached GOP) are not in strict timestamp order across tracks, so the
    /// first tag alone is not a safe base.
    pub fn new(startup: &[Event]) -> FlvFramer {
        let base = startup
            .iter()
            .filter_map(|e| match e {
                Event::Tag(t) if is_media(t) => Some(t.timestamp),
                _ => None,
            })
            .min();
        FlvFramer { base, last: 0 }
    }

    /// The FLV file header and `PreviousTagSize0` (annex E.2, E.3).
    pub fn file_header(tracks: Tracks) -> Bytes {
        Bytes::copy_from_slice(&flv::file_header(tracks.audio, tracks.video))
    }

    /// The frames of one tag: its header, its shared body, its `PreviousTagSize`. `None` for a
    /// body too large for FLV's 24-bit size field, which no real encoder produces.
    pub fn tag(&mut self, tag: &Tag) -> Option<[Bytes; 3]> {
        let len = u32::try_from(tag.data.len())
            .ok()
            .filter(|&l| l <= MAX_TAG_DATA_SIZE)?;
        let timestamp = self.timestamp(tag);
        let mut buf = BytesMut::with_capacity(TAG_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN);
        buf.put_slice(&flv::tag_header(tag.kind.flv_type(), len, timestamp));
        buf.put_slice(&flv::previous_tag_size(flv::writer::tag_size(len)));
        let trailer = buf.split_off(TAG_HEADER_LEN);
        Some([buf.freeze(), tag.data.clone(), trailer.freeze()])
    }

    /// The viewer's timestamp for `tag`, in milliseconds. FLV timestamps are 32 bits and wrap
    /// after 49.7 days, as every FLV reader expects.
    fn timestamp(&mut self, tag: &Tag) -> u32 {
        if !is_media(tag) {
            return self.last;
        }
        let base = *self.base.get_or_insert(tag.timestamp);
        let ts = tag.timestamp.saturating_sub(base) as u32;
        self.last = ts;
        ts
    }
}

/// Audio and video frames, as opposed to metadata and decoder configurations.
fn is_media(tag: &Tag) -> bool {
    tag.kind != TagKind::Script && !tag.sequence_header
}

/// The start-up burst: every event the subscriber has ready now (metadata, sequence headers and
/// the cached GOP), up to [`MAX_STARTUP_SCAN`].
pub fn take_startup(sub: &mut Subscriber) -> Vec<Event> {
    let mut startup = Vec::new();
    while startup.len() < MAX_STARTUP_SCAN {
        match sub.try_recv() {
            Some(ev) => startup.push(ev),
            None => break,
        }
    }
    startup
}

/// Why a viewer's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The stream was removed from the bus: its publisher left and did not come back within the
    /// bus's grace period.
    Removed,
}

/// Most events one delayed write collects (see [`flv_frames`]); the bus queue is bounded too.
const MAX_DELAYED_EVENTS: usize = 256;
/// A delayed write stops collecting once its frames reach this many bytes. A delay's worth of
/// media is a few KB at usual bitrates; the limit matters when a viewer whose socket was full
/// catches up on a ring full of tags: each delayed batch is copied into one buffer, and that
/// copy, not the shared payloads, is what a viewer that stalls right after it holds.
const MAX_DELAYED_BYTES: usize = 64 * 1024;

struct State {
    sub: Subscriber,
    framer: FlvFramer,
    out: VecDeque<Bytes>,
    /// Bytes in `out`.
    out_bytes: usize,
    startup: std::vec::IntoIter<Event>,
    write_delay: Duration,
    /// Set once an audio or video frame (not a sequence header) has been framed: from then on
    /// write batching may delay the viewer.
    live: bool,
    /// Why the stream ended, once it has; `out` is still drained first.
    ended: Option<End>,
    watch: Option<Arc<SendWatch>>,
}

/// The whole FLV byte stream for one viewer: the file header, then the start-up burst, then live
/// tags until the stream is removed from the bus (a publisher that reconnects within the grace
/// keeps the body going).
///
/// The start-up burst goes out at once. After it, with a non-zero `write_delay`, a live event
/// that arrives is held for `write_delay` together with whatever follows it, so the frames of that
/// interval reach hyper at once and leave in one vectored write: fewer wake-ups and system calls
/// per viewer for at most `write_delay` of added latency.
///
/// With a `watch` (the connection's, from [`crate::SendTimeoutIo`]), no frame is produced while the
/// connection's socket is full: a stalled viewer then holds at most the frames already handed
/// over, not the 16 buffers hyper would queue (each a copied delayed batch).
pub fn flv_frames(
    mut sub: Subscriber,
    write_delay: Duration,
    watch: Option<Arc<SendWatch>>,
) -> impl FuturesStream<Item = Bytes> + Send + 'static {
    let startup = take_startup(&mut sub);
    let tracks = Tracks::of(sub.stream(), &startup);
    let framer = FlvFramer::new(&startup);
    let out = VecDeque::from([FlvFramer::file_header(tracks)]);
    let state = State {
        sub,
        framer,
        out_bytes: out.iter().map(Bytes::len).sum(),
        out,
        startup: startup.into_iter(),
        write_delay,
        live: false,
        ended: None,
        watch,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(frame) = st.out.pop_front() {
                st.out_bytes -= frame.len();
                if let Some(w) = &st.watch {
                    w.writable().await;
                }
                return Some((frame, st));
            }
            if let Some(end) = st.ended {
                tracing::debug!(
                    stream = %st.sub.stream().key(),
                    ?end,
                    "FLV viewer stream ends"
                );
                return None;
            }
            if let Some(ev) = st.startup.next() {
                st.take(Some(ev));
                continue;
            }
            let ev = st.sub.recv().await;
            let delay = st.live && !st.write_delay.is_zero();
            st.take(ev);
            if delay && st.ended.is_none() {
                tokio::time::sleep(st.write_delay).await;
                for _ in 0..MAX_DELAYED_EVENTS {
                    if st.out_bytes >= MAX_DELAYED_BYTES {
                        break;
                    }
                    let Some(ev) = st.sub.try_recv() else { break };
                    st.take(Some(ev));
                    if st.ended.is_some() {
                        break;
                    }
                }
                st.sub.stream().count_batch(Protocol::HttpFlv, st.out.len());
                st.coalesce();
            } else if !st.out.is_empty() {
                st.sub.stream().count_batch(Protocol::HttpFlv, st.out.len());
            }
        }
    })
}

impl State {
    /// Joins the frames of a delayed batch into one buffer, so hyper sends the batch as one
    /// HTTP chunk in one write. Left as separate frames, each becomes a chunk of its own and
    /// hyper's write queue flushes every 16 buffers, which costs several system calls per batch;
    /// one copy of a batch (a few kilobytes) is cheaper than that.
    fn coalesce(&mut self) {
        if self.out.len() < 2 {
            return;
        }
        let mut buf = BytesMut::with_capacity(self.out.iter().map(Bytes::len).sum());
        for f in self.out.drain(..) {
            buf.extend_from_slice(&f);
        }
        self.out.push_back(buf.freeze());
    }

    /// Frames one event into `out`, or records the end of the stream.
    fn take(&mut self, ev: Option<Event>) {
        match classify(ev) {
            Ok(Some(tag)) => self.push(&tag),
            Ok(None) => {}
            Err(end) => self.ended = Some(end),
        }
    }

    fn push(&mut self, tag: &Tag) {
        self.live |= tag.kind != TagKind::Script && !tag.sequence_header;
        match self.framer.tag(tag) {
            Some(frames) => {
                self.out_bytes += frames.iter().map(Bytes::len).sum::<usize>();
                self.out.extend(frames);
            }
            None => tracing::warn!(
                stream = %self.sub.stream().key(),
                len = tag.data.len(),
                "tag too large for FLV; skipped"
            ),
        }
    }
}

/// A tag to send, nothing to send, or the end.
fn classify(ev: Option<Event>) -> Result<Option<Tag>, End> {
    match ev {
        Some(Event::Tag(tag)) => Ok(Some(tag)),
        // A publisher that leaves may return within the bus's grace period: the body stays open
        // and the returning publisher's sequence headers follow in it as tags (ffmpeg and
        // mpegts.js take a new AVC/AAC configuration mid-stream), on the same timeline.
        Some(Event::PublisherLeft | Event::PublisherJoined) => Ok(None),
        Some(_) => Ok(None),
        None => Err(End::Removed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shorthand: `V`/`v` video key/inter, `A` audio, `H`/`h` video/audio header, `S` script.
    fn tag(code: char, ts: u64) -> Tag {
        let (kind, keyframe, header) = match code {
            'V' => (TagKind::Video, true, false),
            'v' => (TagKind::Video, false, false),
            'A' => (TagKind::Audio, false, false),
            'H' => (TagKind::Video, true, true),
            'h' => (TagKind::Audio, false, true),
            _ => (TagKind::Script, false, false),
        };
        Tag {
            keyframe,
            sequence_header: header,
            ..Tag::new(kind, ts, Bytes::from_static(b"xyz"))
        }
    }

    fn ts_of(header: &[u8]) -> u32 {
        let low = u32::from(header[4]) << 16 | u32::from(header[5]) << 8 | u32::from(header[6]);
        low | u32::from(header[7]) << 24
    }

    /// Frames `tags` (code, stream timestamp) after a start-up burst of the first `startup` of
    /// them and compares the written timestamps.
    fn check(tags: &[(char, u64)], startup: usize, want: &[u32]) {
        let events: Vec<Event> = tags
            .iter()
            .take(startup)
            .map(|&(c, ts)| Event::Tag(tag(c, ts)))
            .collect();
        let mut framer = FlvFramer::new(&events);
        let got: Vec<u32> = tags
            .iter()
            .map(|&(c, ts)| ts_of(&framer.tag(&tag(c, ts)).expect("small tag")[0]))
            .collect();
        assert_eq!(got, want, "tags {tags:?}");
    }

    #[test]
    fn rebases_on_the_earliest_startup_media_tag() {
        let tags = [
            ('S', 0),
            ('H', 0),
            ('h', 0),
            ('V', 10_040),
            ('A', 10_020),
            ('v', 10_080),
        ];
        check(&tags, 6, &[0, 0, 0, 20, 0, 60]);
    }

    #[test]
    fn without_a_startup_burst_the_first_media_tag_is_zero() {
        check(
            &[('H', 500), ('V', 5_000), ('A', 5_010), ('v', 5_040)],
            0,
            &[0, 0, 10, 40],
        );
    }

    #[test]
    fn configuration_tags_take_the_last_timestamp() {
        check(
            &[('V', 1_000), ('v', 1_040), ('H', 0), ('h', 7), ('v', 1_080)],
            0,
            &[0, 40, 40, 40, 80],
        );
    }

    #[test]
    fn frames_share_the_body_and_size_the_trailer() {
        let mut framer = FlvFramer::default();
        let t = tag('V', 0);
        let [header, body, trailer] = framer.tag(&t).expect("small tag");
        assert_eq!(header.len(), TAG_HEADER_LEN);
        assert_eq!(header[0], 9);
        assert_eq!(&header[1..4], &[0, 0, 3]);
        assert_eq!(
            body.as_ptr(),
            t.data.as_ptr(),
            "the body is the shared payload, not a copy"
        );
        assert_eq!(&trailer[..], &[0, 0, 0, 14]);
    }

    #[test]
    fn file_header_announces_tracks() {
        for (audio, video, flags) in [(true, true, 5), (true, false, 4), (false, true, 1)] {
            let h = FlvFramer::file_header(Tracks { audio, video });
            assert_eq!(&h[..3], b"FLV");
            assert_eq!(h[4], flags, "audio {audio} video {video}");
            assert_eq!(h.len(), 13);
        }
    }

    /// With write batching, every live tag still arrives once and in order, and frames still
    /// queued when the publisher leaves are sent before the body ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delayed_writes_keep_every_tag_in_order() {
        use futures_util::StreamExt;
        let bus = bus::Bus::new(bus::BusOptions::default());
        let info = bus::PublisherInfo {
            protocol: bus::Protocol::Internal,
            peer: None,
            query: None,
        };
        let mut publisher = bus.publish("live/d", info).expect("free key");
        publisher.push(tag('H', 0));
        publisher.push(tag('V', 0));
        let sub = bus
            .subscribe("live/d", bus::Protocol::HttpFlv)
            .expect("live");
        let frames = flv_frames(sub, Duration::from_millis(30), None);
        let feeder = tokio::spawn(async move {
            for i in 1..=40u64 {
                let code = if i % 4 == 0 { 'A' } else { 'v' };
                publisher.push(tag(code, i * 10));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Dropping the publisher ends the stream right after the last tag.
        });
        let got: Vec<Bytes> = tokio::time::timeout(Duration::from_secs(10), frames.collect())
            .await
            .expect("the body ends after the publisher leaves");
        feeder.await.expect("feeder");
        // Delayed batches arrive joined into one buffer: read the whole body back as a file.
        let body: Vec<u8> = got.iter().flat_map(|f| f.iter().copied()).collect();
        let file = flv::parse_file(&Bytes::from(body)).expect("the body is a valid FLV file");
        let stamps: Vec<u32> = file
            .tags
            .iter()
            .filter(|t| matches!(t.tag_type, 8 | 9))
            .map(|t| t.timestamp)
            .collect();
        assert!(
            got.len() < 42 * 3,
            "batches were joined: {} frames",
            got.len()
        );
        assert_eq!(stamps.len(), 42, "every tag once: {stamps:?}");
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "in order: {stamps:?}"
        );
    }
}
