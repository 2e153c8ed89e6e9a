//! A publisher's tags through the remuxers: FLV bytes (the seeds are the fixture recordings) are
//! read into tags and fed, as ingest would, to the HLS segmenter (FLV to MPEG-TS) and to the
//! FLV-to-ASF muxer of the MMS egress. Nothing may panic, and the output must stay well framed:
//! every TS segment is whole 188-byte packets with sync bytes, every ASF packet has the
//! configured size.

use bytes::Bytes;
use flv::FlvReader;

const ASF_PACKET_SIZE: usize = 1024;

pub fn run(data: &[u8]) {
    let mut r = FlvReader::new();
    r.push(data);
    let mut seg = hls::Segmenter::new(hls::SegmenterOptions {
        target_duration_ms: 500,
        max_segment_bytes: 256 * 1024,
        ..hls::SegmenterOptions::default()
    });
    let mut asf = asf::FlvAsfMuxer::new(asf::MuxerOptions {
        packet_size: ASF_PACKET_SIZE,
        ..asf::MuxerOptions::default()
    });
    while let Ok(Some(tag)) = r.next_tag() {
        let (hls_kind, asf_kind) = match tag.tag_type {
            8 => (hls::TagKind::Audio, asf::TagKind::Audio),
            9 => (hls::TagKind::Video, asf::TagKind::Video),
            _ => (hls::TagKind::Script, asf::TagKind::Script),
        };
        // As ingest does: the header is parsed once, and both muxers read that result.
        let media = tag.media();
        let flags = media.flags();
        let input = hls::InputTag {
            kind: hls_kind,
            timestamp: u64::from(tag.timestamp),
            composition_time: media.composition_time(),
            keyframe: flags.keyframe,
            data: tag.body.clone(),
            media,
        };
        let _ = seg.push(input, u64::from(tag.timestamp));
        asf.push_tag(asf::TagRef {
            kind: asf_kind,
            timestamp_ms: u64::from(tag.timestamp),
            data: &tag.body,
            media,
        });
        drain_asf(&mut asf);
    }
    seg.flush();
    asf.flush();
    drain_asf(&mut asf);
    for s in seg.segments() {
        check_ts(&s.data);
    }
    let playlist = seg.playlist();
    assert!(
        std::str::from_utf8(&playlist).is_ok(),
        "the playlist is UTF-8"
    );
}

fn check_ts(ts: &Bytes) {
    assert_eq!(ts.len() % 188, 0, "a segment is whole TS packets");
    for p in ts.chunks(188) {
        assert_eq!(p[0], 0x47, "every TS packet starts with the sync byte");
    }
}

fn drain_asf(m: &mut asf::FlvAsfMuxer) {
    while let Some(ev) = m.poll_event() {
        if let asf::MuxEvent::Packet(p) = ev {
            assert_eq!(
                p.data.len(),
                ASF_PACKET_SIZE,
                "ASF packets have the fixed size"
            );
        }
    }
}
