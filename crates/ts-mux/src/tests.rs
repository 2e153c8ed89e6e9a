//! Unit tests: muxer output read back with `mpeg2ts`'s own reader.

use bytes::BytesMut;
use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacket, TsPacketReader, TsPayload};

use crate::*;

const AVCC: &[u8] = &[
    1, 0x64, 0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1E, 1, 0, 2, 0x68, 0xEE,
];
const ASC: &[u8] = &[0x12, 0x10];

fn av_muxer() -> TsMuxer {
    let tracks = Tracks {
        video: Some(VideoCodec::H264),
        audio: Some(AudioCodec::Aac),
    };
    let mut m = TsMuxer::new(tracks, 100);
    m.set_video_config(AVCC).unwrap();
    m.set_aac_config(ASC).unwrap();
    m
}

fn packets(ts: &[u8]) -> Vec<TsPacket> {
    assert_eq!(ts.len() % TsPacket::SIZE, 0);
    let mut r = TsPacketReader::new(ts);
    std::iter::from_fn(|| r.read_ts_packet().unwrap()).collect()
}

fn idr(len: usize) -> bytes::Bytes {
    let mut f = (len as u32 + 1).to_be_bytes().to_vec();
    f.push(0x65);
    f.extend(std::iter::repeat_n(0xAB, len));
    f.into()
}

#[test]
fn segment_starts_with_pat_pmt_and_keyframe_carries_pcr_and_params() {
    let mut m = av_muxer();
    let mut out = BytesMut::new();
    m.write_tables(&mut out);
    let frame = idr(1000);
    m.write_video(
        &VideoFrame {
            dts_ms: 0,
            cts_ms: 80,
            keyframe: true,
            data: frame,
        },
        &mut out,
    )
    .unwrap();
    let pkts = packets(&out);
    assert!(matches!(pkts[0].payload, Some(TsPayload::Pat(_))));
    let Some(TsPayload::Pmt(pmt)) = &pkts[1].payload else {
        panic!("second packet is not a PMT")
    };
    assert_eq!(pmt.pcr_pid.map(|p| p.as_u16()), Some(VIDEO_PID));
    assert_eq!(pmt.es_info.len(), 2);
    let af = pkts[2]
        .adaptation_field
        .as_ref()
        .expect("keyframe packet has an adaptation field");
    assert!(af.random_access_indicator);
    assert_eq!(af.pcr.map(|p| p.as_u64()), Some(0));

    let mut pes = PesPacketReader::new(TsPacketReader::new(&out[..]));
    let p = pes.read_pes_packet().unwrap().unwrap();
    assert_eq!(
        p.header.pts.map(|t| t.as_u64()),
        Some(TS_OFFSET_90K + 80 * 90)
    );
    assert_eq!(p.header.dts.map(|t| t.as_u64()), Some(TS_OFFSET_90K));
    let want_prefix = [
        0, 0, 0, 1, 9, 0xF0, 0, 0, 0, 1, 0x67, 0x64, 0, 0x1E, 0, 0, 0, 1, 0x68, 0xEE, 0, 0, 0, 1,
        0x65,
    ];
    assert_eq!(&p.data[..want_prefix.len()], &want_prefix);
    assert_eq!(p.data.len(), want_prefix.len() + 1000);
}

#[test]
fn continuity_counters_continue_across_segments() {
    let mut m = av_muxer();
    let mut all = BytesMut::new();
    for seg in 0..3u64 {
        m.write_tables(&mut all);
        for i in 0..30u64 {
            let frame = idr(300 + (i as usize * 37) % 900);
            let vf = VideoFrame {
                dts_ms: seg * 1200 + i * 40,
                cts_ms: 0,
                keyframe: i == 0,
                data: frame,
            };
            m.write_video(&vf, &mut all).unwrap();
            let af = AudioFrame {
                pts_ms: seg * 1200 + i * 40,
                data: &[0x21; 200],
            };
            m.push_audio(&af, &mut all).unwrap();
        }
        m.flush_audio(&mut all);
    }
    let mut last = std::collections::HashMap::new();
    for p in packets(&all) {
        let cc = p.header.continuity_counter.as_u8();
        if let Some(prev) = last.insert(p.header.pid.as_u16(), cc) {
            assert_eq!(cc, (prev + 1) % 16, "pid {:#x}", p.header.pid.as_u16());
        }
    }
    assert_eq!(last.len(), 4);
}

