//! Fragmented MP4 (ISO/IEC 14496-12) for recordings, written by hand: no I/O, no clock.
//!
//! A file is an init segment (`ftyp`, `moov` with one `trak` per track and `mvex`) followed by
//! fragments (`moof` + `mdat`), one per GOP and at most about [`FRAGMENT_MS`] long. Each
//! fragment is handed out whole, so a writer that dies mid-file leaves a file that players read
//! up to its last complete fragment. The init segment's `mehd` holds the duration; it is
//! written as 0 and patched when the file is finished ([`Fmp4Writer::duration_patch`]).
//!
//! | spec | what is written |
//! |---|---|
//! | ISO/IEC 14496-12 4.3, 8.2-8.8 | `ftyp`, `moov`/`mvhd`/`trak`/`tkhd`/`mdia`/`mdhd`/`hdlr`/`minf`/`stbl` (empty sample tables), `mvex`/`mehd`/`trex` |
//! | ISO/IEC 14496-12 8.8.4-8.8.12 | `moof`/`mfhd`/`traf`/`tfhd` (default-base-is-moof)/`tfdt` v1/`trun` v1 (signed composition offsets), `mdat` |
//! | ISO/IEC 14496-15 5.4, 8.4 | `avc1` + `avcC`, `hvc1` + `hvcC` (the FLV sequence header's record, copied) |
//! | ISO/IEC 14496-14 3.1, 14496-1 7.2.6 | `mp4a` + `esds` (ES, DecoderConfig, DecoderSpecificInfo = the AudioSpecificConfig) |
//!
//! Samples are the FLV payloads as they are: AVC/HEVC access units with length-prefixed NAL
//! units (what `avcC`/`hvcC` describe) and raw AAC frames.

use bytes::{BufMut, Bytes, BytesMut};

/// A fragment is cut at the next video keyframe, or once it holds this much media.
pub const FRAGMENT_MS: u64 = 1000;
/// The video track's timescale (90 kHz, like MPEG-TS and RTP).
const VIDEO_TIMESCALE: u32 = 90_000;
/// The movie timescale (`mvhd`, `mehd`): milliseconds.
const MOVIE_TIMESCALE: u32 = 1000;
/// `sample_flags` of a sync sample: depends on no other sample.
const SYNC: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, `sample_is_non_sync_sample`.
const NON_SYNC: u32 = 0x0101_0000;

/// The video codec of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

/// A video track: its decoder configuration record (avcC or hvcC) and picture size.
#[derive(Debug, Clone)]
pub struct VideoTrack {
    pub codec: VideoCodec,
    pub record: Bytes,
    pub width: u16,
    pub height: u16,
}

/// An AAC track: its AudioSpecificConfig and what it says.
#[derive(Debug, Clone)]
pub struct AudioTrack {
    pub asc: Bytes,
    pub sample_rate: u32,
    pub channels: u16,
}

/// One sample waiting for its fragment; times in the track's timescale from the file start.
#[derive(Debug, Clone)]
struct Sample {
    dts: u64,
    duration: u32,
    cts: i32,
    sync: bool,
    data: Bytes,
}

/// One track's samples: those ready for the next fragment, and the newest, held back until the
/// next one gives its duration.
#[derive(Debug, Default)]
struct TrackQueue {
    ready: Vec<Sample>,
    held: Option<Sample>,
    last_duration: u32,
}

impl TrackQueue {
    fn push(&mut self, sample: Sample) {
        if let Some(mut prev) = self.held.take() {
            let step = sample.dts.saturating_sub(prev.dts);
            prev.duration = u32::try_from(step).unwrap_or(u32::MAX);
            self.last_duration = prev.duration;
            self.ready.push(prev);
        }
        self.held = Some(sample);
    }

    /// Moves the held sample to the ready ones with the last duration seen (or `default`).
    fn release_held(&mut self, default: u32) {
        if let Some(mut s) = self.held.take() {
            s.duration = match self.last_duration {
                0 => default,
                d => d,
            };
            self.ready.push(s);
        }
    }

    fn span(&self) -> u64 {
        match (self.ready.first(), self.ready.last()) {
            (Some(a), Some(b)) => b.dts + u64::from(b.duration) - a.dts,
            _ => 0,
        }
    }
}

