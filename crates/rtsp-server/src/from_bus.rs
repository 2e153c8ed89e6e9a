//! One RTP packetizer per stream: a task holding the stream's single bus [`Subscriber`] turns tags
//! into RTP packets once and fans them out over one [`bus::ring::Ring`] shared by every session of
//! the stream, whose replay keeps the packets since the last keyframe for sessions that start.
//! The packetizer is the stream's [`bus::Remuxer`] of this type: the first DESCRIBE starts it and
//! it stops [`crate::Options::stream_linger`] after its last session.
//!
//! Architecture Invariant: a session never packetizes or copies media; it receives `Arc`s of
//! [`MediaUnit`]s whose packets are `Bytes`, and at most prefixes its own 4-byte interleaved header.

use std::sync::{Arc, MutexGuard};
use std::time::{Instant, SystemTime};

use bus::ring::{Reader, Replay, Ring, Role, Unit};
use bus::{Bus, Event, Linger, Protocol, Remuxer, Stream, Subscriber, Tag, TagKind};
use bytes::Bytes;
use rtp::aac::AacPacketizer;
use rtp::h264::H264Packetizer;
use rtp::h265::{H265Packetizer, H265ParameterSets};
use rtp::mpa::MpaPacketizer;
use rtp::rtcp::SenderInfo;
use rtp::TrackParams;
use rtsp::sdp::{Codec, Presentation, AAC_PAYLOAD_TYPE, VIDEO_PAYLOAD_TYPE};
use tokio_util::sync::CancellationToken;

use crate::flv_body::{self, AudioBody, VideoCodec};
use crate::Options;

/// The CNAME every track of this gateway reports (RFC 3550 §6.5.1 only asks that it be stable).
pub const CNAME: &str = "media-gateway";

/// What a [`MediaUnit`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// RTP packets of one access unit; `sync` when a receiver can start decoding here.
    Rtp {
        /// A video keyframe (or any audio unit of an audio-only stream).
        sync: bool,
    },
    /// A compound RTCP packet (Sender Report + SDES) for the track.
    Rtcp,
}

/// One access unit's RTP packets (or one RTCP packet) for one track, shared by every session.
#[derive(Debug)]
pub struct MediaUnit {
    /// The track index (`trackID`).
    pub track: usize,
    /// RTP or RTCP.
    pub kind: UnitKind,
    /// Complete packets, in order.
    pub packets: Vec<Bytes>,
}

impl Unit for MediaUnit {
    fn role(&self) -> Role {
        match self.kind {
            UnitKind::Rtp { sync: true } => Role::Sync,
            UnitKind::Rtp { sync: false } => Role::Media,
            UnitKind::Rtcp => Role::Control,
        }
    }
}

impl MediaUnit {
    /// Returns (sequence, timestamp) of the first RTP packet.
    pub fn first_rtp(&self) -> Option<(u16, u32)> {
        let p = rtp::RtpPacketRef::parse(self.packets.first()?).ok()?;
        Some((p.header.sequence, p.header.timestamp))
    }
}

/// What the shell needs to know about a track outside the packetizer task.
#[derive(Debug, Clone)]
struct TrackState {
    clock: rtp::TrackClock,
    next_sequence: u16,
}

/// The mutable state of a stream's packetizer, shared with sessions: the replay of its ring.
#[derive(Debug)]
pub struct Shared {
    presentation: Presentation,
    tracks: Vec<TrackState>,
    /// Units since the last video keyframe, for sessions that start.
    gop: Vec<Arc<MediaUnit>>,
    /// The single media-to-wall-clock mapping of every track, so that receivers can
    /// synchronise audio and video from the Sender Reports.
    clock: rtp::MediaClock,
    /// No video track: any unit starts, and no GOP is kept.
    audio_only: bool,
}

