//! Real publisher captures (client-to-server bytes, see
//! tests/fixtures/rtmp/PROVENANCE.md) replayed byte for byte through
//! `ServerSession`. The event list is compared with a readable golden dump
//! next to each capture; set `UPDATE_GOLDEN=1` to rewrite the dumps after an
//! intended change, and review the diff.

use std::fmt::Write as _;
use std::path::PathBuf;

use rtmp::{ServerSession, ServerSessionConfig, ServerSessionEvent};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/rtmp")
}

/// Feeds `wire` in uneven pieces, accepting publishes, and dumps the events.
fn replay(wire: &[u8]) -> (String, Counts) {
    let mut s = ServerSession::new(ServerSessionConfig::default());
    let mut dump = String::new();
    let mut counts = Counts::default();
    let mut pos = 0;
    let mut step = 1;
    while pos < wire.len() {
        // Piece sizes cycle through 1..=4099 bytes so that chunk headers,
        // extended timestamps and bodies are split at many offsets.
        step = (step * 7 + 13) % 4099 + 1;
        let end = (pos + step).min(wire.len());
        s.feed(&wire[pos..end]).expect("capture is valid RTMP");
        pos = end;
        while let Some(ev) = s.poll_event().expect("capture is valid RTMP") {
            if let ServerSessionEvent::PublishRequested { stream_id, .. } = &ev {
                s.accept_publish(*stream_id);
            }
            counts.add(&ev);
            writeln!(dump, "{}", line(&ev)).expect("writing to a String");
        }
        s.take_output();
    }
    (dump, counts)
}

#[derive(Debug, Default)]
struct Counts {
    connected: usize,
    publish: usize,
    metadata: usize,
    video_seq: usize,
    audio_seq: usize,
    video: usize,
    audio: usize,
    unpublished: usize,
}

impl Counts {
    fn add(&mut self, ev: &ServerSessionEvent) {
        match ev {
            ServerSessionEvent::Connected { .. } => self.connected += 1,
            ServerSessionEvent::PublishRequested { .. } => self.publish += 1,
            ServerSessionEvent::Metadata { .. } => self.metadata += 1,
            ServerSessionEvent::Video { data, .. } if data.get(1) == Some(&0) => {
                self.video_seq += 1
            }
            ServerSessionEvent::Audio { data, .. } if data.get(1) == Some(&0) => {
                self.audio_seq += 1
            }
            ServerSessionEvent::Video { .. } => self.video += 1,
            ServerSessionEvent::Audio { .. } => self.audio += 1,
            ServerSessionEvent::Unpublished { .. } => self.unpublished += 1,
            _ => {}
        }
    }
}

fn line(ev: &ServerSessionEvent) -> String {
    match ev {
        ServerSessionEvent::Video {
            timestamp, data, ..
        } => {
            format!(
                "video ts={timestamp} len={} head={:02x?}",
                data.len(),
                &data[..data.len().min(5)]
            )
        }
        ServerSessionEvent::Audio {
            timestamp, data, ..
        } => {
            format!(
                "audio ts={timestamp} len={} head={:02x?}",
                data.len(),
                &data[..data.len().min(2)]
            )
        }
        ServerSessionEvent::Metadata {
            timestamp, data, ..
        } => {
            let values = amf::decode_amf0_all(data).map(|v| v.len()).unwrap_or(0);
            format!("metadata ts={timestamp} len={} values={values}", data.len())
        }
        other => format!("{other:?}"),
    }
}

fn check(capture: &str, golden: &str) -> Counts {
    let wire = std::fs::read(fixture_dir().join(capture)).expect("capture fixture present");
    let (dump, counts) = replay(&wire);
    let golden_path = fixture_dir().join(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &dump).expect("write golden dump");
    }
    let want = std::fs::read_to_string(&golden_path).expect("golden dump present");
    assert!(
        dump == want,
        "{capture}: events differ from {golden} (UPDATE_GOLDEN=1 to rewrite)"
    );
    counts
}

#[test]
fn ffmpeg_publish_capture_replays() {
    let c = check("ffmpeg-publish.c2s.bin", "ffmpeg-publish.events.txt");
    assert_eq!(
        (c.connected, c.publish, c.metadata, c.video_seq, c.audio_seq),
        (1, 1, 1, 1, 1),
        "{c:?}"
    );
    // Three seconds of the 25 fps / 44.1 kHz AAC fixture: 77 pictures plus
    // the AVC end-of-sequence tag ffmpeg appends, and 130 AAC frames.
    assert_eq!((c.video, c.audio), (78, 130), "{c:?}");
    assert_eq!(c.unpublished, 1, "ffmpeg unpublishes on exit: {c:?}");
}

#[test]
fn gstreamer_rtmp2sink_capture_replays() {
    let c = check(
        "gst-rtmp2sink-publish.c2s.bin",
        "gst-rtmp2sink-publish.events.txt",
    );
    assert_eq!(
        (c.connected, c.publish, c.video_seq, c.audio_seq),
        (1, 1, 1, 1),
        "{c:?}"
    );
    // flvmux in streamable mode repeats onMetaData; every copy is surfaced.
    assert!(c.metadata > 1, "{c:?}");
    assert_eq!((c.video, c.audio, c.unpublished), (78, 130, 1), "{c:?}");
}

/// ffmpeg sends the digest C1 (scheme 0, Flash Player 9 version bytes), so
/// the loopback tests with ffmpeg exercise the digest reply that ffmpeg then
/// verifies; rtmp2sink sends a plain C1.
#[test]
fn captured_handshakes_take_the_expected_form() {
    use rtmp::handshake::{HandshakeKind, ServerHandshake};
    for (capture, want) in [
        (
            "ffmpeg-publish.c2s.bin",
            Some(HandshakeKind::Digest { scheme: 0 }),
        ),
        ("gst-rtmp2sink-publish.c2s.bin", Some(HandshakeKind::Plain)),
    ] {
        let wire = std::fs::read(fixture_dir().join(capture)).expect("capture fixture present");
        let mut hs = ServerHandshake::new(0, 0);
        let mut buf = bytes::BytesMut::from(&wire[..1537]);
        hs.feed(&mut buf, &mut bytes::BytesMut::new())
            .expect("valid C0 C1");
        assert_eq!(hs.kind(), want, "{capture}");
    }
}
