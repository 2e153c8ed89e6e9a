//! A live stream's RTP packetizing, sans-IO: which tracks its decoder configurations give, one
//! access unit in, its RTP packets out.
//!
//! The input is what an FLV-carrying source says about a tag ([`Input`]: the codec, whether it is
//! a decoder configuration, the composition time and the payload), already parsed by the caller.
//! [`StreamPacketizer::new`] chooses the tracks (video first, then audio) from the stream's
//! decoder configurations and gives their SDP [`Codec`]s; [`StreamPacketizer::push`] turns one
//! input into one access unit's packets and says whether a receiver can start decoding there;
//! [`StreamPacketizer::fits`] says whether an input can still go to the described tracks (a
//! republished stream with another codec or audio clock cannot: its SDP no longer holds).
//!
//! Randomness (SSRC, first sequence number, timestamp offset) comes in through the caller's
//! [`TrackParams`]; nothing here reads the clock or logs.

use bytes::Bytes;
use codecs::NalError;
use rtp::aac::AacPacketizer;
use rtp::h264::H264Packetizer;
use rtp::h265::{H265Packetizer, H265ParameterSets};
use rtp::mpa::MpaPacketizer;
use rtp::{PacketWriter, TrackParams};

use crate::sdp::Codec;

/// The video codecs packetized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 (RFC 6184).
    H264,
    /// H.265 (RFC 7798).
    H265,
}

/// A video tag: a decoder configuration record or one access unit of length-prefixed NAL units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    /// The codec.
    pub codec: VideoCodec,
    /// True for a decoder configuration record (`avcC`, `hvcC`).
    pub sequence_header: bool,
    /// A random access point (keyframe).
    pub keyframe: bool,
    /// Composition time offset in milliseconds: PTS = timestamp + this.
    pub composition_time: i32,
    /// The configuration record or the length-prefixed NAL units.
    pub payload: Bytes,
}

/// An audio tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audio {
    /// An AAC AudioSpecificConfig.
    AacConfig(Bytes),
    /// One raw AAC access unit.
    AacFrame(Bytes),
    /// MPEG audio frames.
    Mp3(Bytes),
}

/// One tag of a stream, as the packetizer takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A video tag.
    Video(Video),
    /// An audio tag.
    Audio(Audio),
}

/// What [`StreamPacketizer::push`] made of an input that went to a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packetized {
    /// The track index (`trackID`).
    pub track: usize,
    /// A receiver can start decoding here: a video keyframe, or any audio unit of a stream
    /// without video.
    pub sync: bool,
    /// The track's SDP codec after a decoder configuration with other parameter sets.
    pub new_codec: Option<Codec>,
    /// The NAL framing error that cut the access unit short (it was sent up to the bad unit).
    pub bad_framing: Option<NalError>,
}

/// The packetizer of one track.
#[derive(Debug)]
enum Packetizer {
    /// With the NAL unit length size of its configuration record.
    H264(H264Packetizer, u8),
    H265(H265Packetizer, u8),
    Aac(AacPacketizer),
    Mpa(MpaPacketizer),
}

impl Packetizer {
    fn writer(&self) -> &PacketWriter {
        match self {
            Packetizer::H264(p, _) => p.writer(),
            Packetizer::H265(p, _) => p.writer(),
            Packetizer::Aac(p) => p.writer(),
            Packetizer::Mpa(p) => p.writer(),
        }
    }
}

/// The video track: its index, packetizer and the codec its SDP describes now.
#[derive(Debug)]
struct VideoTrack {
    index: usize,
    packetizer: Packetizer,
    codec: Codec,
}

/// The packetizers of one stream, indexed like its tracks (video first, then audio).
#[derive(Debug)]
pub struct StreamPacketizer {
    video: Option<VideoTrack>,
    audio: Option<(usize, Packetizer)>,
}