/// Keeps the units since the last keyframe (an audio-only stream keeps nothing: any unit starts).
/// Sessions build their own start from it ([`StreamRtp::play`]).
impl Replay<Arc<MediaUnit>> for Shared {
    fn record(&mut self, unit: &Arc<MediaUnit>) {
        let sync = unit.kind == (UnitKind::Rtp { sync: true });
        if self.audio_only || unit.kind == UnitKind::Rtcp {
            return;
        }
        if sync {
            self.gop.clear();
        }
        if self.gop.len() >= MAX_GOP_UNITS {
            // A GOP this long (minutes) is not worth replaying; new sessions wait for the next keyframe.
            self.gop.clear();
            return;
        }
        if !self.gop.is_empty() || sync {
            self.gop.push(Arc::clone(unit));
        }
    }

    fn snapshot(&self, out: &mut Vec<Arc<MediaUnit>>) {
        out.extend(self.gop.iter().cloned());
    }
}

/// A session's reader of its stream's units.
pub type UnitReader = Reader<Arc<MediaUnit>, Shared>;

/// The RTP side of one bus stream.
#[derive(Debug)]
pub struct StreamRtp {
    key: String,
    ring: Arc<Ring<Arc<MediaUnit>, Shared>>,
    /// Cancelled when the stream ends (unpublished, removed, or its codecs changed).
    pub ended: CancellationToken,
}

impl Remuxer for StreamRtp {
    fn ended(&self) -> bool {
        self.ended.is_cancelled()
    }
}

impl StreamRtp {
    /// The bus key.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.ring.replay()
    }

    /// The SDP description.
    pub fn presentation(&self) -> Presentation {
        self.lock().presentation.clone()
    }

    /// The number of tracks.
    pub fn track_count(&self) -> usize {
        self.lock().tracks.len()
    }

    /// The SSRC of a track.
    pub fn ssrc(&self, track: usize) -> Option<u32> {
        self.lock().tracks.get(track).map(|t| t.clock.ssrc)
    }

    /// Starts a playback: the GOP snapshot and the live receiver are taken atomically.
    ///
    /// The snapshot opens with a Sender Report per track. Receivers then map every track to the
    /// wall clock from their first packet on: ffmpeg otherwise aligns the tracks' first packets
    /// until the first SR arrives, and a video keyframe's PTS lies a few frames (its composition
    /// offset) after the audio that follows it, so its timestamps would step back at that SR.
    /// Returns the session's reader (`label` names it in logs) and the RTP-Info of each track:
    /// (track, sequence, rtptime) of the first packet it will send.
    pub fn play(&self, label: String, tracks: &[usize]) -> (UnitReader, Vec<rtsp::RtpInfo>) {
        self.ring.open(label, |shared| start_of(shared, tracks))
    }
}

/// A starting session's first units (a Sender Report per track, then the GOP) and RTP-Info.
fn start_of(shared: &Shared, tracks: &[usize]) -> (Vec<Arc<MediaUnit>>, Vec<rtsp::RtpInfo>) {
    {
        let now = SystemTime::now();
        let mut snapshot: Vec<Arc<MediaUnit>> = tracks
            .iter()
            .filter_map(|&track| {
                let info = sender_info(&shared, track, now)?;
                let packets = vec![rtp::rtcp::sender_report(&info, CNAME)];
                Some(Arc::new(MediaUnit {
                    track,
                    kind: UnitKind::Rtcp,
                    packets,
                }))
            })
            .collect();
        shared.snapshot(&mut snapshot);
        let rtp_info = tracks
            .iter()
            .filter_map(|&track| {
                let first = snapshot
                    .iter()
                    .filter(|u| u.track == track && u.kind != UnitKind::Rtcp)
                    .find_map(|u| u.first_rtp());
                let (sequence, rtp_timestamp) = match first {
                    Some(f) => f,
                    None => {
                        let t = shared.tracks.get(track)?;
                        (
                            t.next_sequence,
                            shared.clock.rtp_time_at(&t.clock, SystemTime::now()),
                        )
                    }
                };
                Some(rtsp::RtpInfo {
                    track,
                    sequence,
                    rtp_timestamp,
                })
            })
            .collect();
        (snapshot, rtp_info)
    }
}

