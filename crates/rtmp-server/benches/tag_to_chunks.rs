//! Tag to chunks: what one RTMP player costs per tag.
//!
//! `cargo bench -p rtmp-server --bench tag_to_chunks`. Each tag goes through
//! [`Batch::tag`], the function the play egress calls for every tag it sends
//! to a viewer: it asks the viewer's `ServerSession` for the chunk headers and
//! slices the shared payload per chunk. A fresh batch per iteration matches the
//! connection loop, which builds one batch per vectored write. The session has
//! really been through handshake, `connect`, `createStream` and `play` with an
//! in-memory client, so the out chunk size is the one it announced.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rtmp::{ClientSession, ClientSessionEvent, ServerSession, ServerSessionConfig};
use rtmp::{RawMessage, ServerSessionEvent};
use rtmp_server::from_bus::Batch;
use std::time::Duration;

/// Tags of a typical 25 fps H.264 + AAC stream: an inter frame, a keyframe and
/// an AAC frame, each with its FLV tag header bytes in front.
fn inputs() -> Vec<(&'static str, bus::Tag)> {
    let tag = |kind, first: &[u8], len: usize| {
        let mut body = first.to_vec();
        body.resize(len, 0x5a);
        bus::Tag::new(kind, 0x0123_4567, Bytes::from(body))
    };
    vec![
        (
            "video_inter_2500B",
            tag(bus::TagKind::Video, &[0x27, 1, 0, 0, 0x50], 2_500),
        ),
        (
            "video_key_60000B",
            tag(bus::TagKind::Video, &[0x17, 1, 0, 0, 0x50], 60_000),
        ),
        ("audio_aac_370B", tag(bus::TagKind::Audio, &[0xaf, 1], 370)),
    ]
}

/// Moves bytes between the two sessions until both are quiet, accepting play.
fn pump(client: &mut ClientSession, server: &mut ServerSession) -> Vec<ClientSessionEvent> {
    let mut events = Vec::new();
    loop {
        let c2s = client.take_output();
        server.feed(&c2s).expect("server accepts client bytes");
        while let Some(ev) = server.poll_event().expect("server decodes") {
            if let ServerSessionEvent::PlayRequested { stream_id, .. } = ev {
                server.accept_play(stream_id);
            }
        }
        let s2c = server.take_output();
        if c2s.is_empty() && s2c.is_empty() {
            return events;
        }
        client.feed(&s2c).expect("client accepts server bytes");
        while let Some(ev) = client.poll_event().expect("client decodes") {
            events.push(ev);
        }
    }
}

/// A server session playing to an in-memory client, and the play stream id.
fn playing_session(out_chunk_size: u32) -> (ServerSession, ClientSession, u32) {
    let mut server = ServerSession::new(ServerSessionConfig {
        out_chunk_size,
        ..Default::default()
    });
    let mut client = ClientSession::new(1, false);
    pump(&mut client, &mut server);
    client.connect("live", "rtmp://127.0.0.1/live");
    client.create_stream();
    let stream_id = pump(&mut client, &mut server)
        .iter()
        .find_map(|e| match e {
            ClientSessionEvent::StreamCreated(id) => Some(*id),
            _ => None,
        })
        .expect("createStream answered");
    client.play(stream_id, "cam");
    pump(&mut client, &mut server);
    assert_eq!(server.out_chunk_size(), out_chunk_size);
    (server, client, stream_id)
}

/// Writes one batch to the client and returns the media message it decodes.
fn round_trip(client: &mut ClientSession, mut batch: Batch) -> RawMessage {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds");
    let mut wire = Vec::new();
    rt.block_on(batch.write_to(&mut wire))
        .expect("writing to a Vec succeeds");
    client.feed(&wire).expect("client accepts the chunks");
    let mut media = None;
    while let Some(ev) = client.poll_event().expect("chunks decode") {
        if let ClientSessionEvent::Media(m) = ev {
            media = Some(m);
        }
    }
    media.expect("the batch carried one media message")
}

fn tag_to_chunks(c: &mut Criterion) {
    let mut g = c.benchmark_group("tag_to_chunks");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    for chunk_size in [4096u32, 128] {
        let (session, mut client, stream_id) = playing_session(chunk_size);
        for (name, tag) in inputs() {
            // The bench must measure chunks a player decodes back to the tag.
            let mut check = Batch::default();
            check.tag(&session, stream_id, &tag);
            let m = round_trip(&mut client, check);
            assert_eq!(
                (m.type_id, m.payload),
                (tag.kind.flv_type(), tag.data.clone())
            );

            g.throughput(Throughput::Bytes(tag.data.len() as u64));
            let id = BenchmarkId::new(name, format!("chunk_size_{chunk_size}"));
            g.bench_with_input(id, &tag, |b, tag| {
                b.iter(|| {
                    let mut batch = Batch::default();
                    batch.tag(&session, stream_id, tag);
                    batch
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, tag_to_chunks);
criterion_main!(benches);
