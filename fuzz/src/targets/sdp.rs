//! The SDP answered to DESCRIBE, built from what a publisher controls: the stream key (the
//! `s=` line) and the parameter sets and AudioSpecificConfig of its sequence headers. Whatever
//! they hold, the description must stay line-structured: CRLF line ends only, every line
//! `<letter>=...`, one `m=` section per track.

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use rtsp::sdp::{Codec, Presentation, Track};

#[derive(Debug, Arbitrary)]
enum ArbCodec {
    H264 {
        sps: Vec<Vec<u8>>,
        pps: Vec<Vec<u8>>,
    },
    H265 {
        vps: Vec<Vec<u8>>,
        sps: Vec<Vec<u8>>,
        pps: Vec<Vec<u8>>,
    },
    Aac {
        sample_rate: u32,
        channels: u8,
        config: Vec<u8>,
    },
    Mpa,
}

#[derive(Debug, Arbitrary)]
struct Input {
    name: String,
    session_id: u64,
    version: u64,
    ipv6: bool,
    tracks: Vec<(ArbCodec, u8)>,
}

fn sets(v: Vec<Vec<u8>>) -> Vec<Bytes> {
    v.into_iter().map(Bytes::from).collect()
}

pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let tracks: Vec<Track> = input
        .tracks
        .into_iter()
        .take(rtsp::session::MAX_TRACK_ID + 1)
        .enumerate()
        .map(|(i, (codec, pt))| Track {
            codec: match codec {
                ArbCodec::H264 { sps, pps } => Codec::H264 {
                    sps: sets(sps),
                    pps: sets(pps),
                },
                ArbCodec::H265 { vps, sps, pps } => Codec::H265 {
                    vps: sets(vps),
                    sps: sets(sps),
                    pps: sets(pps),
                },
                ArbCodec::Aac {
                    sample_rate,
                    channels,
                    config,
                } => Codec::Aac {
                    sample_rate,
                    channels,
                    config: Bytes::from(config),
                },
                ArbCodec::Mpa => Codec::Mpa,
            },
            payload_type: 96 + pt % 32,
            control: format!("trackID={i}"),
        })
        .collect();
    let n = tracks.len();
    let p = Presentation {
        name: input.name,
        session_id: input.session_id,
        version: input.version,
        origin_address: if input.ipv6 { "::1" } else { "127.0.0.1" }.to_owned(),
        tracks,
    };
    let sdp = p.to_sdp();
    super::rtsp::check_crlf(sdp.as_bytes(), "SDP");
    let lines: Vec<&str> = sdp.trim_end_matches("\r\n").split("\r\n").collect();
    for line in &lines {
        let b = line.as_bytes();
        assert!(
            b.len() >= 2 && b[0].is_ascii_lowercase() && b[1] == b'=',
            "bad SDP line {line:?}"
        );
    }
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("m=")).count(),
        n,
        "one m= per track"
    );
}
