//! Chunk decoding and per-tag chunk serialization throughput.
//!
//! `cargo bench -p rtmp --bench chunk`; criterion prints MB/s because each
//! benchmark declares its byte throughput.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rtmp::chunk::{ChunkDecoder, ChunkEncoder, MessageChunking};

/// A 2.5 Mbit/s-like mix: one 60 kB keyframe, 24 5 kB frames, 40 audio frames.
fn sample_messages() -> Vec<(u32, u8, Bytes)> {
    let mut out = vec![(7, 9, Bytes::from(vec![0x17; 60_000]))];
    out.extend((0..24).map(|_| (7, 9, Bytes::from(vec![0x27; 5_000]))));
    out.extend((0..40).map(|_| (6, 8, Bytes::from(vec![0xAF; 370]))));
    out
}

fn decode(c: &mut Criterion) {
    for chunk_size in [128u32, 4096] {
        let mut enc = ChunkEncoder::default();
        enc.set_chunk_size(chunk_size).expect("valid size");
        let mut wire = BytesMut::new();
        for (i, (csid, t, p)) in sample_messages().iter().enumerate() {
            enc.write(*csid, i as u32 * 40, *t, 1, p, &mut wire);
        }
        let wire = wire.freeze();
        let mut g = c.benchmark_group("chunk_decode");
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function(format!("chunk_size_{chunk_size}"), |b| {
            b.iter(|| {
                let mut d = ChunkDecoder::default();
                d.set_chunk_size(chunk_size).expect("valid size");
                let mut buf = BytesMut::from(&wire[..]);
                let mut n = 0;
                while let Some(m) = d.decode(&mut buf).expect("valid stream") {
                    n += m.payload.len();
                }
                n
            })
        });
        g.finish();
    }
}

fn serialize(c: &mut Criterion) {
    let tag = Bytes::from(vec![0x27u8; 20_000]);
    let mut g = c.benchmark_group("chunk_serialize_one_tag");
    g.throughput(Throughput::Bytes(tag.len() as u64));
    g.bench_function("copy_into_buffer_4096", |b| {
        let mut enc = ChunkEncoder::default();
        enc.set_chunk_size(4096).expect("valid size");
        let mut out = BytesMut::with_capacity(64 * 1024);
        b.iter(|| {
            out.clear();
            enc.write(7, 1234, 9, 1, &tag, &mut out);
            out.len()
        })
    });
    // What the server does per viewer: headers only, payload shared.
    g.bench_function("headers_and_slices_4096", |b| {
        b.iter(|| {
            let ch = MessageChunking::new(7, 1234, 9, 1, tag.len() as u32, 4096);
            let mut parts = 0usize;
            for i in 0..ch.chunk_count(tag.len()) {
                let h = if i == 0 { ch.first } else { ch.continuation };
                let end = ((i + 1) * 4096).min(tag.len());
                parts += h.as_ref().len() + tag.slice(i * 4096..end).len();
            }
            parts
        })
    });
    g.finish();
}

criterion_group!(benches, decode, serialize);
criterion_main!(benches);
