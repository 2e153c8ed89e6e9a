//! RTP packetizing: the per-stream work of the RTSP egress, per access unit.
//!
//! `cargo bench -p rtp --bench packetize`. Video: an AVCC sample (4-byte NAL
//! lengths, as in FLV) is split with `codecs::nal_units` and packetized by
//! [`H264Packetizer`] into single NAL unit and FU-A packets (RFC 6184), the
//! keyframe also gets a STAP-A with SPS and PPS. Audio: raw AAC access units
//! into RFC 3640 AAC-hbr packets with [`AacPacketizer`]. Every packet is
//! [`rtp::DEFAULT_MTU`] bytes at most, the RTSP server's default. A fresh
//! output `Vec` per access unit matches the RTSP egress, which sends each
//! unit's packets as one shared message.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rtp::aac::AacPacketizer;
use rtp::h264::H264Packetizer;
use rtp::{RtpPacketRef, TrackParams, DEFAULT_MTU};

/// SPS and PPS of a 640x360 Main profile stream (as x264 writes them).
const SPS: &[u8] = &[
    0x67, 0x4d, 0x40, 0x1e, 0xec, 0xa0, 0x50, 0x17, 0xfc, 0xb8, 0x0b, 0x50, 0x10, 0x10, 0x14, 0x00,
    0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x58, 0xb6, 0x58,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xec, 0xb2, 0x2c];

fn params(payload_type: u8) -> TrackParams {
    TrackParams {
        payload_type,
        ssrc: 0x1234_5678,
        initial_sequence: 65_000,
        timestamp_offset: 77,
        mtu: DEFAULT_MTU,
    }
}

/// An AVCC sample of `len` bytes holding one slice NAL unit with header byte `nal_header`.
fn avcc_sample(nal_header: u8, len: usize) -> Bytes {
    let nal_len = len - 4;
    let mut b = BytesMut::with_capacity(len);
    b.put_u32(nal_len as u32);
    b.put_u8(nal_header);
    b.put_bytes(0x9c, nal_len - 1);
    b.freeze()
}

/// What the RTSP egress does with a video tag's AVCC payload.
fn packetize_video(p: &mut H264Packetizer, pts_ms: i64, sample: &Bytes) -> Vec<Bytes> {
    let nals: Vec<Bytes> = codecs::nal_units(sample, 4).map_while(Result::ok).collect();
    let mut out = Vec::new();
    p.packetize(pts_ms, &nals, &mut out);
    out
}

/// Checks there are at least `min_packets` valid RTP packets, none above the MTU, and the
/// marker bit on the last.
fn check(packets: &[Bytes], min_packets: usize) {
    assert!(packets.len() >= min_packets, "{} packets", packets.len());
    for p in packets {
        assert!(p.len() <= DEFAULT_MTU, "{} byte packet", p.len());
        RtpPacketRef::parse(p).expect("packetizer writes valid RTP");
    }
    let last = RtpPacketRef::parse(packets.last().expect("not empty")).expect("valid");
    assert!(last.header.marker, "marker on the last packet");
}

fn h264(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtp_packetize_h264");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    // An inter frame (non-IDR slice, nal_ref_idc 2) and a keyframe (IDR slice).
    for (name, nal_header, len) in [("inter_2500B", 0x41, 2_500), ("key_60000B", 0x65, 60_000)] {
        let sample = avcc_sample(nal_header, len);
        let new = || {
            let sets = |s: &[u8]| vec![Bytes::copy_from_slice(s)];
            H264Packetizer::new(params(96), sets(SPS), sets(PPS)).expect("valid MTU")
        };
        // FU-A payloads carry MTU - 12 (RTP) - 2 (FU indicator and header) bytes.
        check(
            &packetize_video(&mut new(), 0, &sample),
            len / (DEFAULT_MTU - 14),
        );
        let mut p = new();
        let mut pts = 0i64;
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(
            BenchmarkId::new(name, format!("mtu_{DEFAULT_MTU}")),
            &sample,
            |b, s| {
                b.iter(|| {
                    pts += 40;
                    packetize_video(&mut p, pts, s)
                })
            },
        );
    }
    g.finish();
}

fn aac(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtp_packetize_aac");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    // 128 kbit/s AAC-LC at 44.1 kHz averages 371 bytes per 1024-sample frame.
    let au = vec![0x21u8; 371];
    let new = || AacPacketizer::new(params(97), 44_100).expect("valid MTU");
    let mut out = Vec::new();
    assert!(new().packetize(0, &au, &mut out));
    check(&out, 1);
    let mut p = new();
    let mut frame = 0i64;
    g.throughput(Throughput::Bytes(au.len() as u64));
    g.bench_with_input(
        BenchmarkId::new("au_371B", format!("mtu_{DEFAULT_MTU}")),
        &au,
        |b, au| {
            b.iter(|| {
                frame += 1;
                let mut out = Vec::new();
                p.packetize(frame * 1024 * 1000 / 44_100, au, &mut out);
                out
            })
        },
    );
    g.finish();
}

criterion_group!(benches, h264, aac);
criterion_main!(benches);