impl StreamPacketizer {
    /// Builds the tracks of a stream from its decoder configurations: a video track from an
    /// H.264 or H.265 configuration record (`video`, ignored unless a sequence header), then an
    /// audio track: MPEG audio when `is_mp3`, else AAC from an AudioSpecificConfig (`audio`).
    ///
    /// `params` gives each track's RTP constants (the caller's random SSRC, first sequence number
    /// and timestamp offset, and its MTU) for the track's payload type. Returns the packetizer and
    /// the tracks' codecs in track order; `None` when no track can be sent (no usable
    /// configuration, or an MTU the packetizers refuse).
    pub fn new(
        video: Option<&Video>,
        audio: Option<&Audio>,
        is_mp3: bool,
        mut params: impl FnMut(u8) -> TrackParams,
    ) -> Option<(StreamPacketizer, Vec<Codec>)> {
        let mut codecs = Vec::new();
        let mut p = StreamPacketizer {
            video: None,
            audio: None,
        };
        if let Some((codec, packetizer)) = video.and_then(|v| video_track(v, &mut params)) {
            p.video = Some(VideoTrack {
                index: codecs.len(),
                packetizer,
                codec: codec.clone(),
            });
            codecs.push(codec);
        }
        if let Some((codec, packetizer)) = audio_track(audio, is_mp3, &mut params) {
            p.audio = Some((codecs.len(), packetizer));
            codecs.push(codec);
        }
        if codecs.is_empty() {
            return None;
        }
        Some((p, codecs))
    }

    /// Whether the stream has a video track (otherwise every audio unit is a sync point).
    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }

    /// The RTP writer state of a track: its SSRC and timestamp offset ([`PacketWriter::params`]),
    /// packet and octet counts and next sequence number.
    pub fn writer(&self, track: usize) -> Option<&PacketWriter> {
        match (&self.video, &self.audio) {
            (Some(v), _) if v.index == track => Some(v.packetizer.writer()),
            (_, Some((i, p))) if *i == track => Some(p.writer()),
            _ => None,
        }
    }

    /// Packetizes one input with its decode timestamp in milliseconds, appending the packets of
    /// its access unit to `out` (nothing for a decoder configuration, an empty or oversized
    /// frame, or a codec the track does not carry). `None` when the input goes to no track.
    pub fn push(
        &mut self,
        timestamp_ms: i64,
        input: &Input,
        out: &mut Vec<Bytes>,
    ) -> Option<Packetized> {
        match input {
            Input::Video(v) => {
                let track = self.video.as_mut()?;
                let (new_codec, bad_framing) = video_unit(track, timestamp_ms, v, out);
                Some(Packetized {
                    track: track.index,
                    sync: v.keyframe && !v.sequence_header,
                    new_codec,
                    bad_framing,
                })
            }
            Input::Audio(a) => {
                let audio_only = self.video.is_none();
                let (track, packetizer) = self.audio.as_mut()?;
                let produced = match (packetizer, a) {
                    (Packetizer::Aac(pk), Audio::AacFrame(au)) => {
                        pk.packetize(timestamp_ms, au, out)
                    }
                    (Packetizer::Mpa(pk), Audio::Mp3(frame)) => {
                        pk.packetize(timestamp_ms, frame, out)
                    }
                    _ => false,
                };
                Some(Packetized {
                    track: *track,
                    sync: produced && audio_only,
                    new_codec: None,
                    bad_framing: None,
                })
            }
        }
    }

    /// Whether an input can go to the existing tracks: the same video codec, the same audio codec
    /// and AAC clock rate. A video configuration for a stream described without video, or an AAC
    /// configuration for one without audio, does not fit either; frames of a missing track do
    /// (they are dropped).
    pub fn fits(&self, input: &Input) -> bool {
        match input {
            Input::Video(v) => match &self.video {
                Some(t) => match t.packetizer {
                    Packetizer::H264(..) => v.codec == VideoCodec::H264,
                    Packetizer::H265(..) => v.codec == VideoCodec::H265,
                    _ => true,
                },
                None => !v.sequence_header,
            },
            Input::Audio(a) => match (a, &self.audio) {
                (Audio::AacConfig(c), Some((_, Packetizer::Aac(pk)))) => {
                    codecs::AudioSpecificConfig::parse(c)
                        .is_ok_and(|asc| asc.sampling_frequency == pk.clock_rate())
                }
                (Audio::AacConfig(_) | Audio::AacFrame(_), Some((_, Packetizer::Mpa(_)))) => false,
                (Audio::Mp3(_), Some((_, Packetizer::Aac(_)))) => false,
                (Audio::AacConfig(_), None) => false,
                _ => true,
            },
        }
    }
}

