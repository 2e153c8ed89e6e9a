//! The SDP session description answered to DESCRIBE (RFC 4566, RFC 2326 Appendix C).

use bytes::Bytes;

use crate::base64::encode;

/// The codec of one track and the out-of-band parameters its SDP carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// H.264 with its parameter sets (RFC 6184 §8.2.1).
    H264 {
        /// Sequence parameter sets (NAL units without start codes).
        sps: Vec<Bytes>,
        /// Picture parameter sets.
        pps: Vec<Bytes>,
    },
    /// H.265 with its parameter sets (RFC 7798 §7.1).
    H265 {
        /// Video parameter sets.
        vps: Vec<Bytes>,
        /// Sequence parameter sets.
        sps: Vec<Bytes>,
        /// Picture parameter sets.
        pps: Vec<Bytes>,
    },
    /// AAC as mpeg4-generic AAC-hbr (RFC 3640 §3.3.6).
    Aac {
        /// The sampling rate, also the RTP clock rate.
        sample_rate: u32,
        /// The channel count.
        channels: u8,
        /// The AudioSpecificConfig bytes.
        config: Bytes,
    },
    /// MPEG audio (RFC 3551 §4.5.13, static payload type 14).
    Mpa,
}

/// The dynamic RTP payload type of the video track.
pub const VIDEO_PAYLOAD_TYPE: u8 = 96;
/// The dynamic RTP payload type of an AAC track.
pub const AAC_PAYLOAD_TYPE: u8 = 97;
/// MPEG audio's static payload type (RFC 3551 Table 4).
pub const MPA_PAYLOAD_TYPE: u8 = 14;
/// The RTP clock rate of video and of MPEG audio (RFC 3551 §4.5.13).
pub const CLOCK_RATE_90K: u32 = 90_000;

impl Codec {
    /// H.264 from an `avcC` decoder configuration record (ISO/IEC 14496-15 5.3.3), with the
    /// record's NAL unit length size the packetizer needs; `None` if it does not parse.
    pub fn from_avcc(record: &Bytes) -> Option<(Codec, u8)> {
        let cfg = codecs::AvcDecoderConfig::parse_bytes(record).ok()?;
        let codec = Codec::H264 {
            sps: cfg.sps,
            pps: cfg.pps,
        };
        Some((codec, cfg.nal_length_size))
    }

    /// H.265 from an `hvcC` record (ISO/IEC 14496-15 8.3.3): its VPS, SPS and PPS arrays, and
    /// the NAL unit length size; `None` if it does not parse.
    pub fn from_hvcc(record: &Bytes) -> Option<(Codec, u8)> {
        let cfg = codecs::HevcDecoderConfig::parse_bytes(record).ok()?;
        let of = |t| cfg.nals_of_type(t).cloned().collect();
        let codec = Codec::H265 {
            vps: of(32),
            sps: of(33),
            pps: of(34),
        };
        Some((codec, cfg.nal_length_size))
    }

    /// AAC from its AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1): sampling rate (the RTP
    /// clock) and channels (2 when the config leaves them to the stream); `None` if it does not
    /// parse.
    pub fn from_audio_specific_config(config: Bytes) -> Option<Codec> {
        let asc = codecs::AudioSpecificConfig::parse(&config).ok()?;
        Some(Codec::Aac {
            sample_rate: asc.sampling_frequency,
            channels: asc.channel_count().unwrap_or(2),
            config,
        })
    }

    /// The RTP payload type the gateway sends this codec with.
    pub fn payload_type(&self) -> u8 {
        match self {
            Codec::H264 { .. } | Codec::H265 { .. } => VIDEO_PAYLOAD_TYPE,
            Codec::Aac { .. } => AAC_PAYLOAD_TYPE,
            Codec::Mpa => MPA_PAYLOAD_TYPE,
        }
    }

    /// The RTP clock rate: 90 kHz, or the AAC sampling rate.
    pub fn clock_rate(&self) -> u32 {
        match self {
            Codec::Aac { sample_rate, .. } => *sample_rate,
            _ => CLOCK_RATE_90K,
        }
    }
}

/// One media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The codec and its parameters.
    pub codec: Codec,
    /// The RTP payload type.
    pub payload_type: u8,
    /// The control attribute, relative to Content-Base (e.g. `trackID=0`).
    pub control: String,
}