impl StreamRtp {
    /// The sender information of a track at `now`, for Sender Reports and BYE.
    pub fn sender_info(&self, track: usize, now: SystemTime) -> Option<SenderInfo> {
        sender_info(&self.lock(), track, now)
    }
}

fn sender_info(shared: &Shared, track: usize, now: SystemTime) -> Option<SenderInfo> {
    let t = shared.tracks.get(track)?;
    Some(shared.clock.sender_info(&t.clock, now))
}

/// Finds and starts the packetizers of streams (each one is its stream's [`bus::Remuxer`]).
#[derive(Debug, Clone)]
pub struct Registry {
    bus: Bus,
    opts: Arc<Options>,
    shutdown: CancellationToken,
}

impl Registry {
    /// A registry over `bus`.
    pub fn new(bus: Bus, opts: Arc<Options>, shutdown: CancellationToken) -> Self {
        Registry {
            bus,
            opts,
            shutdown,
        }
    }

    /// The session table of a bus stream, for the stats API; `None` once the stream is gone.
    pub fn session_table(&self, key: &str) -> Option<Arc<crate::session::SessionTable>> {
        Some(
            self.bus
                .stream(key)?
                .attachment(crate::session::SessionTable::default),
        )
    }

    /// The bus stream of `key` if a publisher is on it now.
    pub fn live_stream(&self, key: &str) -> Option<Arc<Stream>> {
        self.bus.stream(key).filter(|s| s.is_live())
    }

    /// Returns the packetizer of a live stream, starting it if needed; `None` if the stream is not
    /// live or has no track this server can send.
    pub fn get(&self, key: &str) -> Option<Arc<StreamRtp>> {
        let stream = self.live_stream(key)?;
        let start = || {
            if !is_ready(&stream) {
                return None;
            }
            let (rtp, packetizer) = build(&stream, &self.opts)?;
            let sub = self.bus.subscribe(key, Protocol::Internal)?;
            tokio::spawn(run_stream(
                self.clone(),
                Arc::clone(&stream),
                Arc::clone(&rtp),
                sub,
                packetizer,
            ));
            Some(rtp)
        };
        stream.join_remuxer(start, Arc::clone)
    }
}

/// Whether a live stream can be described: it has sent a frame, so the sequence headers the
/// publisher sends before its first frames are in (described earlier, a stream whose audio header
/// came first would be presented without its video track for as long as it lives).
pub fn is_ready(stream: &Stream) -> bool {
    stream.has_frames()
}

/// The packetizer of one track.
enum Packetizer {
    H264(H264Packetizer, u8),
    H265(H265Packetizer, u8),
    Aac(AacPacketizer),
    Mpa(MpaPacketizer),
}

impl Packetizer {
    fn writer(&self) -> &rtp::PacketWriter {
        match self {
            Packetizer::H264(p, _) => p.writer(),
            Packetizer::H265(p, _) => p.writer(),
            Packetizer::Aac(p) => p.writer(),
            Packetizer::Mpa(p) => p.writer(),
        }
    }
}

/// The packetizers of a stream, indexed like its tracks.
struct Packetizers {
    video: Option<(usize, Packetizer)>,
    audio: Option<(usize, Packetizer)>,
}

fn random_params(payload_type: u8, mtu: usize) -> TrackParams {
    TrackParams {
        payload_type,
        ssrc: rand::random(),
        initial_sequence: rand::random(),
        timestamp_offset: rand::random(),
        mtu,
    }
}