/// Packetizes a video input on its track, or takes its new parameter sets; returns the track's
/// new codec if they changed it, and a NAL framing error.
fn video_unit(
    track: &mut VideoTrack,
    ms: i64,
    v: &Video,
    out: &mut Vec<Bytes>,
) -> (Option<Codec>, Option<NalError>) {
    let pts = ms + i64::from(v.composition_time);
    let mut bad = None;
    let codec = match (&mut track.packetizer, v.sequence_header) {
        (Packetizer::H264(pk, len), true) => Codec::from_avcc(&v.payload).map(|(codec, n)| {
            *len = n;
            if let Codec::H264 { sps, pps } = &codec {
                pk.set_parameter_sets(sps.clone(), pps.clone());
            }
            codec
        }),
        (Packetizer::H265(pk, len), true) => Codec::from_hvcc(&v.payload).map(|(codec, n)| {
            *len = n;
            if let Some(sets) = h265_sets(&codec) {
                pk.set_parameter_sets(sets);
            }
            codec
        }),
        (Packetizer::H264(pk, len), false) => {
            pk.packetize(pts, &nals(&v.payload, *len, &mut bad), out);
            None
        }
        (Packetizer::H265(pk, len), false) => {
            pk.packetize(pts, &nals(&v.payload, *len, &mut bad), out);
            None
        }
        _ => None,
    };
    let new_codec = codec.filter(|c| *c != track.codec);
    if let Some(c) = &new_codec {
        track.codec = c.clone();
    }
    (new_codec, bad)
}