/// Writes one fragmented MP4 file: [`Fmp4Writer::init_segment`] first, then what every push
/// and [`Fmp4Writer::finish`] return, in order.
#[derive(Debug)]
pub struct Fmp4Writer {
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    /// The stream timestamp (ms) the file's time 0 stands for.
    origin_ms: u64,
    sequence: u32,
    video_queue: TrackQueue,
    audio_queue: TrackQueue,
    /// The largest end time written so far, in milliseconds from the origin.
    end_ms: u64,
    mehd_offset: usize,
}

impl Fmp4Writer {
    /// A file of these tracks (at least one), whose time 0 is stream time `origin_ms`.
    pub fn new(video: Option<VideoTrack>, audio: Option<AudioTrack>, origin_ms: u64) -> Self {
        Fmp4Writer {
            video,
            audio,
            origin_ms,
            sequence: 0,
            video_queue: TrackQueue::default(),
            audio_queue: TrackQueue::default(),
            end_ms: 0,
            mehd_offset: 0,
        }
    }

    fn video_id(&self) -> u32 {
        1
    }

    fn audio_id(&self) -> u32 {
        if self.video.is_some() {
            2
        } else {
            1
        }
    }

    /// `ftyp` and `moov`. Also remembers where the duration is, for
    /// [`Fmp4Writer::duration_patch`].
    pub fn init_segment(&mut self) -> Bytes {
        let mut out = Vec::with_capacity(1024);
        put_box(&mut out, b"ftyp", |b| {
            b.extend_from_slice(b"isom");
            b.put_u32(0x200);
            for brand in [b"isom", b"iso6", b"iso2", b"avc1", b"mp41"] {
                b.extend_from_slice(brand);
            }
        });
        let mut mehd_offset = 0;
        put_box(&mut out, b"moov", |moov| {
            let next_track = 1 + u32::from(self.video.is_some()) + u32::from(self.audio.is_some());
            put_mvhd(moov, next_track);
            if let Some(v) = &self.video {
                put_video_trak(moov, self.video_id(), v);
            }
            if let Some(a) = &self.audio {
                put_audio_trak(moov, self.audio_id(), a);
            }
            put_box(moov, b"mvex", |mvex| {
                put_full_box(mvex, b"mehd", 1, 0, |b| {
                    mehd_offset = b.len();
                    b.put_u64(0);
                });
                if self.video.is_some() {
                    put_trex(mvex, self.video_id(), NON_SYNC);
                }
                if self.audio.is_some() {
                    put_trex(mvex, self.audio_id(), SYNC);
                }
            });
        });
        self.mehd_offset = mehd_offset;
        Bytes::from(out)
    }

    /// Where to write, once the file is finished, the 8 bytes of its duration in milliseconds.
    pub fn duration_patch(&self) -> (u64, [u8; 8]) {
        (self.mehd_offset as u64, self.end_ms.to_be_bytes())
    }

    /// The media written so far, in milliseconds (the end of the last released sample).
    pub fn duration_ms(&self) -> u64 {
        self.end_ms
    }

    /// Adds one video access unit (length-prefixed NAL units); a keyframe first closes the
    /// fragment before it, which is returned.
    pub fn push_video(
        &mut self,
        dts_ms: u64,
        cts_ms: i32,
        keyframe: bool,
        data: Bytes,
    ) -> Option<Bytes> {
        self.video.as_ref()?;
        let dts = dts_ms.saturating_sub(self.origin_ms) * u64::from(VIDEO_TIMESCALE / 1000);
        let sample = Sample {
            dts,
            duration: 0,
            cts: cts_ms.saturating_mul((VIDEO_TIMESCALE / 1000) as i32),
            sync: keyframe,
            data,
        };
        self.video_queue.push(sample);
        let full = self.video_queue.span() >= FRAGMENT_MS * u64::from(VIDEO_TIMESCALE / 1000);
        (keyframe || full).then(|| self.fragment()).flatten()
    }

    /// Adds one raw AAC frame.
    pub fn push_audio(&mut self, dts_ms: u64, data: Bytes) -> Option<Bytes> {
        let rate = u64::from(self.audio.as_ref()?.sample_rate);
        let dts = dts_ms.saturating_sub(self.origin_ms) * rate / 1000;
        let sample = Sample {
            dts,
            duration: 0,
            cts: 0,
            sync: true,
            data,
        };
        self.audio_queue.push(sample);
        // With video, fragments follow the GOPs (or the video's second); audio alone cuts them.
        let full = self.audio_queue.span() >= FRAGMENT_MS * rate / 1000;
        (self.video.is_none() && full)
            .then(|| self.fragment())
            .flatten()
    }