/// Describes the stream from the bus's cached sequence headers and builds its packetizers.
fn build(stream: &Arc<Stream>, opts: &Options) -> Option<(Arc<StreamRtp>, Packetizers)> {
    let mut tracks = Vec::new();
    let mut states = Vec::new();
    let mut p = Packetizers {
        video: None,
        audio: None,
    };
    if let Some((codec, packetizer)) = stream
        .video_sequence_header()
        .and_then(|t| video_track(&t, opts.mtu))
    {
        p.video = Some((tracks.len(), packetizer));
        tracks.push(codec);
    }
    let audio_header = stream.audio_sequence_header();
    let is_mp3 = stream.media_info().audio_codec.as_deref() == Some("mp3");
    if let Some((codec, packetizer)) = audio_track(audio_header.as_ref(), is_mp3, opts.mtu) {
        p.audio = Some((tracks.len(), packetizer));
        tracks.push(codec);
    }
    let packetizers = [p.video.as_ref(), p.audio.as_ref()]
        .into_iter()
        .flatten()
        .map(|(_, pk)| pk);
    for (codec, packetizer) in tracks.iter().zip(packetizers) {
        let w = packetizer.writer();
        states.push(TrackState {
            clock: rtp::TrackClock {
                ssrc: w.params().ssrc,
                clock_rate: codec.clock_rate(),
                timestamp_offset: w.params().timestamp_offset,
                packets: 0,
                octets: 0,
            },
            next_sequence: w.next_sequence(),
        });
    }
    if tracks.is_empty() {
        return None;
    }
    let session_id = rand::random::<u32>().into();
    let presentation = Presentation::live(stream.key(), session_id, stream.generation(), tracks);
    let shared = Shared {
        presentation,
        tracks: states,
        gop: Vec::new(),
        clock: rtp::MediaClock::default(),
        audio_only: p.video.is_none(),
    };
    let rtp = StreamRtp {
        key: stream.key().to_owned(),
        ring: Arc::new(Ring::new(opts.queue_units.max(16), shared)),
        ended: CancellationToken::new(),
    };
    Some((Arc::new(rtp), p))
}

fn video_track(tag: &Tag, mtu: usize) -> Option<(Codec, Packetizer)> {
    let body = flv_body::video(tag).filter(|b| b.sequence_header)?;
    let params = random_params(VIDEO_PAYLOAD_TYPE, mtu);
    match body.codec {
        VideoCodec::H264 => {
            let (codec, len) = Codec::from_avcc(&body.payload)?;
            let Codec::H264 { sps, pps } = &codec else {
                return None;
            };
            let p = H264Packetizer::new(params, sps.clone(), pps.clone()).ok()?;
            Some((codec, Packetizer::H264(p, len)))
        }
        VideoCodec::H265 => {
            let (codec, len) = Codec::from_hvcc(&body.payload)?;
            let p = H265Packetizer::new(params, h265_sets(&codec)?).ok()?;
            Some((codec, Packetizer::H265(p, len)))
        }
    }
}

/// The parameter sets of an H.265 codec, as its packetizer takes them.
fn h265_sets(codec: &Codec) -> Option<H265ParameterSets> {
    let Codec::H265 { vps, sps, pps } = codec else {
        return None;
    };
    Some(H265ParameterSets {
        vps: vps.clone(),
        sps: sps.clone(),
        pps: pps.clone(),
    })
}

fn audio_track(header: Option<&Tag>, is_mp3: bool, mtu: usize) -> Option<(Codec, Packetizer)> {
    if is_mp3 {
        let p = MpaPacketizer::new(random_params(rtp::mpa::PAYLOAD_TYPE, mtu)).ok()?;
        return Some((Codec::Mpa, Packetizer::Mpa(p)));
    }
    let Some(AudioBody::AacConfig(config)) = header.and_then(flv_body::audio) else {
        return None;
    };
    let codec = Codec::from_audio_specific_config(config)?;
    let p = AacPacketizer::new(random_params(AAC_PAYLOAD_TYPE, mtu), codec.clock_rate()).ok()?;
    Some((codec, Packetizer::Aac(p)))
}

