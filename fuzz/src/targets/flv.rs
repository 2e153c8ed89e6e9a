//! FLV from the network (HTTP-FLV pulls, FLV files, RTMP message bodies): the incremental reader
//! fed in pieces must agree with the whole-file parser; every tag's audio/video header parses
//! without panicking and reports a payload offset inside the body; the `Media` ingest keeps
//! agrees with the header parsers (payload at the same offset, the same flags as `classify`);
//! `onMetaData` that parses rebuilds into a body that parses to the same metadata.

use bytes::Bytes;
use flv::{AudioTagHeader, FlvReader, FlvTag, Media, Metadata, ReadError, VideoTagHeader};

pub fn run(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let whole = flv::parse_file(&Bytes::copy_from_slice(rest));
    let (tags, err, header_seen) = incremental(rest, split);
    match &whole {
        Ok(file) => {
            assert_eq!(err, None, "the reader fails where parse_file did not");
            assert_eq!(tags, file.tags, "reader and parse_file agree");
        }
        // A file cut inside its header is an error for parse_file (reported as a bad
        // signature) while the reader waits for more bytes.
        Err(_) if err.is_none() && !header_seen => {}
        Err(e) => assert_eq!(err.as_ref(), Some(e), "reader and parse_file fail alike"),
    }
    for tag in &tags {
        check_tag(tag);
    }
    // The tag parsers on the raw input as one RTMP message body of each type.
    check_tag(&FlvTag {
        tag_type: 8,
        filtered: false,
        timestamp: 0,
        stream_id: 0,
        body: Bytes::copy_from_slice(rest),
    });
    check_tag(&FlvTag {
        tag_type: 9,
        filtered: false,
        timestamp: 0,
        stream_id: 0,
        body: Bytes::copy_from_slice(rest),
    });
    check_tag(&FlvTag {
        tag_type: 18,
        filtered: false,
        timestamp: 0,
        stream_id: 0,
        body: Bytes::copy_from_slice(rest),
    });
}

fn incremental(data: &[u8], split: u8) -> (Vec<FlvTag>, Option<ReadError>, bool) {
    let mut r = FlvReader::new();
    let mut tags = Vec::new();
    for piece in super::pieces(data, &[split, 3, split.wrapping_add(100)]) {
        r.push(piece);
        loop {
            match r.next_tag() {
                Ok(Some(t)) => tags.push(t),
                Ok(None) => break,
                Err(e) => return (tags, Some(e), r.header().is_some()),
            }
        }
    }
    (tags, None, r.header().is_some())
}

fn check_tag(tag: &FlvTag) {
    let body = &tag.body;
    let media = Media::of(tag.tag_type, body);
    assert_eq!(
        media.flags(),
        flv::classify(tag.tag_type, body),
        "classify is what the media says"
    );
    let payload = media.payload(body);
    assert!(
        media.header_len() <= body.len() && payload.len() == body.len() - media.header_len(),
        "the media's payload is the body's tail"
    );
    match tag.tag_type {
        8 => {
            if let Ok(h) = AudioTagHeader::parse(body) {
                assert!(
                    h.header_len <= body.len(),
                    "audio payload offset inside the body"
                );
                assert_eq!(h.header_len, media.header_len(), "media and parser agree");
                let _ = h.rate_hz();
            } else {
                assert_eq!(media, Media::Opaque, "a header that fails is opaque");
            }
        }
        9 => {
            if let Ok(h) = VideoTagHeader::parse(body) {
                assert!(
                    h.header_len <= body.len(),
                    "video payload offset inside the body"
                );
                assert_eq!(h.header_len, media.header_len(), "media and parser agree");
                assert_eq!(h.composition_time, media.composition_time());
            } else {
                assert_eq!(media, Media::Opaque, "a header that fails is opaque");
            }
        }
        18 => metadata(body),
        _ => {}
    }
}

fn metadata(body: &Bytes) {
    let stripped = flv::strip_set_data_frame(body);
    assert!(stripped.len() <= body.len());
    let Ok(meta) = Metadata::parse(body) else {
        return;
    };
    let Ok(rebuilt) = meta.to_script_body() else {
        return;
    };
    let again = Metadata::parse(&rebuilt).expect("rebuilt onMetaData parses");
    assert!(super::same(&meta, &again), "{meta:?} != {again:?}");
}
