//! One RTP packetizer per stream: a task holding the stream's single bus [`Subscriber`] turns tags
//! into RTP packets once (through the sans-IO [`rtsp::packetize`] core, which [`flv_body`] feeds)
//! and fans them out over one [`bus::ring::Ring`] shared by every session of the stream, whose
//! replay keeps the packets since the last keyframe for sessions that start. What stays here is
//! the shell's part: the ring and its replay ([`Shared`]), the [`Registry`], the task (bus
//! subscriber, Sender Report timer, linger and retirement) and the randomness of each track.
//! The packetizer is the stream's [`bus::Remuxer`] of this type: the first DESCRIBE starts it and
//! it stops [`crate::Options::stream_linger`] after its last session. It reads the options once,
//! when it starts (MTU, ring size, Sender Report interval, linger), and keeps them for its life:
//! options replaced meanwhile apply to the packetizers that start after.
//!
//! Architecture Invariant: a session never packetizes or copies media; it receives `Arc`s of
//! [`MediaUnit`]s whose packets are `Bytes`, and at most prefixes its own 4-byte interleaved header.

use std::sync::{Arc, MutexGuard};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use bus::ring::{GopReplay, Reader, Replay, Ring, Role, Unit};
use bus::{Bus, Event, Linger, Protocol, Remuxer, Stream, Subscriber};
use bytes::Bytes;
use rtp::rtcp::SenderInfo;
use rtp::TrackParams;
use rtsp::packetize::{Input, StreamPacketizer};
use rtsp::sdp::{Codec, Presentation};
use tokio_util::sync::CancellationToken;

use crate::flv_body;
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
    gop: GopReplay<Arc<MediaUnit>>,
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
        if !self.audio_only && unit.kind != UnitKind::Rtcp {
            self.gop.record(unit);
        }
    }

    fn snapshot(&self, out: &mut Vec<Arc<MediaUnit>>) {
        self.gop.snapshot(out);
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
                let info = sender_info(shared, track, now)?;
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
    /// The shell's current options; a packetizer takes a snapshot of them when it starts.
    opts: Arc<ArcSwap<Options>>,
    shutdown: CancellationToken,
}