    /// Everything still held, as a last fragment.
    pub fn finish(&mut self) -> Option<Bytes> {
        self.video_queue.release_held(VIDEO_TIMESCALE / 30);
        self.audio_queue.release_held(1024);
        self.fragment()
    }

    /// A `moof` + `mdat` of the ready samples of both tracks; `None` if there are none.
    fn fragment(&mut self) -> Option<Bytes> {
        let video = std::mem::take(&mut self.video_queue.ready);
        let audio = std::mem::take(&mut self.audio_queue.ready);
        if video.is_empty() && audio.is_empty() {
            return None;
        }
        self.note_end(&video, u64::from(VIDEO_TIMESCALE));
        let rate = self
            .audio
            .as_ref()
            .map_or(1000, |a| u64::from(a.sample_rate));
        self.note_end(&audio, rate);
        self.sequence += 1;
        let tracks = [(self.video_id(), &video), (self.audio_id(), &audio)];
        let moof = moof(self.sequence, &tracks);
        let payload: usize = video.iter().chain(&audio).map(|s| s.data.len()).sum();
        let mut out = BytesMut::with_capacity(moof.len() + 8 + payload);
        out.extend_from_slice(&moof);
        out.put_u32(u32::try_from(payload + 8).unwrap_or(u32::MAX));
        out.extend_from_slice(b"mdat");
        for s in video.iter().chain(&audio) {
            out.extend_from_slice(&s.data);
        }
        Some(out.freeze())
    }

    fn note_end(&mut self, samples: &[Sample], timescale: u64) {
        if let Some(last) = samples.last() {
            let end = (last.dts + u64::from(last.duration)) * 1000 / timescale;
            self.end_ms = self.end_ms.max(end);
        }
    }
}

/// A `moof` for `tracks` (track id, samples; empty ones are left out), whose data offsets point
/// into the `mdat` that follows it, which holds the tracks' samples in this order.
fn moof(sequence: u32, tracks: &[(u32, &Vec<Sample>)]) -> Vec<u8> {
    // The data offsets depend on the moof's own size: write it once to learn it, then again.
    let build = |moof_len: usize| {
        let mut out = Vec::new();
        put_box(&mut out, b"moof", |moof| {
            put_full_box(moof, b"mfhd", 0, 0, |b| b.put_u32(sequence));
            let mut offset = moof_len + 8;
            for (id, samples) in tracks.iter().filter(|(_, s)| !s.is_empty()) {
                put_traf(moof, *id, samples, offset);
                offset += samples.iter().map(|s| s.data.len()).sum::<usize>();
            }
        });
        out
    };
    let len = build(0).len();
    build(len)
}

fn put_traf(out: &mut Vec<u8>, track_id: u32, samples: &[Sample], data_offset: usize) {
    put_box(out, b"traf", |traf| {
        // default-base-is-moof: data offsets count from the moof's first byte.
        put_full_box(traf, b"tfhd", 0, 0x02_0000, |b| b.put_u32(track_id));
        put_full_box(traf, b"tfdt", 1, 0, |b| b.put_u64(samples[0].dts));
        // data-offset, sample duration, size, flags and composition offset present.
        put_full_box(traf, b"trun", 1, 0x0f01, |b| {
            b.put_u32(samples.len() as u32);
            b.put_i32(i32::try_from(data_offset).unwrap_or(i32::MAX));
            for s in samples {
                b.put_u32(s.duration);
                b.put_u32(u32::try_from(s.data.len()).unwrap_or(u32::MAX));
                b.put_u32(if s.sync { SYNC } else { NON_SYNC });
                b.put_i32(s.cts);
            }
        });
    });
}

/// Writes a box: its size (patched once the body is written), type and body.
fn put_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.put_u32(0);
    out.extend_from_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: version and 24-bit flags before the body.
fn put_full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    put_box(out, kind, |b| {
        b.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(b);
    });
}

/// The unity matrix of `mvhd` and `tkhd`.
fn put_matrix(b: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        b.put_u32(v);
    }
}

