//! Segmenter behaviour with synthetic tags.

use bytes::Bytes;

use crate::*;

const AVCC: &[u8] = &[
    1, 0x64, 0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1E, 1, 0, 2, 0x68, 0xEE,
];
/// 2026-11-22T05:00:00.000Z
const T0: u64 = 1_795_323_600_000;

fn video_config() -> InputTag {
    let mut body = vec![0x17, 0, 0, 0, 0];
    body.extend_from_slice(AVCC);
    tag(TagKind::Video, 0, false, body)
}

fn audio_config() -> InputTag {
    tag(TagKind::Audio, 0, false, vec![0xAF, 0, 0x12, 0x10])
}

fn video(ts: u64, key: bool) -> InputTag {
    let nal_type = if key { 0x65 } else { 0x41 };
    let body = vec![
        if key { 0x17 } else { 0x27 },
        1,
        0,
        0,
        0,
        0,
        0,
        0,
        3,
        nal_type,
        0xAA,
        0xBB,
    ];
    tag(TagKind::Video, ts, key, body)
}

fn audio(ts: u64) -> InputTag {
    tag(TagKind::Audio, ts, false, vec![0xAF, 1, 0x21, 0x10, 0x04])
}

fn tag(kind: TagKind, timestamp: u64, keyframe: bool, data: Vec<u8>) -> InputTag {
    // The keyframe flag is the caller's, as the bus tag's is, even where the body disagrees.
    InputTag {
        keyframe,
        ..InputTag::classify(kind, timestamp, Bytes::from(data))
    }
}

/// Feeds video at 25 fps with a keyframe every `gop_ms` and audio every 23 ms, from `from_ms`
/// to `to_ms`, with wall-clock time advancing with the stream.
fn feed_av(s: &mut Segmenter, from_ms: u64, to_ms: u64, gop_ms: u64) {
    let mut audio_ts = from_ms;
    for ts in (from_ms..to_ms).step_by(40) {
        while audio_ts <= ts {
            s.push(audio(audio_ts), T0 + audio_ts).unwrap();
            audio_ts += 23;
        }
        s.push(video(ts, (ts - from_ms).is_multiple_of(gop_ms)), T0 + ts)
            .unwrap();
    }
}

fn opts(window: usize) -> SegmenterOptions {
    SegmenterOptions {
        window,
        retain_after_window: 1,
        uri_prefix: "x-".into(),
        ..Default::default()
    }
}

fn durations(s: &Segmenter) -> Vec<u64> {
    s.segments().map(|s| s.entry.duration_ms).collect()
}

#[test]
fn cuts_on_keyframes_after_target_and_slides_the_window() {
    let mut s = Segmenter::new(opts(3));
    s.push(video_config(), T0).unwrap();
    s.push(audio_config(), T0).unwrap();
    // Keyframes every 1.2 s: the first one at or after 2 s from the segment start cuts.
    feed_av(&mut s, 0, 12_040, 1200);
    assert_eq!(durations(&s), vec![2400, 2400, 2400, 2400]);
    assert_eq!(s.target_duration_secs(), 3);
    let text = String::from_utf8(s.playlist().to_vec()).unwrap();
    assert!(text.starts_with(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:2\n"
    ));
    assert!(text
        .ends_with("#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:00:09.600Z\n#EXTINF:2.400,\nx-4.ts\n"));
    // One segment is retained after leaving the window; older ones are freed.
    assert!(s.segment(0).is_none());
    assert!(s.segment(1).is_some());
    assert_eq!(s.stats().skipped_tags, 0);
}

#[test]
fn republish_marks_a_discontinuity_that_later_slides_out() {
    let mut s = Segmenter::new(opts(2));
    s.push(video_config(), T0).unwrap();
    s.push(audio_config(), T0).unwrap();
    feed_av(&mut s, 0, 4040, 2000);
    // The publisher comes back with timestamps from zero.
    assert_eq!(s.publisher_restarted(), Some(2));
    s.push(video_config(), T0 + 10_000).unwrap();
    s.push(audio_config(), T0 + 10_000).unwrap();
    let mut audio_ts = 0;
    for ts in (0..4040).step_by(40) {
        while audio_ts <= ts {
            s.push(audio(audio_ts), T0 + 10_000 + audio_ts).unwrap();
            audio_ts += 23;
        }
        s.push(video(ts, ts.is_multiple_of(2000)), T0 + 10_000 + ts)
            .unwrap();
    }
    let text = String::from_utf8(s.playlist().to_vec()).unwrap();
    assert_eq!(
        text,
        "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:00:10.000Z
#EXTINF:2.000,
x-3.ts
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:00:12.000Z
#EXTINF:2.000,
x-4.ts
"
    );
    feed_more(&mut s, 4040, 8040, T0 + 10_000);
    let text = String::from_utf8(s.playlist().to_vec()).unwrap();
    assert!(
        text.contains("#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n"),
        "{text}"
    );
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    assert_eq!(s.stats().discontinuities, 1);
}

