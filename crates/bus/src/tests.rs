//! Behaviour tests of the bus as publishers and subscribers see it.

use std::time::Duration;

use bytes::Bytes;

use super::*;

fn info() -> PublisherInfo {
    PublisherInfo {
        protocol: Protocol::Rtmp,
        peer: None,
        query: None,
    }
}

fn video(ts: u64, key: bool) -> Tag {
    Tag {
        keyframe: key,
        ..Tag::new(
            TagKind::Video,
            ts,
            Bytes::from(vec![if key { 0x17 } else { 0x27 }; 100]),
        )
    }
}

fn header(kind: TagKind, byte: u8) -> Tag {
    Tag {
        sequence_header: true,
        ..Tag::new(kind, 0, Bytes::from(vec![byte; 4]))
    }
}

fn drain(sub: &mut Subscriber) -> Vec<Event> {
    std::iter::from_fn(|| sub.try_recv()).collect()
}

fn timestamps(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Tag(t) if !t.sequence_header && t.kind != TagKind::Script => Some(t.timestamp),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn late_joiner_starts_with_headers_then_the_gop() {
    let bus = Bus::default();
    let mut publisher = bus.publish("live/a", info()).unwrap();
    publisher.push(Tag::new(TagKind::Script, 0, Bytes::from_static(b"meta")));
    publisher.push(header(TagKind::Video, 1));
    publisher.push(header(TagKind::Audio, 2));
    for (ts, key) in [(0, true), (40, false), (80, true), (120, false)] {
        publisher.push(video(ts, key));
    }
    let mut sub = bus.subscribe("live/a", Protocol::Rtmp).unwrap();
    let events = drain(&mut sub);
    let kinds: Vec<_> = events
        .iter()
        .map(|e| match e {
            Event::Tag(t) => (t.kind, t.sequence_header, t.keyframe),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (TagKind::Script, false, false),
            (TagKind::Video, true, false),
            (TagKind::Audio, true, false),
            (TagKind::Video, false, true),
            (TagKind::Video, false, false),
        ]
    );
    assert_eq!(timestamps(&events), [80, 120]);
    publisher.push(video(160, false));
    assert_eq!(timestamps(&drain(&mut sub)), [160]);
}

#[tokio::test]
async fn second_publisher_is_refused_and_the_first_is_unharmed() {
    let bus = Bus::default();
    let mut first = bus.publish("live/a", info()).unwrap();
    let err = bus.publish("live/a", info()).unwrap_err();
    assert_eq!(
        err,
        PublishError::AlreadyPublishing {
            key: "live/a".into()
        }
    );
    first.push(video(0, true));
    assert!(bus.stream("live/a").unwrap().is_live());
}

#[tokio::test]
async fn a_slow_subscriber_skips_to_the_next_keyframe_and_others_do_not_wait() {
    let opts = BusOptions {
        queue_tags: 8,
        ..BusOptions::default()
    };
    let bus = Bus::new(opts);
    let mut publisher = bus.publish("live/a", info()).unwrap();
    publisher.push(header(TagKind::Video, 1));
    let mut slow = bus.subscribe("live/a", Protocol::HttpFlv).unwrap();
    let mut fast = bus.subscribe("live/a", Protocol::HttpFlv).unwrap();
    drain(&mut slow);
    drain(&mut fast);
    let mut fast_seen = Vec::new();
    // 30 tags with a keyframe every 10: the slow reader never reads while they are sent.
    for i in 0..30u64 {
        publisher.push(video(i * 40, i % 10 == 0));
        fast_seen.extend(timestamps(&drain(&mut fast)));
    }
    assert_eq!(fast_seen.len(), 30, "the fast subscriber got everything");
    // The publisher changed its sequence header while the slow one lagged: it must get it again.
    publisher.push(header(TagKind::Video, 9));
    for i in 30..35u64 {
        publisher.push(video(i * 40, false));
    }
    let events = drain(&mut slow);
    assert!(slow.dropped() > 0);
    let first_media = events.iter().find_map(|e| match e {
        Event::Tag(t) if !t.sequence_header => Some(t.clone()),
        _ => None,
    });
    assert!(
        first_media.is_none(),
        "no keyframe yet, so nothing but headers: {events:?}"
    );
    let headers: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            Event::Tag(t) if t.sequence_header => Some(t.data[0]),
            _ => None,
        })
        .collect();
    assert_eq!(headers, [9], "the changed header is re-sent exactly once");
    publisher.push(video(35 * 40, true));
    let after: Vec<u64> = timestamps(&drain(&mut slow));
    assert_eq!(after, [1400], "resumes on the keyframe");
}