fn put_mvhd(out: &mut Vec<u8>, next_track: u32) {
    put_full_box(out, b"mvhd", 0, 0, |b| {
        b.put_u32(0); // creation_time
        b.put_u32(0); // modification_time
        b.put_u32(MOVIE_TIMESCALE);
        b.put_u32(0); // duration: in mehd
        b.put_u32(0x0001_0000); // rate 1.0
        b.put_u16(0x0100); // volume 1.0
        b.put_bytes(0, 10);
        put_matrix(b);
        b.put_bytes(0, 24); // pre_defined
        b.put_u32(next_track);
    });
}

fn put_tkhd(out: &mut Vec<u8>, track_id: u32, audio: bool, width: u16, height: u16) {
    // Flags: enabled, in movie, in preview.
    put_full_box(out, b"tkhd", 0, 3, |b| {
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(track_id);
        b.put_u32(0);
        b.put_u32(0); // duration
        b.put_bytes(0, 8);
        b.put_u16(0); // layer
        b.put_u16(0); // alternate_group
        b.put_u16(if audio { 0x0100 } else { 0 });
        b.put_u16(0);
        put_matrix(b);
        b.put_u32(u32::from(width) << 16);
        b.put_u32(u32::from(height) << 16);
    });
}

fn put_mdhd_hdlr(out: &mut Vec<u8>, timescale: u32, handler: &[u8; 4], name: &str) {
    put_full_box(out, b"mdhd", 0, 0, |b| {
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(timescale);
        b.put_u32(0);
        b.put_u16(0x55c4); // "und"
        b.put_u16(0);
    });
    put_full_box(out, b"hdlr", 0, 0, |b| {
        b.put_u32(0);
        b.extend_from_slice(handler);
        b.put_bytes(0, 12);
        b.extend_from_slice(name.as_bytes());
        b.put_u8(0);
    });
}

/// `dinf` (the media is in this file) and an `stbl` whose only content is the sample entry:
/// the samples are in the fragments.
fn put_dinf_stbl(out: &mut Vec<u8>, sample_entry: impl FnOnce(&mut Vec<u8>)) {
    put_box(out, b"dinf", |dinf| {
        put_full_box(dinf, b"dref", 0, 0, |b| {
            b.put_u32(1);
            put_full_box(b, b"url ", 0, 1, |_| {});
        });
    });
    put_box(out, b"stbl", |stbl| {
        put_full_box(stbl, b"stsd", 0, 0, |b| {
            b.put_u32(1);
            sample_entry(b);
        });
        put_full_box(stbl, b"stts", 0, 0, |b| b.put_u32(0));
        put_full_box(stbl, b"stsc", 0, 0, |b| b.put_u32(0));
        put_full_box(stbl, b"stsz", 0, 0, |b| {
            b.put_u32(0);
            b.put_u32(0);
        });
        put_full_box(stbl, b"stco", 0, 0, |b| b.put_u32(0));
    });
}

fn put_video_trak(out: &mut Vec<u8>, track_id: u32, v: &VideoTrack) {
    put_box(out, b"trak", |trak| {
        put_tkhd(trak, track_id, false, v.width, v.height);
        put_box(trak, b"mdia", |mdia| {
            put_mdhd_hdlr(mdia, VIDEO_TIMESCALE, b"vide", "VideoHandler");
            put_box(mdia, b"minf", |minf| {
                put_full_box(minf, b"vmhd", 0, 1, |b| b.put_bytes(0, 8));
                put_dinf_stbl(minf, |b| put_visual_entry(b, v));
            });
        });
    });
}

fn put_visual_entry(out: &mut Vec<u8>, v: &VideoTrack) {
    let (entry, config) = match v.codec {
        VideoCodec::H264 => (b"avc1", b"avcC"),
        VideoCodec::H265 => (b"hvc1", b"hvcC"),
    };
    put_box(out, entry, |b| {
        b.put_bytes(0, 6);
        b.put_u16(1); // data_reference_index
        b.put_bytes(0, 16); // pre_defined, reserved
        b.put_u16(v.width);
        b.put_u16(v.height);
        b.put_u32(0x0048_0000); // 72 dpi
        b.put_u32(0x0048_0000);
        b.put_u32(0);
        b.put_u16(1); // frame_count
        b.put_bytes(0, 32); // compressorname
        b.put_u16(0x0018); // depth
        b.put_i16(-1);
        put_box(b, config, |c| c.extend_from_slice(&v.record));
    });
}