#[test]
fn audio_frames_are_batched_as_adts_in_one_pes() {
    let tracks = Tracks {
        video: None,
        audio: Some(AudioCodec::Aac),
    };
    let mut m = TsMuxer::new(tracks, 100);
    m.set_aac_config(ASC).unwrap();
    let mut out = BytesMut::new();
    m.write_tables(&mut out);
    // 23.2 ms frames: five fit in 100 ms, the sixth starts a new PES.
    for i in 0..6u64 {
        m.push_audio(
            &AudioFrame {
                pts_ms: i * 23,
                data: &[i as u8; 10],
            },
            &mut out,
        )
        .unwrap();
    }
    m.flush_audio(&mut out);
    let mut pes = PesPacketReader::new(TsPacketReader::new(&out[..]));
    let first = pes.read_pes_packet().unwrap().unwrap();
    assert_eq!(first.data.len(), 5 * 17);
    assert_eq!(&first.data[..2], &[0xFF, 0xF1]);
    let second = pes.read_pes_packet().unwrap().unwrap();
    assert_eq!(
        second.header.pts.map(|t| t.as_u64()),
        Some(TS_OFFSET_90K + 115 * 90)
    );
    // Audio-only: the PCR rides on the audio PID.
    let pkts = packets(&out);
    let Some(TsPayload::Pmt(pmt)) = &pkts[1].payload else {
        panic!("no PMT")
    };
    assert_eq!(pmt.pcr_pid.map(|p| p.as_u16()), Some(AUDIO_PID));
    assert!(pkts[2]
        .adaptation_field
        .as_ref()
        .and_then(|a| a.pcr)
        .is_some());
}

#[test]
fn errors_leave_the_muxer_usable() {
    let tracks = Tracks {
        video: Some(VideoCodec::H264),
        audio: None,
    };
    let mut m = TsMuxer::new(tracks, 0);
    let mut out = BytesMut::new();
    let frame = idr(10);
    let vf = VideoFrame {
        dts_ms: 0,
        cts_ms: 0,
        keyframe: true,
        data: frame,
    };
    assert_eq!(
        m.write_video(&vf, &mut out),
        Err(MuxError::MissingConfig("video"))
    );
    assert!(m
        .push_audio(
            &AudioFrame {
                pts_ms: 0,
                data: &[1]
            },
            &mut out
        )
        .is_err());
    m.set_video_config(AVCC).unwrap();
    let bad = VideoFrame {
        data: bytes::Bytes::from_static(&[0, 0, 0, 50, 0x65]),
        ..vf.clone()
    };
    assert!(matches!(
        m.write_video(&bad, &mut out),
        Err(MuxError::BadFrame(_))
    ));
    assert!(out.is_empty());
    m.write_video(&vf, &mut out).unwrap();
    assert_eq!(out.len(), TsPacket::SIZE);
}

#[test]
fn hevc_and_mp3_stream_types() {
    let tracks = Tracks {
        video: Some(VideoCodec::H265),
        audio: AudioCodec::from_mpeg_audio_frame(&[0xFF, 0xF3, 0x90, 0x64]),
    };
    let mut m = TsMuxer::new(tracks, 0);
    let mut out = BytesMut::new();
    m.write_tables(&mut out);
    let Some(TsPayload::Pmt(pmt)) = &packets(&out)[1].payload else {
        panic!("no PMT")
    };
    let types: Vec<u8> = pmt.es_info.iter().map(|e| e.stream_type as u8).collect();
    assert_eq!(types, vec![0x24, 0x04]);
}

/// The media packets written by hand are, byte for byte, what `mpeg2ts`'s writer makes of the
/// same PES: every payload length around the packet boundaries, with and without a PCR, a
/// random access flag and a DTS.
#[test]
fn media_packets_match_the_mpeg2ts_writer() {
    use crate::muxer::{PesSpec, STREAM_ID_AUDIO, STREAM_ID_VIDEO};
    let lengths = [
        0, 1, 2, 5, 150, 161, 162, 163, 164, 165, 169, 170, 171, 176, 177, 178, 182, 183, 184, 185,
        338, 346, 347, 348, 353, 354, 1000, 5000,
    ];
    let mut case = 0u64;
    for len in lengths {
        for (pcr, random_access, dts) in [
            (None, false, None),
            (None, true, None),
            (Some(27_000_123), true, Some(90_000)),
            (Some(300 * ((1 << 33) - 1) + 299), false, None),
            (None, false, Some(1)),
        ] {
            case += 1;
            let es: Vec<u8> = (0..len).map(|i| (i * 7 + case as usize) as u8).collect();
            let video = case.is_multiple_of(2);
            let spec = PesSpec {
                pid: if video { VIDEO_PID } else { AUDIO_PID },
                stream_id: if video {
                    STREAM_ID_VIDEO
                } else {
                    STREAM_ID_AUDIO
                },
                pts: (case * 1_234_567) & ((1 << 33) - 1),
                dts,
                pcr,
                random_access,
            };
            let mut m = TsMuxer::new(Tracks::default(), 0);
            let mut ours = BytesMut::new();
            // Twice, so the continuity counter is checked past its first value.
            m.write_pes(&mut ours, &spec, &es);
            m.write_pes(&mut ours, &spec, &es);
            let want = oracle::pes(&spec, &es, 2);
            assert_eq!(
                ours.as_ref(),
                want.as_slice(),
                "PES of {len} bytes, pcr {pcr:?}, random access {random_access}, dts {dts:?}"
            );
        }
    }
}