/// The whole presentation of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    /// The `s=` session name (the stream key).
    pub name: String,
    /// The `o=` session id, unique per stream.
    pub session_id: u64,
    /// The `o=` version, bumped when the description changes (a new publish).
    pub version: u64,
    /// The server's address for the `o=` line.
    pub origin_address: String,
    /// The tracks in order; the index is the `trackID`.
    pub tracks: Vec<Track>,
}

impl Presentation {
    /// A live stream's description: one track per codec in order, each with its payload type
    /// and `trackID=N` control (N its index).
    pub fn live(name: &str, session_id: u64, version: u64, codecs: Vec<Codec>) -> Presentation {
        Presentation {
            name: name.to_owned(),
            session_id,
            version,
            origin_address: "0.0.0.0".to_owned(),
            tracks: codecs
                .into_iter()
                .enumerate()
                .map(|(i, codec)| Track {
                    payload_type: codec.payload_type(),
                    codec,
                    control: format!("trackID={i}"),
                })
                .collect(),
        }
    }

    /// Writes the SDP text (CRLF line ends).
    pub fn to_sdp(&self) -> String {
        let ip = if self.origin_address.contains(':') {
            "IP6"
        } else {
            "IP4"
        };
        let mut lines = vec![
            "v=0".to_owned(),
            format!(
                "o=- {} {} IN {ip} {}",
                self.session_id, self.version, self.origin_address
            ),
            format!("s={}", session_name(&self.name)),
            "c=IN IP4 0.0.0.0".to_owned(),
            "t=0 0".to_owned(),
            "a=tool:media-gateway".to_owned(),
            "a=range:npt=now-".to_owned(),
            "a=control:*".to_owned(),
        ];
        for track in &self.tracks {
            track_lines(track, &mut lines);
        }
        let mut out = lines.join("\r\n");
        out.push_str("\r\n");
        out
    }
}

/// The `s=` text: the stream key comes from the publisher, and an SDP text field may not hold
/// CR, LF or NUL (RFC 4566 §9, `byte-string`); each becomes a space. An empty name is a single
/// space, as RFC 4566 §5.3 asks.
fn session_name(name: &str) -> String {
    let text: String = name
        .chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect();
    if text.is_empty() {
        " ".to_owned()
    } else {
        text
    }
}

fn join_b64(sets: &[Bytes]) -> String {
    sets.iter().map(|s| encode(s)).collect::<Vec<_>>().join(",")
}