fn put_audio_trak(out: &mut Vec<u8>, track_id: u32, a: &AudioTrack) {
    put_box(out, b"trak", |trak| {
        put_tkhd(trak, track_id, true, 0, 0);
        put_box(trak, b"mdia", |mdia| {
            put_mdhd_hdlr(mdia, a.sample_rate, b"soun", "SoundHandler");
            put_box(mdia, b"minf", |minf| {
                put_full_box(minf, b"smhd", 0, 0, |b| b.put_u32(0));
                put_dinf_stbl(minf, |b| put_mp4a(b, track_id, a));
            });
        });
    });
}

fn put_mp4a(out: &mut Vec<u8>, track_id: u32, a: &AudioTrack) {
    put_box(out, b"mp4a", |b| {
        b.put_bytes(0, 6);
        b.put_u16(1);
        b.put_bytes(0, 8);
        b.put_u16(a.channels);
        b.put_u16(16);
        b.put_u32(0);
        // The 16.16 sample rate; rates past 65535 Hz do not fit and are left to the esds.
        b.put_u32(u32::from(u16::try_from(a.sample_rate).unwrap_or(0)) << 16);
        put_full_box(b, b"esds", 0, 0, |e| put_es_descriptor(e, track_id, &a.asc));
    });
}

/// ES_Descriptor (tag 3) with a DecoderConfigDescriptor (tag 4: MPEG-4 audio, object type
/// 0x40) holding the AudioSpecificConfig (tag 5), and the SLConfigDescriptor (tag 6).
fn put_es_descriptor(out: &mut Vec<u8>, track_id: u32, asc: &[u8]) {
    let mut dsi = Vec::new();
    put_descriptor(&mut dsi, 5, asc);
    let mut dcd = vec![0x40, 0x15, 0, 0, 0]; // object type, audio stream, bufferSizeDB
    dcd.put_u32(0); // maxBitrate
    dcd.put_u32(0); // avgBitrate
    dcd.extend_from_slice(&dsi);
    let mut es = Vec::new();
    es.put_u16(u16::try_from(track_id).unwrap_or(1));
    es.put_u8(0);
    put_descriptor(&mut es, 4, &dcd);
    put_descriptor(&mut es, 6, &[2]);
    put_descriptor(out, 3, &es);
}

/// A descriptor: tag, the size in 7-bit groups (ISO/IEC 14496-1 8.3.3), body.
fn put_descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    let len = body.len().min(0x0fff_ffff);
    for shift in [21, 14, 7] {
        if len >> shift > 0 {
            out.put_u8(0x80 | ((len >> shift) & 0x7f) as u8);
        }
    }
    out.put_u8((len & 0x7f) as u8);
    out.extend_from_slice(&body[..len]);
}