fn video_track(
    v: &Video,
    params: &mut impl FnMut(u8) -> TrackParams,
) -> Option<(Codec, Packetizer)> {
    if !v.sequence_header {
        return None;
    }
    match v.codec {
        VideoCodec::H264 => {
            let (codec, len) = Codec::from_avcc(&v.payload)?;
            let Codec::H264 { sps, pps } = &codec else {
                return None;
            };
            let p =
                H264Packetizer::new(params(codec.payload_type()), sps.clone(), pps.clone()).ok()?;
            Some((codec, Packetizer::H264(p, len)))
        }
        VideoCodec::H265 => {
            let (codec, len) = Codec::from_hvcc(&v.payload)?;
            let p = H265Packetizer::new(params(codec.payload_type()), h265_sets(&codec)?).ok()?;
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

fn audio_track(
    audio: Option<&Audio>,
    is_mp3: bool,
    params: &mut impl FnMut(u8) -> TrackParams,
) -> Option<(Codec, Packetizer)> {
    if is_mp3 {
        let p = MpaPacketizer::new(params(Codec::Mpa.payload_type())).ok()?;
        return Some((Codec::Mpa, Packetizer::Mpa(p)));
    }
    let Some(Audio::AacConfig(config)) = audio else {
        return None;
    };
    let codec = Codec::from_audio_specific_config(config.clone())?;
    let p = AacPacketizer::new(params(codec.payload_type()), codec.clock_rate()).ok()?;
    Some((codec, Packetizer::Aac(p)))
}

/// The NAL units of a sample; a malformed sample is cut at the bad unit (the next access unit is
/// independent), and the error kept in `bad`.
fn nals(payload: &Bytes, len: u8, bad: &mut Option<NalError>) -> Vec<Bytes> {
    let mut out = Vec::new();
    for nal in codecs::nal_units(payload, len) {
        match nal {
            Ok(n) => out.push(n),
            Err(e) => {
                *bad = Some(e);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtp::RtpPacketRef;

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x1f, 0xac];
    const PPS: &[u8] = &[0x68, 0xee, 0x3c, 0x80];
    /// AAC LC, 44.1 kHz, stereo.
    const ASC_44K: &[u8] = &[0x12, 0x10];
    /// AAC LC, 48 kHz, stereo.
    const ASC_48K: &[u8] = &[0x11, 0x90];
    const TS_OFFSET: u32 = 1_000;

    fn params(payload_type: u8) -> TrackParams {
        TrackParams {
            payload_type,
            ssrc: 0x1000 + u32::from(payload_type),
            initial_sequence: 65_534,
            timestamp_offset: TS_OFFSET,
            mtu: 1_400,
        }
    }

    fn avcc(sps: &[u8]) -> Bytes {
        codecs::AvcDecoderConfig {
            profile_indication: sps[1],
            profile_compatibility: sps[2],
            level_indication: sps[3],
            nal_length_size: 4,
            sps: vec![Bytes::copy_from_slice(sps)],
            pps: vec![Bytes::from_static(PPS)],
            ext: None,
        }
        .to_bytes()
    }

    /// An hvcC with one VPS, SPS and PPS and 4-byte NAL lengths, written by hand.
    fn hvcc() -> Bytes {
        let mut out = vec![1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93];
        out.extend_from_slice(&[0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f]);
        let sets: [(u8, &[u8]); 3] = [
            (32, &[0x40, 0x01, 0x0c]),
            (33, &[0x42, 0x01, 0x01]),
            (34, &[0x44, 0x01, 0xc1]),
        ];
        out.push(sets.len() as u8);
        for (kind, nal) in sets {
            out.push(0x80 | kind);
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            out.extend_from_slice(nal);
        }
        Bytes::from(out)
    }

    fn config(codec: VideoCodec, payload: Bytes) -> Video {
        Video {
            codec,
            sequence_header: true,
            keyframe: true,
            composition_time: 0,
            payload,
        }
    }

    /// A frame of length-prefixed (4 bytes) NAL units.
    fn frame(codec: VideoCodec, keyframe: bool, composition_time: i32, nals: &[&[u8]]) -> Input {
        let mut payload = Vec::new();
        for nal in nals {
            payload.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            payload.extend_from_slice(nal);
        }
        Input::Video(Video {
            codec,
            sequence_header: false,
            keyframe,
            composition_time,
            payload: Bytes::from(payload),
        })
    }

    fn aac(asc: &'static [u8]) -> Audio {
        Audio::AacConfig(Bytes::from_static(asc))
    }

    fn h264_aac() -> StreamPacketizer {
        let video = config(VideoCodec::H264, avcc(SPS));
        StreamPacketizer::new(Some(&video), Some(&aac(ASC_44K)), false, params)
            .expect("tracks")
            .0
    }

    fn parsed(packets: &[Bytes]) -> Vec<rtp::RtpHeader> {
        packets
            .iter()
            .map(|p| RtpPacketRef::parse(p).expect("an RTP packet").header)
            .collect()
    }

    #[test]
    fn tracks_from_decoder_configurations() {
        let h264 = config(VideoCodec::H264, avcc(SPS));
        let h265 = config(VideoCodec::H265, hvcc());
        let aac = aac(ASC_44K);
        let kinds = |video: Option<&Video>, audio: Option<&Audio>, mp3: bool| {
            StreamPacketizer::new(video, audio, mp3, params).map(|(p, codecs)| {
                let types: Vec<(u8, u8, u32)> = codecs
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let w = p.writer(i).expect("a writer per track");
                        (c.payload_type(), w.params().payload_type, c.clock_rate())
                    })
                    .collect();
                assert!(p.writer(codecs.len()).is_none());
                (p.has_video(), types)
            })
        };
        assert_eq!(
            kinds(Some(&h264), Some(&aac), false),
            Some((true, vec![(96, 96, 90_000), (97, 97, 44_100)]))
        );
        assert_eq!(
            kinds(None, Some(&aac), false),
            Some((false, vec![(97, 97, 44_100)]))
        );
        assert_eq!(
            kinds(Some(&h264), None, false),
            Some((true, vec![(96, 96, 90_000)]))
        );
        assert_eq!(
            kinds(Some(&h265), None, false),
            Some((true, vec![(96, 96, 90_000)]))
        );
        // MP3 needs no configuration, and an AAC one is not used for it.
        assert_eq!(
            kinds(Some(&h264), Some(&aac), true),
            Some((true, vec![(96, 96, 90_000), (14, 14, 90_000)]))
        );
        assert_eq!(
            kinds(None, None, true),
            Some((false, vec![(14, 14, 90_000)]))
        );
        assert_eq!(kinds(None, None, false), None);
        // A video frame is not a configuration; an unparsable record gives no track.
        let Input::Video(not_config) = frame(VideoCodec::H264, true, 0, &[&[0x65, 1]]) else {
            unreachable!()
        };
        assert_eq!(kinds(Some(&not_config), None, false), None);
        let bad = config(VideoCodec::H265, avcc(SPS));
        assert_eq!(
            kinds(Some(&bad), Some(&aac), false),
            Some((false, vec![(97, 97, 44_100)]))
        );

        let (_, codecs) = StreamPacketizer::new(Some(&h264), Some(&aac), false, params).unwrap();
        assert_eq!(
            codecs,
            [
                Codec::from_avcc(&avcc(SPS)).unwrap().0,
                Codec::from_audio_specific_config(Bytes::from_static(ASC_44K)).unwrap()
            ]
        );
        // An MTU the packetizers refuse gives no track.
        let tiny = |pt| TrackParams {
            mtu: 10,
            ..params(pt)
        };
        assert!(StreamPacketizer::new(Some(&h264), Some(&aac), false, tiny).is_none());
    }

    #[test]
    fn video_units_sync_on_keyframes_with_marker_and_90k_timestamps() {
        let mut p = h264_aac();
        let mut out = Vec::new();
        let big = [&[0x65][..], &[0xaa; 3000][..]].concat();
        let key = frame(
            VideoCodec::H264,
            true,
            80,
            &[&[0x09, 0xf0], &[0x06, 5, 1], &big],
        );
        let done = p.push(1_000, &key, &mut out).expect("the video track");
        assert_eq!(
            (done.track, done.sync, done.new_codec, done.bad_framing),
            (0, true, None, None)
        );
        let headers = parsed(&out);
        // STAP-A with SPS and PPS, the SEI, the IDR in three FU-As (the AUD is dropped).
        assert_eq!(headers.len(), 5, "{headers:?}");
        assert_eq!(RtpPacketRef::parse(&out[0]).unwrap().payload[0] & 0x1f, 24);
        let rtp_ts = TS_OFFSET + 1_080 * 90;
        for (i, h) in headers.iter().enumerate() {
            assert_eq!(h.payload_type, 96);
            assert_eq!(h.ssrc, 0x1000 + 96);
            assert_eq!(h.marker, i == headers.len() - 1, "packet {i}");
            assert_eq!(h.timestamp, rtp_ts);
            assert_eq!(h.sequence, 65_534u16.wrapping_add(i as u16));
        }
        let w = p.writer(0).unwrap();
        assert_eq!(w.next_sequence(), 65_534u16.wrapping_add(5));
        assert_eq!(w.counts().0, 5);
        assert_eq!(
            w.counts().1 as usize,
            out.iter().map(|p| p.len() - 12).sum::<usize>()
        );

        out.clear();
        let inter = frame(VideoCodec::H264, false, 0, &[&[0x41, 0x9a, 1, 2]]);
        let done = p.push(1_040, &inter, &mut out).unwrap();
        assert!(!done.sync);
        let headers = parsed(&out);
        assert_eq!(headers.len(), 1);
        assert!(headers[0].marker);
        assert_eq!(headers[0].timestamp, TS_OFFSET + 1_040 * 90);
        assert_eq!(headers[0].sequence, 3);

        // A configuration sends nothing and is no sync point.
        out.clear();
        let same = Input::Video(config(VideoCodec::H264, avcc(SPS)));
        let done = p.push(1_080, &same, &mut out).unwrap();
        assert!(!done.sync && done.new_codec.is_none() && out.is_empty());
    }

    #[test]
    fn audio_syncs_only_without_video_and_follows_its_clock() {
        let mut p = h264_aac();
        let mut out = Vec::new();
        let au = Input::Audio(Audio::AacFrame(Bytes::from_static(&[0x21; 300])));
        let done = p.push(0, &au, &mut out).expect("the audio track");
        assert_eq!((done.track, done.sync), (1, false));
        p.push(23, &au, &mut out).unwrap();
        let headers = parsed(&out);
        assert_eq!(headers.len(), 2);
        assert!(headers.iter().all(|h| h.marker && h.payload_type == 97));
        // Sample-exact: one 1024-sample frame apart although 23 ms is 1014 ticks at 44.1 kHz.
        assert_eq!(headers[0].timestamp, TS_OFFSET);
        assert_eq!(headers[1].timestamp, TS_OFFSET + 1_024);
        // An empty frame gives nothing; an MP3 frame is not for an AAC track.
        out.clear();
        let empty = Input::Audio(Audio::AacFrame(Bytes::new()));
        assert!(!p.push(46, &empty, &mut out).unwrap().sync);
        let mp3 = Input::Audio(Audio::Mp3(Bytes::from_static(&[0xff, 0xfb, 0x90, 0])));
        p.push(46, &mp3, &mut out).unwrap();
        assert!(out.is_empty());

        let (mut audio_only, _) =
            StreamPacketizer::new(None, Some(&aac(ASC_44K)), false, params).unwrap();
        let done = audio_only.push(0, &au, &mut out).unwrap();
        assert_eq!((done.track, done.sync), (0, true));
        assert!(!audio_only.push(0, &empty, &mut out).unwrap().sync);
        // Video goes to no track.
        let key = frame(VideoCodec::H264, true, 0, &[&[0x65, 1]]);
        assert!(audio_only.push(0, &key, &mut out).is_none());

        let (mut mp3_only, _) = StreamPacketizer::new(None, None, true, params).unwrap();
        out.clear();
        let done = mp3_only.push(40, &mp3, &mut out).unwrap();
        assert!(done.sync);
        let headers = parsed(&out);
        assert_eq!(headers.len(), 1);
        assert_eq!(
            (headers[0].payload_type, headers[0].timestamp),
            (14, TS_OFFSET + 40 * 90)
        );
    }

    #[test]
    fn new_parameter_sets_change_the_codec_and_go_in_band() {
        let mut p = h264_aac();
        let mut out = Vec::new();
        let sps2 = [0x67, 0x4d, 0x00, 0x28, 0xe8];
        let done = p
            .push(
                0,
                &Input::Video(config(VideoCodec::H264, avcc(&sps2))),
                &mut out,
            )
            .unwrap();
        assert_eq!(
            done.new_codec,
            Some(Codec::from_avcc(&avcc(&sps2)).unwrap().0)
        );
        assert!(out.is_empty());
        // Told once: the same record again changes nothing.
        let again = p
            .push(
                0,
                &Input::Video(config(VideoCodec::H264, avcc(&sps2))),
                &mut out,
            )
            .unwrap();
        assert_eq!(again.new_codec, None);
        // The next IDR carries the new SPS in its STAP-A.
        p.push(
            40,
            &frame(VideoCodec::H264, true, 0, &[&[0x65, 1]]),
            &mut out,
        );
        let stap = RtpPacketRef::parse(&out[0]).unwrap().payload;
        assert_eq!(&stap[3..3 + sps2.len()], &sps2);

        let (mut hevc, _) =
            StreamPacketizer::new(Some(&config(VideoCodec::H265, hvcc())), None, false, params)
                .unwrap();
        let done = hevc
            .push(0, &Input::Video(config(VideoCodec::H265, hvcc())), &mut out)
            .unwrap();
        assert_eq!(done.new_codec, None);
    }

    #[test]
    fn h265_units_and_bad_framing() {
        let (mut p, _) =
            StreamPacketizer::new(Some(&config(VideoCodec::H265, hvcc())), None, false, params)
                .unwrap();
        let mut out = Vec::new();
        // An IDR_W_RADL (type 19) picture: the VPS/SPS/PPS aggregation packet goes first.
        let done = p
            .push(
                0,
                &frame(VideoCodec::H265, true, 0, &[&[0x26, 0x01, 0xaf]]),
                &mut out,
            )
            .unwrap();
        assert!(done.sync);
        let headers = parsed(&out);
        assert_eq!(headers.len(), 2);
        assert_eq!(RtpPacketRef::parse(&out[0]).unwrap().payload[0] >> 1, 48);
        assert_eq!((headers[0].marker, headers[1].marker), (false, true));

        // A length prefix claiming more than the sample holds: the units before it still go.
        out.clear();
        let Input::Video(mut v) = frame(VideoCodec::H265, false, 0, &[&[0x02, 0x01, 0xd0]]) else {
            unreachable!()
        };
        v.payload = Bytes::from([&v.payload[..], &[0, 0, 0, 99, 0x02]].concat());
        let done = p.push(40, &Input::Video(v), &mut out).unwrap();
        assert!(matches!(
            done.bad_framing,
            Some(NalError::UnitTruncated { .. })
        ));
        assert_eq!(parsed(&out).len(), 1);
    }

    #[test]
    fn fits_refuses_other_codecs_and_audio_clocks() {
        let p = h264_aac();
        let key264 = frame(VideoCodec::H264, true, 0, &[&[0x65, 1]]);
        let key265 = frame(VideoCodec::H265, true, 0, &[&[0x26, 1]]);
        let aac_frame = Input::Audio(Audio::AacFrame(Bytes::from_static(&[1])));
        let mp3 = Input::Audio(Audio::Mp3(Bytes::from_static(&[0xff, 0xfb])));
        let cfg = |a| Input::Audio(aac(a));
        assert!(p.fits(&key264));
        assert!(p.fits(&Input::Video(config(
            VideoCodec::H264,
            avcc(&[0x67, 0x42, 0, 0x1e])
        ))));
        assert!(!p.fits(&key265));
        assert!(!p.fits(&Input::Video(config(VideoCodec::H265, hvcc()))));
        assert!(p.fits(&cfg(ASC_44K)));
        assert!(p.fits(&aac_frame));
        assert!(!p.fits(&cfg(ASC_48K)));
        assert!(!p.fits(&Input::Audio(Audio::AacConfig(Bytes::from_static(&[0xff])))));
        assert!(!p.fits(&mp3));

        let (mp3_stream, _) =
            StreamPacketizer::new(Some(&config(VideoCodec::H265, hvcc())), None, true, params)
                .unwrap();
        assert!(mp3_stream.fits(&mp3));
        assert!(mp3_stream.fits(&key265));
        assert!(!mp3_stream.fits(&key264));
        assert!(!mp3_stream.fits(&cfg(ASC_44K)));
        assert!(!mp3_stream.fits(&aac_frame));

        // A track the description lacks: a configuration does not fit, a frame is dropped.
        let (audio_only, _) =
            StreamPacketizer::new(None, Some(&aac(ASC_48K)), false, params).unwrap();
        assert!(!audio_only.fits(&Input::Video(config(VideoCodec::H264, avcc(SPS)))));
        assert!(audio_only.fits(&key264));
        assert!(audio_only.fits(&cfg(ASC_48K)));
        let (video_only, _) = StreamPacketizer::new(
            Some(&config(VideoCodec::H264, avcc(SPS))),
            None,
            false,
            params,
        )
        .unwrap();
        assert!(!video_only.fits(&cfg(ASC_44K)));
        assert!(video_only.fits(&aac_frame));
        assert!(video_only.fits(&mp3));
    }
}