fn track_lines(track: &Track, lines: &mut Vec<String>) {
    let pt = track.payload_type;
    let (media, rtpmap, fmtp) = match &track.codec {
        Codec::H264 { sps, pps } => {
            let mut fmtp = "packetization-mode=1".to_owned();
            // profile_idc, constraint flags, level_idc: bytes 1..4 of the SPS (RFC 6184 §8.1).
            if let Some(p) = sps.first().and_then(|s| s.get(1..4)) {
                fmtp.push_str(&format!(
                    ";profile-level-id={:02X}{:02X}{:02X}",
                    p[0], p[1], p[2]
                ));
            }
            if !sps.is_empty() {
                let all: Vec<Bytes> = sps.iter().chain(pps).cloned().collect();
                fmtp.push_str(&format!(";sprop-parameter-sets={}", join_b64(&all)));
            }
            ("video", "H264/90000".to_owned(), Some(fmtp))
        }
        Codec::H265 { vps, sps, pps } => {
            let fmtp = format!(
                "sprop-vps={};sprop-sps={};sprop-pps={}",
                join_b64(vps),
                join_b64(sps),
                join_b64(pps)
            );
            ("video", "H265/90000".to_owned(), Some(fmtp))
        }
        Codec::Aac {
            sample_rate,
            channels,
            config,
        } => {
            let hex: String = config.iter().map(|b| format!("{b:02X}")).collect();
            let fmtp = format!(
                "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={hex}"
            );
            (
                "audio",
                format!("mpeg4-generic/{sample_rate}/{channels}"),
                Some(fmtp),
            )
        }
        Codec::Mpa => ("audio", "MPA/90000".to_owned(), None),
    };
    lines.push(format!("m={media} 0 RTP/AVP {pt}"));
    lines.push(format!("a=rtpmap:{pt} {rtpmap}"));
    if let Some(fmtp) = fmtp {
        lines.push(format!("a=fmtp:{pt} {fmtp}"));
    }
    lines.push(format!("a=control:{}", track.control));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(tracks: Vec<Track>, want_media: &str) {
        let p = Presentation {
            name: "live/cam".into(),
            session_id: 42,
            version: 1,
            origin_address: "127.0.0.1".into(),
            tracks,
        };
        let head = "v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=live/cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=tool:media-gateway\r\na=range:npt=now-\r\na=control:*\r\n";
        assert_eq!(p.to_sdp(), format!("{head}{want_media}"));
    }

    fn track(codec: Codec, payload_type: u8, id: usize) -> Track {
        Track {
            codec,
            payload_type,
            control: format!("trackID={id}"),
        }
    }

    /// Found by the `sdp` fuzz target: a stream key holding a CR or LF split the `s=` line.
    #[test]
    fn session_name_stays_one_line() {
        for (name, want) in [
            ("a\rb\nc\0", "s=a b c "),
            ("", "s= "),
            ("live/cam", "s=live/cam"),
        ] {
            let p = Presentation {
                name: name.into(),
                session_id: 1,
                version: 1,
                origin_address: "127.0.0.1".into(),
                tracks: vec![],
            };
            let sdp = p.to_sdp();
            assert!(sdp.split("\r\n").any(|l| l == want), "{sdp:?}");
            assert_eq!(
                sdp.matches('\r').count(),
                sdp.matches('\n').count(),
                "{sdp:?}"
            );
        }
    }

    #[test]
    fn golden_table() {
        let h264 = Codec::H264 {
            sps: vec![Bytes::from_static(&[0x67, 0x64, 0x00, 0x1f, 0xac])],
            pps: vec![Bytes::from_static(&[0x68, 0xee, 0x3c, 0x80])],
        };
        let aac = Codec::Aac {
            sample_rate: 44_100,
            channels: 2,
            config: Bytes::from_static(&[0x12, 0x10]),
        };
        check(
            vec![track(h264, 96, 0), track(aac, 97, 1)],
            "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             a=fmtp:96 packetization-mode=1;profile-level-id=64001F;sprop-parameter-sets=Z2QAH6w=,aO48gA==\r\n\
             a=control:trackID=0\r\n\
             m=audio 0 RTP/AVP 97\r\na=rtpmap:97 mpeg4-generic/44100/2\r\n\
             a=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1210\r\n\
             a=control:trackID=1\r\n",
        );
        let h265 = Codec::H265 {
            vps: vec![Bytes::from_static(&[0x40, 1])],
            sps: vec![Bytes::from_static(&[0x42, 1])],
            pps: vec![Bytes::from_static(&[0x44, 1])],
        };
        check(
            vec![track(h265, 96, 0), track(Codec::Mpa, 14, 1)],
            "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps=QAE=;sprop-sps=QgE=;sprop-pps=RAE=\r\n\
             a=control:trackID=0\r\n\
             m=audio 0 RTP/AVP 14\r\na=rtpmap:14 MPA/90000\r\na=control:trackID=1\r\n",
        );
        check(vec![], "");
    }
}

#[cfg(test)]
mod from_config_tests {
    use super::*;

    /// An avcC with one SPS and one PPS, 4-byte NAL lengths.
    const AVCC: &[u8] = &[
        1, 0x64, 0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1E, 1, 0, 2, 0x68, 0xEE,
    ];

    #[test]
    fn a_live_description_from_decoder_configurations() {
        let (video, len) = Codec::from_avcc(&Bytes::from_static(AVCC)).expect("a valid avcC");
        assert_eq!(len, 4);
        let audio = Codec::from_audio_specific_config(Bytes::from_static(&[0x12, 0x10]))
            .expect("a valid AudioSpecificConfig");
        assert_eq!((audio.clock_rate(), video.clock_rate()), (44_100, 90_000));
        assert!(Codec::from_avcc(&Bytes::from_static(&[1, 2])).is_none());
        assert!(Codec::from_hvcc(&Bytes::from_static(AVCC)).is_none());
        let p = Presentation::live("live/cam", 7, 2, vec![video, audio, Codec::Mpa]);
        let controls: Vec<(&str, u8)> = p
            .tracks
            .iter()
            .map(|t| (t.control.as_str(), t.payload_type))
            .collect();
        assert_eq!(
            controls,
            [("trackID=0", 96), ("trackID=1", 97), ("trackID=2", 14)]
        );
        let sdp = p.to_sdp();
        assert!(sdp.contains("sprop-parameter-sets=Z2QAHg==,aO4="), "{sdp}");
        assert!(sdp.contains("a=rtpmap:97 mpeg4-generic/44100/2"), "{sdp}");
    }
}