impl Registry {
    /// A registry over `bus`, starting packetizers with the options `opts` holds at the time.
    pub fn new(bus: Bus, opts: Arc<ArcSwap<Options>>, shutdown: CancellationToken) -> Self {
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

    /// The bus's client list, where a playing session is listed.
    pub fn clients(&self) -> &Arc<bus::clients::Clients> {
        self.bus.clients()
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
            // The packetizer's options for its whole life.
            let opts = self.opts.load_full();
            let (rtp, packetizer) = build(&stream, &opts)?;
            let sub = self.bus.subscribe(key, Protocol::Internal)?;
            tokio::spawn(run_stream(
                self.shutdown.clone(),
                opts,
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

fn random_params(payload_type: u8, mtu: usize) -> TrackParams {
    TrackParams {
        payload_type,
        ssrc: rand::random(),
        initial_sequence: rand::random(),
        timestamp_offset: rand::random(),
        mtu,
    }
}

/// Describes the stream from the bus's cached sequence headers and builds its packetizer.
fn build(stream: &Arc<Stream>, opts: &Options) -> Option<(Arc<StreamRtp>, StreamPacketizer)> {
    let video = stream
        .video_sequence_header()
        .and_then(|t| flv_body::video(&t));
    let audio = stream
        .audio_sequence_header()
        .and_then(|t| flv_body::audio(&t));
    let is_mp3 = stream.media_info().audio_codec.as_deref() == Some("mp3");
    let (packetizer, tracks) =
        StreamPacketizer::new(video.as_ref(), audio.as_ref(), is_mp3, |payload_type| {
            random_params(payload_type, opts.mtu)
        })?;
    let states = tracks
        .iter()
        .enumerate()
        .filter_map(|(track, codec)| {
            let w = packetizer.writer(track)?;
            Some(TrackState {
                clock: rtp::TrackClock {
                    ssrc: w.params().ssrc,
                    clock_rate: codec.clock_rate(),
                    timestamp_offset: w.params().timestamp_offset,
                    packets: 0,
                    octets: 0,
                },
                next_sequence: w.next_sequence(),
            })
        })
        .collect();
    let session_id = rand::random::<u32>().into();
    let presentation = Presentation::live(stream.key(), session_id, stream.generation(), tracks);
    let shared = Shared {
        presentation,
        tracks: states,
        // A GOP this long (minutes) is not worth replaying; new sessions wait for the next keyframe.
        gop: GopReplay::new(MAX_GOP_UNITS, usize::MAX, |_| 0),
        clock: rtp::MediaClock::default(),
        audio_only: !packetizer.has_video(),
    };
    let rtp = StreamRtp {
        key: stream.key().to_owned(),
        ring: Arc::new(Ring::new(opts.queue_units.max(16), shared)),
        ended: CancellationToken::new(),
    };
    Some((Arc::new(rtp), packetizer))
}

/// The packetizer task of one stream, with the options in force when it started.
async fn run_stream(
    shutdown: CancellationToken,
    opts: Arc<Options>,
    stream: Arc<Stream>,
    rtp: Arc<StreamRtp>,
    mut sub: Subscriber,
    mut p: StreamPacketizer,
) {
    let mut sr = tokio::time::interval(opts.sender_report_interval);
    let mut linger = Linger::new(opts.stream_linger);
    tracing::debug!(stream = %rtp.key, "RTP packetizer started");
    loop {
        tokio::select! {
            ev = sub.recv() => match ev {
                Some(Event::Tag(tag)) => {
                    let Some(input) = flv_body::input(&tag) else {
                        continue;
                    };
                    if !p.fits(&input) {
                        // A (re)publish with other codecs: the SDP no longer holds, so sessions end
                        // and clients DESCRIBE again. Same codecs carry on, new parameter sets in-band.
                        tracing::info!(stream = %rtp.key, "stream codecs changed; ending RTSP sessions");
                        break;
                    }
                    on_input(&rtp, &mut p, tag.timestamp as i64, &input);
                }
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
                    tracing::debug!(stream = %rtp.key, "RTP packetizer idle; stopped");
                    return;
                }
            }
            _ = shutdown.cancelled() => break,
        }
    }
    rtp.ended.cancel();
    stream.retire_remuxer(&rtp, |_| true);
    tracing::debug!(stream = %rtp.key, "RTP packetizer ended");
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

/// Packetizes one tag and sends its access unit to the ring; a new video configuration updates
/// the SDP.
fn on_input(rtp: &StreamRtp, p: &mut StreamPacketizer, ms: i64, input: &Input) {
    let mut packets = Vec::new();
    let Some(done) = p.push(ms, input, &mut packets) else {
        return;
    };
    if let Some(e) = &done.bad_framing {
        // A malformed sample is skipped from the bad NAL on; the next access unit is independent.
        tracing::debug!(stream = %rtp.key, error = %e, "bad NAL framing in video tag");
    }
    if let Some(codec) = done.new_codec {
        update_sdp(rtp, done.track, codec);
    }
    if packets.is_empty() {
        return;
    }
    let unit = Arc::new(MediaUnit {
        track: done.track,
        kind: UnitKind::Rtp { sync: done.sync },
        packets,
    });
    let mut shared = rtp.lock();
    shared.clock.observe(SystemTime::now(), ms);
    if let (Some(t), Some(w)) = (shared.tracks.get_mut(done.track), p.writer(done.track)) {
        (t.clock.packets, t.clock.octets) = w.counts();
        t.next_sequence = w.next_sequence();
    }
    rtp.ring.send_locked(&mut shared, unit);
}

/// A track's new parameter sets go into the SDP that later DESCRIBEs answer.
fn update_sdp(rtp: &StreamRtp, track: usize, codec: Codec) {
    if let Some(t) = rtp.lock().presentation.tracks.get_mut(track) {
        t.codec = codec;
    }
}

/// The most units kept for starting sessions (about 80 s of 25 fps video with audio).
const MAX_GOP_UNITS: usize = 4096;