#[tokio::test]
async fn viewers_are_counted_per_protocol() {
    let bus = Bus::default();
    let _p = bus.publish("live/a", info()).unwrap();
    let a = bus.subscribe("live/a", Protocol::Rtsp).unwrap();
    let _b = bus.subscribe("live/a", Protocol::Rtsp).unwrap();
    let stream = bus.stream("live/a").unwrap();
    let _g = stream.viewer_guard(Protocol::Hls);
    assert_eq!(stream.stats().viewers_of(Protocol::Rtsp), 2);
    assert_eq!(stream.stats().viewers_of(Protocol::Hls), 1);
    drop(a);
    assert_eq!(stream.stats().viewers_of(Protocol::Rtsp), 1);
}

#[tokio::test(start_paused = true)]
async fn a_publisher_that_returns_within_the_grace_keeps_its_viewers() {
    let bus = Bus::new(BusOptions {
        unpublish_grace: Duration::from_secs(5),
        ..Default::default()
    });
    let mut p = bus.publish("live/a", info()).unwrap();
    p.push(video(0, true));
    p.push(video(40, false));
    let mut sub = bus.subscribe("live/a", Protocol::Rtmp).unwrap();
    drain(&mut sub);
    drop(p);
    assert!(matches!(sub.recv().await, Some(Event::PublisherLeft)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut p = bus.publish("live/a", info()).unwrap();
    assert!(matches!(sub.recv().await, Some(Event::PublisherJoined)));
    // The new publisher restarts at zero; the viewer's timeline carries on.
    p.push(video(0, true));
    let Some(Event::Tag(t)) = sub.recv().await else {
        panic!("expected a tag")
    };
    assert_eq!(t.timestamp, 80);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        bus.stream("live/a").is_some(),
        "still published, never removed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_removed_after_the_grace_and_subscribers_end() {
    let bus = Bus::new(BusOptions {
        unpublish_grace: Duration::from_secs(5),
        ..Default::default()
    });
    let p = bus.publish("live/a", info()).unwrap();
    let mut sub = bus.subscribe("live/a", Protocol::Rtmp).unwrap();
    drop(p);
    assert!(matches!(sub.recv().await, Some(Event::PublisherLeft)));
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(bus.stream("live/a").is_none());
    assert!(sub.recv().await.is_none());
    assert!(bus.subscribe("live/a", Protocol::Rtmp).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_waiting_player_gets_the_stream_when_it_starts() {
    let bus = Bus::default();
    let mut sub = bus
        .subscribe_or_wait("live/a", Protocol::Rtmp)
        .expect("under the stream caps");
    assert!(
        bus.subscribe("live/a", Protocol::Rtmp).is_none(),
        "not live yet"
    );
    let mut p = bus.publish("live/a", info()).unwrap();
    p.push(video(0, true));
    let Some(Event::Tag(t)) = sub.recv().await else {
        panic!("expected a tag")
    };
    assert!(t.keyframe);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_stream_expires_without_a_publisher() {
    let bus = Bus::new(BusOptions {
        wait_for_publisher: Duration::from_secs(3),
        ..Default::default()
    });
    let mut sub = bus
        .subscribe_or_wait("live/a", Protocol::Rtmp)
        .expect("under the stream caps");
    assert!(sub.recv().await.is_none());
    assert!(bus.stream("live/a").is_none());
}

#[test]
fn attachments_are_created_once_per_stream() {
    let bus = Bus::default();
    let p = bus.publish("live/a", info()).unwrap();
    let a = p.stream().attachment(|| std::sync::Mutex::new(1u32));
    let b = p.stream().attachment(|| std::sync::Mutex::new(2u32));
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(*b.lock().unwrap(), 1);
}

fn backup_bus() -> Bus {
    Bus::new(BusOptions {
        backup_suffix: Some("_backup".into()),
        failover: Duration::from_millis(1000),
        unpublish_grace: Duration::from_secs(5),
        ..Default::default()
    })
}

/// Each event as a short code: `J` joined, `L` left, `H<byte>` a video header, `K`/`v` frames.
fn codes(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::PublisherJoined => "J".to_owned(),
            Event::PublisherLeft => "L".to_owned(),
            Event::Tag(t) if t.sequence_header => format!("H{}", t.data[0]),
            Event::Tag(t) if t.keyframe => format!("K{}", t.timestamp),
            Event::Tag(t) => format!("v{}", t.timestamp),
            Event::Closed => "C".to_owned(),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_backup_takes_over_a_quiet_primary_and_hands_back_at_its_keyframe() {
    let bus = backup_bus();
    let mut primary = bus.publish("live/a", info()).unwrap();
    primary.push(header(TagKind::Video, 1));
    primary.push(video(0, true));
    primary.push(video(40, false));
    let mut backup = bus.publish("live/a_backup", info()).unwrap();
    backup.push(header(TagKind::Video, 2));
    backup.push(video(5000, true));
    backup.push(video(5040, false));
    let mut sub = bus.subscribe("live/a", Protocol::Rtmp).unwrap();
    assert_eq!(
        codes(&drain(&mut sub)),
        ["H1", "K0", "v40"],
        "the primary feeds"
    );
    // The primary goes quiet; under the failover time nothing changes.
    tokio::time::advance(Duration::from_millis(900)).await;
    backup.push(video(5080, false));
    assert!(drain(&mut sub).is_empty());
    tokio::time::advance(Duration::from_millis(200)).await;
    backup.push(video(5120, false));
    // The backup's headers, then its GOP from its keyframe, on the primary's timeline.
    assert_eq!(
        codes(&drain(&mut sub)),
        ["J", "H2", "K80", "v120", "v160", "v200"]
    );
    let stats = bus.stream("live/a").unwrap().stats();
    assert_eq!(
        (stats.feed, stats.failovers, stats.takebacks),
        (Feed::Backup, 1, 0)
    );
    // The primary returns mid-GOP: held back until its keyframe, then it feeds again.
    primary.push(video(1200, false));
    backup.push(video(5160, false));
    assert_eq!(codes(&drain(&mut sub)), ["v240"]);
    primary.push(video(1240, true));
    backup.push(video(5200, false));
    primary.push(video(1280, false));
    assert_eq!(codes(&drain(&mut sub)), ["J", "H1", "K280", "v320"]);
    let stats = bus.stream("live/a").unwrap().stats();
    assert_eq!(
        (stats.feed, stats.failovers, stats.takebacks),
        (Feed::Primary, 1, 1)
    );
    // The backup's own stream carried everything it sent all along.
    let mut own = bus.subscribe("live/a_backup", Protocol::Rtmp).unwrap();
    assert!(codes(&drain(&mut own)).starts_with(&["H2".to_owned()]));
}

#[tokio::test(start_paused = true)]
async fn a_primary_that_disconnects_fails_over_at_once_and_viewers_stay() {
    let bus = backup_bus();
    let mut primary = bus.publish("live/a", info()).unwrap();
    primary.push(header(TagKind::Video, 1));
    primary.push(video(0, true));
    let mut backup = bus.publish("live/a_backup", info()).unwrap();
    backup.push(header(TagKind::Video, 2));
    backup.push(video(0, true));
    let mut sub = bus.subscribe("live/a", Protocol::Rtmp).unwrap();
    drain(&mut sub);
    drop(primary);
    assert!(
        drain(&mut sub).is_empty(),
        "no PublisherLeft: the backup is there"
    );
    backup.push(video(40, false));
    assert_eq!(codes(&drain(&mut sub)), ["J", "H2", "K1", "v41"]);
    assert!(bus.stream("live/a").unwrap().is_live());
    // Long after the grace the stream is still there: the backup feeds it.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(bus.subscribe("live/a", Protocol::Hls).is_some());
    // The backup leaves too: viewers are told, and the stream goes after the grace.
    drop(backup);
    assert_eq!(codes(&drain(&mut sub)), ["L"]);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(bus.stream("live/a").is_none());
    assert!(sub.recv().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_backup_alone_feeds_the_primary_key_until_the_primary_comes() {
    let bus = backup_bus();
    let mut backup = bus.publish("live/a_backup", info()).unwrap();
    backup.push(header(TagKind::Video, 2));
    assert!(
        bus.subscribe("live/a", Protocol::Rtmp).is_none(),
        "no keyframe yet"
    );
    backup.push(video(0, true));
    let mut sub = bus.subscribe("live/a", Protocol::Rtmp).unwrap();
    assert_eq!(codes(&drain(&mut sub)), ["H2", "K0"]);
    let mut primary = bus.publish("live/a", info()).unwrap();
    primary.push(header(TagKind::Video, 1));
    backup.push(video(40, false));
    primary.push(video(0, true));
    assert_eq!(codes(&drain(&mut sub)), ["v40", "J", "H1", "K80"]);
}

#[test]
fn backup_keys_need_the_suffix_and_a_stream_name() {
    let bus = backup_bus();
    assert_eq!(bus.backup_target("live/a_backup"), Some("live/a"));
    assert_eq!(bus.backup_target("live/_backup"), None);
    assert_eq!(bus.backup_target("live/a"), None);
    assert_eq!(
        Bus::default().backup_target("live/a_backup"),
        None,
        "off by default"
    );
}

#[tokio::test(start_paused = true)]
async fn new_streams_are_capped_in_total_and_per_app_until_removed() {
    let bus = Bus::new(BusOptions {
        max_streams: 3,
        max_streams_per_app: 2,
        unpublish_grace: Duration::from_secs(1),
        wait_for_publisher: Duration::from_secs(1),
        ..Default::default()
    });
    let a = bus.publish("live/a", info()).expect("first stream");
    let _b = bus.publish("live/b", info()).expect("second of live");
    let refused = bus.publish("live/c", info()).map(|_| ()).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "this app already has 2 streams, the server's limit (bus.max_streams_per_app)"
    );
    // A waiting player creates a stream too, and is refused past the caps the same way.
    let _waiting = bus
        .subscribe_or_wait("tv/x", Protocol::Rtmp)
        .expect("another app");
    assert_eq!(
        bus.subscribe_or_wait("radio/x", Protocol::Rtmp).err(),
        Some(StreamLimit::Streams { limit: 3 })
    );
    // A publisher back within the grace takes its stream over: nothing new is counted.
    drop(a);
    let a = bus
        .publish("live/a", info())
        .expect("the same stream again");
    let s = bus.limit_stats();
    assert_eq!(
        (
            s.streams,
            s.refused_max_streams,
            s.refused_max_streams_per_app
        ),
        (3, 1, 1)
    );
    // Once a stream is removed (after its grace), its place is free.
    drop(a);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(bus.stream("live/a").is_none());
    assert!(bus.stream("tv/x").is_none(), "the wait expired");
    let _c = bus.publish("live/c", info()).expect("a place was freed");
    assert_eq!(bus.limit_stats().streams, 2);
}

#[tokio::test]
async fn set_options_lowers_the_caps_for_new_streams_and_keeps_the_existing_ones() {
    let bus = Bus::new(BusOptions {
        max_streams: 3,
        ..Default::default()
    });
    let a = bus.publish("live/a", info()).expect("first");
    let b = bus.publish("live/b", info()).expect("second");
    bus.set_options(BusOptions {
        max_streams: 1,
        ..Default::default()
    });
    assert_eq!(bus.options().max_streams, 1);
    assert_eq!(
        bus.limit_stats().max_streams,
        1,
        "the stats show the caps now in force"
    );
    assert_eq!(
        bus.publish("live/c", info()).map(|_| ()),
        Err(PublishError::Limit(StreamLimit::Streams { limit: 1 }))
    );
    assert_eq!(
        bus.subscribe_or_wait("tv/x", Protocol::Rtmp).err(),
        Some(StreamLimit::Streams { limit: 1 })
    );
    // The streams past the new cap stay, with their publishers and viewers.
    let mut sub = bus.subscribe("live/a", Protocol::Rtmp).expect("still live");
    let mut a = a;
    a.push(video(0, true));
    assert_eq!(timestamps(&drain(&mut sub)), [0]);
    assert!(bus.stream("live/b").is_some_and(|s| s.is_live()));
    assert_eq!(bus.limit_stats().streams, 2);
    drop(b);
    // Raised again, the next new stream is welcome.
    bus.set_options(BusOptions::default());
    let _c = bus.publish("live/c", info()).expect("the cap was raised");
}

#[tokio::test]
async fn a_stream_created_after_set_options_gets_the_new_queue_and_the_old_one_keeps_its_own() {
    let bus = Bus::new(BusOptions {
        queue_tags: 64,
        ..Default::default()
    });
    // Pushes 40 tags (a keyframe first) that the subscriber does not read, and says whether
    // it had to skip some.
    let overruns = |key: &str| {
        let mut publisher = bus.publish(key, info()).unwrap();
        let mut sub = bus.subscribe(key, Protocol::Rtmp).unwrap();
        for i in 0..40u64 {
            publisher.push(video(i * 40, i == 0));
        }
        drain(&mut sub);
        (publisher, sub.dropped() > 0)
    };
    let (mut old, old_dropped) = overruns("live/old");
    assert!(!old_dropped, "64 events hold 40 tags");
    bus.set_options(BusOptions {
        queue_tags: 8,
        ..Default::default()
    });
    let (_new, new_dropped) = overruns("live/new");
    assert!(new_dropped, "the new stream has the new, smaller ring");
    // The stream created before keeps its ring of 64.
    let mut sub = bus.subscribe("live/old", Protocol::Rtmp).unwrap();
    drain(&mut sub);
    for i in 40..80u64 {
        old.push(video(i * 40, false));
    }
    drain(&mut sub);
    assert_eq!(
        sub.dropped(),
        0,
        "the existing stream's ring was not changed"
    );
}

/// `Tag::classify` parses the header once and sets everything egress reads from it.
#[test]
fn classify_sets_flags_composition_time_media_and_payload() {
    // (kind, body, keyframe, sequence header, composition time, payload)
    type Case = (TagKind, &'static [u8], bool, bool, i32, &'static [u8]);
    let cases: &[Case] = &[
        (
            TagKind::Video,
            &[0x17, 0, 0, 0, 0, 1, 0x64],
            false,
            true,
            0,
            &[1, 0x64],
        ),
        (
            TagKind::Video,
            &[0x17, 1, 0, 0, 0x50, 9],
            true,
            false,
            80,
            &[9],
        ),
        (
            TagKind::Video,
            &[0x27, 1, 0xff, 0xff, 0xd8, 9],
            false,
            false,
            -40,
            &[9],
        ),
        (TagKind::Video, b"\x93hvc1\x07", true, false, 0, &[7]),
        (
            TagKind::Audio,
            &[0xaf, 0, 0x12, 0x10],
            false,
            true,
            0,
            &[0x12, 0x10],
        ),
        (
            TagKind::Audio,
            &[0x2f, 0xff, 0xfb],
            false,
            false,
            0,
            &[0xff, 0xfb],
        ),
        // A truncated header and script data: no flags, opaque, the whole body.
        (TagKind::Video, &[0x17, 1], false, false, 0, &[0x17, 1]),
        (
            TagKind::Script,
            b"\x02\x00\x0aonMetaData",
            false,
            false,
            0,
            b"\x02\x00\x0aonMetaData",
        ),
    ];
    for &(kind, body, keyframe, sequence_header, cts, payload) in cases {
        let tag = Tag::classify(kind, 40, Bytes::from_static(body));
        let got = (tag.keyframe, tag.sequence_header, tag.composition_time);
        assert_eq!(got, (keyframe, sequence_header, cts), "{body:02x?}");
        assert_eq!(
            tag.media,
            flv::Media::of(kind.flv_type(), body),
            "{body:02x?}"
        );
        assert_eq!(&tag.payload()[..], payload, "{body:02x?}");
        assert_eq!(&tag.data[..], body, "the body is kept whole");
    }
    assert_eq!(
        Tag::new(
            TagKind::Video,
            0,
            Bytes::from_static(&[0x17, 1, 0, 0, 0, 9])
        )
        .media,
        flv::Media::Opaque
    );
}

#[tokio::test]
async fn stats_count_frames_keyframe_intervals_corrections_and_bytes_out() {
    let bus = Bus::default();
    let mut publisher = bus.publish("live/stats", info()).expect("publish");
    publisher.push(header(TagKind::Video, 1));
    for (ts, key) in [
        (0, true),
        (40, false),
        (80, false),
        (2000, true),
        (2040, false),
    ] {
        publisher.push(video(ts, key));
    }
    publisher.push(Tag::new(
        TagKind::Audio,
        2050,
        Bytes::from_static(&[0xaf, 1, 0]),
    ));
    // A jump far beyond the correction threshold.
    publisher.push(video(900_000, false));
    let stream = bus.stream("live/stats").expect("stream");
    stream.count_sent(Protocol::Rtsp, 1500);
    stream.count_sent(Protocol::Rtsp, 500);
    let s = stream.stats();
    assert_eq!((s.video_frames, s.keyframes, s.audio_frames), (6, 2, 1));
    assert_eq!(s.keyframe_interval, Some(Duration::from_millis(2000)));
    assert_eq!(s.timestamp_corrections, 1);
    assert!(s.since_last_tag.is_some_and(|d| d < Duration::from_secs(5)));
    assert_eq!(s.bytes_out_of(Protocol::Rtsp), 2000);
    assert_eq!(s.bytes_out_of(Protocol::Rtmp), 0);
}