#[test]
fn a_new_video_configuration_mid_stream_starts_a_discontinuity() {
    let mut s = Segmenter::new(opts(6));
    s.push(video_config(), T0).unwrap();
    feed_more(&mut s, 0, 4000, T0);
    // The same configuration again (a reconnect's replay) changes nothing.
    assert_eq!(s.push(video_config(), T0 + 4000).unwrap(), None);
    feed_more(&mut s, 4000, 6000, T0 + 4000);
    // Another picture size: other SPS bytes, same codec.
    let mut body = video_config().data.to_vec();
    *body.last_mut().unwrap() ^= 0x01;
    let other = tag(TagKind::Video, 6000, false, body);
    assert!(
        s.push(other, T0 + 6000).unwrap().is_some(),
        "closes the open segment"
    );
    feed_more(&mut s, 6000, 10_040, T0 + 6000);
    let flags: Vec<bool> = s.segments().map(|s| s.entry.discontinuity).collect();
    assert_eq!(flags, vec![false, false, false, true, false]);
    assert_eq!(s.stats().discontinuities, 1);
}

fn feed_more(s: &mut Segmenter, from: u64, to: u64, wall0: u64) {
    for ts in (from..to).step_by(40) {
        s.push(video(ts, ts.is_multiple_of(2000)), wall0 + ts)
            .unwrap();
    }
}

#[test]
fn timestamp_jump_starts_a_discontinuity() {
    let mut s = Segmenter::new(opts(6));
    s.push(video_config(), T0).unwrap();
    feed_more(&mut s, 0, 4000, T0);
    feed_more(&mut s, 60_000, 64_040, T0 + 4000);
    let flags: Vec<bool> = s.segments().map(|s| s.entry.discontinuity).collect();
    assert_eq!(flags, vec![false, false, true, false]);
    // The segment cut by the jump ends one frame after its last frame.
    assert_eq!(durations(&s), vec![2000, 2000, 2000, 2000]);
}

#[test]
fn audio_only_streams_cut_on_time() {
    let mut s = Segmenter::new(opts(6));
    s.push(audio_config(), T0).unwrap();
    for i in 0..300u64 {
        s.push(audio(i * 23), T0 + i * 23).unwrap();
    }
    assert_eq!(durations(&s), vec![2001, 2001, 2001]);
    assert_eq!(s.target_duration_secs(), 3);
}

#[test]
fn video_only_streams_start_after_the_probe() {
    let mut s = Segmenter::new(opts(6));
    s.push(video_config(), T0).unwrap();
    feed_more(&mut s, 0, 6040, T0);
    assert_eq!(durations(&s), vec![2000, 2000, 2000]);
    let ts = s.segment(0).unwrap();
    assert_eq!(&ts[..1], &[0x47]);
}

#[test]
fn encrypted_segments_and_keys() {
    let mut o = opts(6);
    o.encryption = Some(Encryption {
        secret: [9; 16],
        key_rotation: 2,
    });
    let mut s = Segmenter::new(o);
    s.push(video_config(), T0).unwrap();
    feed_more(&mut s, 0, 8040, T0);
    let text = String::from_utf8(s.playlist().to_vec()).unwrap();
    assert_eq!(
        text.matches("#EXT-X-KEY:METHOD=AES-128,URI=\"x-").count(),
        2
    );
    assert!(
        text.contains("URI=\"x-1.key\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:00:04.000Z\n"),
        "{text}"
    );
    assert!(s.key(0).is_some() && s.key(1).is_some() && s.key(2).is_none());
    let seg = s.segment(3).unwrap();
    assert_eq!(seg.len() % 16, 0);
    assert_ne!(seg[0], 0x47);
}

#[test]
fn malformed_tags_are_counted_and_skipped() {
    let mut s = Segmenter::new(opts(6));
    s.push(video_config(), T0).unwrap();
    assert!(s
        .push(tag(TagKind::Video, 0, true, vec![0x17, 1]), T0)
        .is_err());
    assert!(s
        .push(tag(TagKind::Audio, 0, false, vec![0xAF, 0, 0xF8]), T0)
        .is_err());
    feed_more(&mut s, 0, 4040, T0);
    assert_eq!(s.stats().skipped_tags, 2);
    assert_eq!(s.segments().count(), 2);
}