/// The packetizer task of one stream.
async fn run_stream(
    registry: Registry,
    stream: Arc<Stream>,
    rtp: Arc<StreamRtp>,
    mut sub: Subscriber,
    mut p: Packetizers,
) {
    let opts = Arc::clone(&registry.opts);
    let mut sr = tokio::time::interval(opts.sender_report_interval);
    let mut linger = Linger::new(opts.stream_linger);
    tracing::debug!(stream = %rtp.key, "rtp packetizer started");
    loop {
        tokio::select! {
            ev = sub.recv() => match ev {
                Some(Event::Tag(tag)) if !fits(&p, &tag) => {
                    // A (re)publish with other codecs: the SDP no longer holds, so sessions end and
                    // clients DESCRIBE again. Same codecs carry on, new parameter sets in-band.
                    tracing::info!(stream = %rtp.key, "stream codecs changed; ending RTSP sessions");
                    break;
                }
                Some(Event::Tag(tag)) => on_tag(&rtp, &mut p, &tag),
                Some(_) => {}
                None => break,
            },
            _ = sr.tick() => {
                send_sender_reports(&rtp);
                // Connections hold the packetizer from DESCRIBE on, before they read from it;
                // the stream's slot and this task hold the other two references.
                let idle = |r: &StreamRtp| r.ring.readers() == 0;
                if linger.expired(rtp.ring.readers() > 0, Instant::now())
                    && stream.retire_remuxer(&rtp, |r| idle(r) && Arc::strong_count(&rtp) <= 2)
                {
                    tracing::debug!(stream = %rtp.key, "rtp packetizer idle; stopped");
                    return;
                }
            }
            _ = registry.shutdown.cancelled() => break,
        }
    }
    rtp.ended.cancel();
    stream.retire_remuxer(&rtp, |_| true);
    tracing::debug!(stream = %rtp.key, "rtp packetizer ended");
}

fn send_sender_reports(rtp: &StreamRtp) {
    if rtp.ring.readers() == 0 {
        return;
    }
    let now = SystemTime::now();
    for track in 0..rtp.track_count() {
        if let Some(info) = rtp.sender_info(track, now) {
            let packets = vec![rtp::rtcp::sender_report(&info, CNAME)];
            rtp.ring.send(Arc::new(MediaUnit {
                track,
                kind: UnitKind::Rtcp,
                packets,
            }));
        }
    }
}

fn on_tag(rtp: &StreamRtp, p: &mut Packetizers, tag: &Tag) {
    let ms = tag.timestamp as i64;
    let audio_only = p.video.is_none();
    let (track, packetizer) = match tag.kind {
        TagKind::Video => match p.video.as_mut() {
            Some((t, pk)) => (*t, pk),
            None => return,
        },
        TagKind::Audio => match p.audio.as_mut() {
            Some((t, pk)) => (*t, pk),
            None => return,
        },
        TagKind::Script => return,
    };
    let mut packets = Vec::new();
    let sync = match tag.kind {
        TagKind::Video => video_tag(packetizer, tag, &mut packets, rtp),
        _ => audio_tag(packetizer, ms, tag, &mut packets) && audio_only,
    };
    if packets.is_empty() {
        return;
    }
    let unit = Arc::new(MediaUnit {
        track,
        kind: UnitKind::Rtp { sync },
        packets,
    });
    let mut shared = rtp.lock();
    shared.clock.observe(SystemTime::now(), ms);
    if let Some(t) = shared.tracks.get_mut(track) {
        let w = packetizer.writer();
        (t.clock.packets, t.clock.octets) = w.counts();
        t.next_sequence = w.next_sequence();
    }
    rtp.ring.send_locked(&mut shared, unit);
}

/// The most units kept for starting sessions (about 80 s of 25 fps video with audio).
const MAX_GOP_UNITS: usize = 4096;