/// The same PES packets through `mpeg2ts`'s types and writer.
mod oracle {
    use bytes::BufMut;
    use mpeg2ts::es::StreamId;
    use mpeg2ts::pes::PesHeader;
    use mpeg2ts::time::{ClockReference, Timestamp};
    use mpeg2ts::ts::payload::{Bytes, Pes};
    use mpeg2ts::ts::{
        AdaptationField, ContinuityCounter, Pid, TransportScramblingControl, TsHeader, TsPacket,
        TsPacketWriter, TsPayload, WriteTsPacket,
    };

    use crate::muxer::PesSpec;

    /// `times` copies of the PES, continuity counter from 0.
    pub fn pes(spec: &PesSpec, es: &[u8], times: usize) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        let mut cc = ContinuityCounter::new();
        for _ in 0..times {
            one(spec, es, &mut cc, &mut out);
        }
        out.to_vec()
    }

    fn one(spec: &PesSpec, es: &[u8], cc: &mut ContinuityCounter, out: &mut bytes::BytesMut) {
        let ts = |t: u64| Timestamp::new(t).expect("33 bits");
        let header = PesHeader {
            stream_id: StreamId::new(spec.stream_id),
            priority: false,
            data_alignment_indicator: true,
            copyright: false,
            original_or_copy: false,
            pts: Some(ts(spec.pts)),
            dts: spec.dts.map(ts),
            escr: None,
        };
        let header_len = 9 + 5 + spec.dts.map_or(0, |_| 5);
        let pes_packet_len = u16::try_from(header_len - 6 + es.len()).unwrap_or(0);
        let adaptation = (spec.pcr.is_some() || spec.random_access).then(|| AdaptationField {
            discontinuity_indicator: false,
            random_access_indicator: spec.random_access,
            es_priority_indicator: false,
            pcr: spec
                .pcr
                .map(|p| ClockReference::new(p).expect("a valid PCR")),
            opcr: None,
            splice_countdown: None,
            transport_private_data: vec![],
            extension: None,
        });
        let af_len = adaptation
            .as_ref()
            .map_or(0, |a| 2 + if a.pcr.is_some() { 6 } else { 0 });
        let first_len = es.len().min(184 - header_len - af_len);
        let (first, mut rest) = es.split_at(first_len);
        let data = |c: &[u8]| Bytes::new(c).expect("at most one packet payload");
        let pes = Pes {
            header,
            pes_packet_len,
            data: data(first),
        };
        write(out, spec.pid, cc, adaptation, TsPayload::PesStart(pes));
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(184));
            write(
                out,
                spec.pid,
                cc,
                None,
                TsPayload::PesContinuation(data(chunk)),
            );
            rest = tail;
        }
    }

    fn write(
        out: &mut bytes::BytesMut,
        pid: u16,
        cc: &mut ContinuityCounter,
        af: Option<AdaptationField>,
        payload: TsPayload,
    ) {
        let packet = TsPacket {
            header: TsHeader {
                transport_error_indicator: false,
                transport_priority: false,
                pid: Pid::new(pid).expect("13 bits"),
                transport_scrambling_control: TransportScramblingControl::NotScrambled,
                continuity_counter: *cc,
            },
            adaptation_field: af,
            payload: Some(payload),
        };
        cc.increment();
        let start = out.len();
        let pcr = packet
            .adaptation_field
            .as_ref()
            .is_some_and(|a| a.pcr.is_some());
        TsPacketWriter::new(out.writer())
            .write_ts_packet(&packet)
            .expect("fits in 188 bytes");
        // mpeg2ts writes the six reserved bits between the PCR's base and extension as 0; the
        // standard sets reserved bits to 1 unless it says otherwise (ISO/IEC 13818-1), and so
        // does the muxer.
        if pcr {
            out[start + 10] |= 0x7E;
        }
    }
}