fn put_trex(out: &mut Vec<u8>, track_id: u32, default_flags: u32) {
    put_full_box(out, b"trex", 0, 0, |b| {
        b.put_u32(track_id);
        b.put_u32(1);
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(default_flags);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The boxes at the top of `data`: (type, size); panics on a size that runs past the end.
    fn top_boxes(data: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            let kind = String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned();
            assert!(
                size >= 8 && at + size <= data.len(),
                "{kind} of {size} at {at}"
            );
            out.push((kind, size));
            at += size;
        }
        out
    }

    /// The children of the box whose body is `body`.
    fn children(body: &[u8]) -> Vec<String> {
        top_boxes(body).into_iter().map(|(k, _)| k).collect()
    }

    fn find<'a>(data: &'a [u8], path: &[&str]) -> &'a [u8] {
        let mut cur = data;
        for want in path {
            let mut at = 0;
            loop {
                let size = u32::from_be_bytes(cur[at..at + 4].try_into().unwrap()) as usize;
                if &cur[at + 4..at + 8] == want.as_bytes() {
                    cur = &cur[at + 8..at + size];
                    break;
                }
                at += size;
                assert!(at < cur.len(), "no {want}");
            }
        }
        cur
    }

    fn writer() -> Fmp4Writer {
        let video = VideoTrack {
            codec: VideoCodec::H264,
            record: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0xe0]),
            width: 320,
            height: 240,
        };
        let audio = AudioTrack {
            asc: Bytes::from_static(&[0x12, 0x10]),
            sample_rate: 44_100,
            channels: 2,
        };
        Fmp4Writer::new(Some(video), Some(audio), 1000)
    }

    #[test]
    fn init_segment_has_the_boxes_players_need() {
        let mut w = writer();
        let init = w.init_segment();
        let top = top_boxes(&init);
        assert_eq!(
            top.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["ftyp", "moov"]
        );
        let moov = find(&init, &["moov"]);
        assert_eq!(children(moov), ["mvhd", "trak", "trak", "mvex"]);
        let stsd = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd"]);
        assert_eq!(&stsd[12..16], b"avc1");
        assert_eq!(
            children(find(&init, &["moov", "mvex"])),
            ["mehd", "trex", "trex"]
        );
        let (at, _) = w.duration_patch();
        assert_eq!(&init[at as usize - 8..at as usize - 4], b"mehd");
    }

    #[test]
    fn descriptor_sizes_use_seven_bit_groups() {
        let table: &[(usize, &[u8])] = &[
            (2, &[5, 2]),
            (127, &[5, 127]),
            (128, &[5, 0x81, 0]),
            (300, &[5, 0x82, 0x2c]),
        ];
        for (len, head) in table {
            let mut out = Vec::new();
            put_descriptor(&mut out, 5, &vec![0; *len]);
            assert_eq!(&out[..head.len()], *head, "length {len}");
            assert_eq!(out.len(), head.len() + len);
        }
    }

    #[test]
    fn fragments_start_at_keyframes_and_offsets_point_at_the_samples() {
        let mut w = writer();
        w.init_segment();
        let frame = |n: u8| Bytes::from(vec![n; 10 + usize::from(n)]);
        let mut fragments = Vec::new();
        // Two GOPs of three frames at 25 fps, audio frames between them.
        for i in 0..6u8 {
            let t = 1000 + u64::from(i) * 40;
            fragments.extend(w.push_video(t, 0, i % 3 == 0, frame(i)));
            fragments.extend(w.push_audio(t + 5, Bytes::from(vec![0xaa; 4])));
        }
        fragments.extend(w.finish());
        // The first keyframe closes nothing; the second closes the first GOP; finish the rest.
        assert_eq!(fragments.len(), 2);
        for (n, f) in fragments.iter().enumerate() {
            let top = top_boxes(f);
            assert_eq!(
                top.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                ["moof", "mdat"]
            );
            let traf = find(f, &["moof", "traf"]);
            assert_eq!(children(traf), ["tfhd", "tfdt", "trun"]);
            let trun = find(f, &["moof", "traf", "trun"]);
            let count = u32::from_be_bytes(trun[4..8].try_into().unwrap());
            assert_eq!(count, 3, "fragment {n}");
            let offset = i32::from_be_bytes(trun[8..12].try_into().unwrap()) as usize;
            let first_size = u32::from_be_bytes(trun[16..20].try_into().unwrap()) as usize;
            let first_flags = u32::from_be_bytes(trun[20..24].try_into().unwrap());
            assert_eq!(first_flags, SYNC, "fragment {n} opens on a keyframe");
            let want = frame(3 * n as u8);
            assert_eq!(&f[offset..offset + first_size], &want[..]);
            let tfdt = find(f, &["moof", "traf", "tfdt"]);
            let base = u64::from_be_bytes(tfdt[4..12].try_into().unwrap());
            assert_eq!(base, n as u64 * 3 * 40 * 90, "fragment {n} decode time");
        }
        // Six frames of 40 ms; the last audio frame ends 5 ms later.
        assert!(
            (240..=245).contains(&w.duration_ms()),
            "{}",
            w.duration_ms()
        );
    }

    #[test]
    fn audio_only_fragments_are_about_a_second() {
        let audio = AudioTrack {
            asc: Bytes::from_static(&[0x11, 0x90]),
            sample_rate: 48_000,
            channels: 2,
        };
        let mut w = Fmp4Writer::new(None, Some(audio), 0);
        let init = w.init_segment();
        assert_eq!(children(find(&init, &["moov"])), ["mvhd", "trak", "mvex"]);
        let mut fragments = 0;
        for i in 0..100u64 {
            fragments += usize::from(
                w.push_audio(i * 1024 * 1000 / 48_000, Bytes::from_static(&[1, 2]))
                    .is_some(),
            );
        }
        assert_eq!(fragments, 2, "100 frames of 21.3 ms");
    }
}