/// Packetizes a video tag; returns whether it is a keyframe.
fn video_tag(p: &mut Packetizer, tag: &Tag, out: &mut Vec<Bytes>, rtp: &StreamRtp) -> bool {
    let Some(body) = flv_body::video(tag) else {
        return false;
    };
    let pts = tag.timestamp as i64 + i64::from(body.composition_time);
    match (p, body.sequence_header) {
        (Packetizer::H264(pk, len), true) => {
            if let Some((codec, n)) = Codec::from_avcc(&body.payload) {
                *len = n;
                if let Codec::H264 { sps, pps } = &codec {
                    pk.set_parameter_sets(sps.clone(), pps.clone());
                }
                update_sdp(rtp, codec);
            }
        }
        (Packetizer::H265(pk, len), true) => {
            if let Some((codec, n)) = Codec::from_hvcc(&body.payload) {
                *len = n;
                if let Some(sets) = h265_sets(&codec) {
                    pk.set_parameter_sets(sets);
                }
                update_sdp(rtp, codec);
            }
        }
        (Packetizer::H264(pk, len), false) => {
            pk.packetize(pts, &nals(&body.payload, *len, &rtp.key), out)
        }
        (Packetizer::H265(pk, len), false) => {
            pk.packetize(pts, &nals(&body.payload, *len, &rtp.key), out)
        }
        _ => {}
    }
    tag.keyframe && !body.sequence_header
}

fn update_sdp(rtp: &StreamRtp, codec: Codec) {
    let mut shared = rtp.lock();
    if let Some(t) = shared
        .presentation
        .tracks
        .iter_mut()
        .find(|t| matches!(t.codec, Codec::H264 { .. } | Codec::H265 { .. }))
    {
        t.codec = codec;
    }
}

fn nals(payload: &Bytes, len: u8, key: &str) -> Vec<Bytes> {
    let mut out = Vec::new();
    for nal in codecs::nal_units(payload, len) {
        match nal {
            Ok(n) => out.push(n),
            Err(e) => {
                // A malformed sample is skipped from the bad NAL on; the next access unit is independent.
                tracing::debug!(stream = %key, error = %e, "bad NAL framing in video tag");
                break;
            }
        }
    }
    out
}

/// Returns whether a tag can go to the stream's existing tracks (same codec, same audio clock).
fn fits(p: &Packetizers, tag: &Tag) -> bool {
    match tag.kind {
        TagKind::Video => match (flv_body::video(tag), &p.video) {
            (Some(b), Some((_, Packetizer::H264(..)))) => b.codec == VideoCodec::H264,
            (Some(b), Some((_, Packetizer::H265(..)))) => b.codec == VideoCodec::H265,
            (Some(b), None) => !b.sequence_header,
            _ => true,
        },
        TagKind::Audio => match (flv_body::audio(tag), &p.audio) {
            (Some(AudioBody::AacConfig(c)), Some((_, Packetizer::Aac(pk)))) => {
                codecs::AudioSpecificConfig::parse(&c)
                    .is_ok_and(|asc| asc.sampling_frequency == pk.clock_rate())
            }
            (
                Some(AudioBody::AacConfig(_) | AudioBody::AacFrame(_)),
                Some((_, Packetizer::Mpa(_))),
            ) => false,
            (Some(AudioBody::Mp3(_)), Some((_, Packetizer::Aac(_)))) => false,
            (Some(AudioBody::AacConfig(_)), None) => false,
            _ => true,
        },
        TagKind::Script => true,
    }
}

/// Packetizes an audio tag; returns whether packets were produced.
fn audio_tag(p: &mut Packetizer, ms: i64, tag: &Tag, out: &mut Vec<Bytes>) -> bool {
    match (p, flv_body::audio(tag)) {
        (Packetizer::Aac(pk), Some(AudioBody::AacFrame(au))) => pk.packetize(ms, &au, out),
        (Packetizer::Mpa(pk), Some(AudioBody::Mp3(frame))) => pk.packetize(ms, &frame, out),
        _ => false,
    }
}
