//! Fan-out: one tag from the publisher to every subscriber of a stream.
//!
//! `cargo bench -p bus --bench fan_out`. One iteration is one
//! [`bus::Publisher::push`] (timeline mapping, start-up cache, broadcast send)
//! plus one [`bus::Subscriber::try_recv`] by each subscriber, which is what the
//! egress connections do for every tag. Tags are 2.5 kB video frames with a
//! keyframe every 50 (a 2 s GOP at 25 fps), so the GOP cache stays as it is
//! on a live stream. The throughput is in deliveries (subscribers) per
//! iteration, so criterion's elements per second is deliveries per second; the
//! 1-subscriber case gives the fixed cost of a push.
//!
//! Everything runs on one thread: this is the cost of the data structure, not
//! of waking 1,000 tasks on other cores.

use std::time::Duration;

use bus::{Bus, Event, Protocol, PublisherInfo, Subscriber, Tag, TagKind};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const GOP_TAGS: u64 = 50;
const FRAME_MS: u64 = 40;

/// The `n`th tag of the stream: a keyframe every [`GOP_TAGS`].
fn video_tag(n: u64, payload: &Bytes) -> Tag {
    let mut tag = Tag::new(TagKind::Video, n * FRAME_MS, payload.clone());
    tag.keyframe = n.is_multiple_of(GOP_TAGS);
    tag
}

/// Pushes one tag and lets every subscriber take it; returns how many did.
fn push_and_receive(
    publisher: &mut bus::Publisher,
    subscribers: &mut [Subscriber],
    tag: Tag,
) -> usize {
    publisher.push(tag);
    subscribers
        .iter_mut()
        .map(|s| s.try_recv())
        .filter(|ev| matches!(ev, Some(Event::Tag(_))))
        .count()
}

fn fan_out(c: &mut Criterion) {
    let mut g = c.benchmark_group("bus_fan_out_one_tag");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    let payload = Bytes::from(vec![0x27u8; 2_500]);
    for subscribers in [1usize, 1_000] {
        let bus = Bus::default();
        let info = PublisherInfo {
            protocol: Protocol::Rtmp,
            peer: None,
            query: None,
        };
        let mut publisher = bus.publish("live/bench", info).expect("key is free");
        let mut header = Tag::new(TagKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0]));
        header.sequence_header = true;
        publisher.push(header);
        let mut subs: Vec<Subscriber> = (0..subscribers)
            .map(|_| {
                bus.subscribe("live/bench", Protocol::Rtmp)
                    .expect("stream is live")
            })
            .collect();
        // Drain the start-up snapshot (the sequence header).
        for s in &mut subs {
            while s.try_recv().is_some() {}
        }
        let mut n = 0u64;
        for _ in 0..2 * GOP_TAGS {
            n += 1;
            let got = push_and_receive(&mut publisher, &mut subs, video_tag(n, &payload));
            assert_eq!(got, subscribers, "every subscriber receives every tag");
        }

        g.throughput(Throughput::Elements(subscribers as u64));
        let id = BenchmarkId::new("push_plus_try_recv", format!("{subscribers}_subscribers"));
        g.bench_function(id, |b| {
            b.iter(|| {
                n += 1;
                push_and_receive(&mut publisher, &mut subs, video_tag(n, &payload))
            })
        });
        assert!(
            subs.iter().all(|s| s.dropped() == 0),
            "no subscriber fell behind"
        );
    }
    g.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
