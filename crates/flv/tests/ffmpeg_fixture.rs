//! The reader, header parsers, metadata and writer checked against a real ffmpeg FLV and
//! ffprobe's packet listing of it (see tests/fixtures/PROVENANCE.md).

use bytes::{Bytes, BytesMut};
use flv::metadata::MetaCodecId;
use flv::{
    classify, file_header, parse_file, write_tag, AudioTagHeader, FlvReader, Metadata, TagType,
    VideoCodec, VideoPacketKind, VideoTagHeader,
};

const FIXTURE: &[u8] = include_bytes!("fixtures/x264_444_aac.flv");
const PACKETS: &str = include_str!("fixtures/x264_444_aac.packets.csv");

/// One media packet as ffprobe lists it: (type, pts, dts, payload size, keyframe).
type Packet = (String, i64, i64, usize, bool);

fn ffprobe_packets() -> Vec<Packet> {
    PACKETS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |s: &str| s.parse::<i64>().expect("ffprobe csv numbers are integers");
            let size = f[3]
                .parse::<usize>()
                .expect("ffprobe csv size is an integer");
            (
                f[0].to_owned(),
                num(f[1]),
                num(f[2]),
                size,
                f[4].starts_with('K'),
            )
        })
        .collect()
}

/// Turns our view of each non-sequence-header tag into ffprobe's packet form.
fn our_packets(tags: &[flv::FlvTag]) -> Vec<Packet> {
    let mut out = Vec::new();
    for tag in tags {
        let dts = i64::from(tag.timestamp);
        match tag.kind() {
            Some(TagType::Video) => {
                let h = VideoTagHeader::parse(&tag.body).expect("ffmpeg video tags parse");
                if h.packet == VideoPacketKind::Frame {
                    let pts = dts + i64::from(h.composition_time);
                    let size = tag.body.len() - h.header_len;
                    out.push(("video".to_owned(), pts, dts, size, h.is_keyframe()));
                }
            }
            Some(TagType::Audio) => {
                let h = AudioTagHeader::parse(&tag.body).expect("ffmpeg audio tags parse");
                if h.packet == flv::AudioPacketKind::Frame {
                    out.push((
                        "audio".to_owned(),
                        dts,
                        dts,
                        tag.body.len() - h.header_len,
                        true,
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_packet_matches_ffprobe() {
    let file = parse_file(&Bytes::from_static(FIXTURE)).expect("fixture parses");
    assert!(file.header.has_audio && file.header.has_video);
    assert_eq!((file.trailing_bytes, file.previous_size_mismatches), (0, 0));
    let want = ffprobe_packets();
    assert_eq!(want.len(), 138, "the csv has 50 video and 88 audio packets");
    assert_eq!(our_packets(&file.tags), want);
}

#[test]
fn first_tags_are_metadata_and_sequence_headers() {
    let file = parse_file(&Bytes::from_static(FIXTURE)).expect("fixture parses");
    let kinds: Vec<(Option<TagType>, flv::TagFlags)> = file
        .tags
        .iter()
        .take(3)
        .map(|t| (t.kind(), t.flags()))
        .collect();
    let seq = flv::TagFlags {
        keyframe: false,
        sequence_header: true,
    };
    assert_eq!(
        kinds,
        vec![
            (Some(TagType::Script), flv::TagFlags::default()),
            (Some(TagType::Video), seq),
            (Some(TagType::Audio), seq),
        ]
    );
    let video = VideoTagHeader::parse(&file.tags[1].body).expect("sequence header parses");
    assert_eq!(video.codec, VideoCodec::Avc);
    let avcc = file.tags[1].body.slice(video.header_len..);
    let config = codecs::AvcDecoderConfig::parse_bytes(&avcc).expect("avcC parses");
    let sps = config.sps_info().expect("SPS parses");
    assert_eq!(
        (sps.width, sps.height, sps.frame_rate),
        (640, 360, Some(25.0))
    );
    let audio = AudioTagHeader::parse(&file.tags[2].body).expect("audio header parses");
    let asc = codecs::AudioSpecificConfig::parse(&file.tags[2].body[audio.header_len..])
        .expect("ASC parses");
    assert_eq!(
        (asc.sampling_frequency, asc.channel_configuration),
        (44100, 1)
    );
    // Exactly one key frame: ffprobe lists one I frame and the GOP is 50 frames long.
    let keyframes = file
        .tags
        .iter()
        .filter(|t| classify(t.tag_type, &t.body).keyframe)
        .count();
    assert_eq!(keyframes, 1);
}

#[test]
fn metadata_matches_what_ffmpeg_wrote() {
    let file = parse_file(&Bytes::from_static(FIXTURE)).expect("fixture parses");
    let meta = Metadata::parse(&file.tags[0].body).expect("onMetaData parses");
    assert_eq!(
        (meta.width, meta.height, meta.framerate),
        (Some(640.0), Some(360.0), Some(25.0))
    );
    assert_eq!(meta.videocodecid, Some(MetaCodecId::Number(7.0)));
    assert_eq!(meta.audiocodecid, Some(MetaCodecId::Number(10.0)));
    assert_eq!(
        (meta.audiosamplerate, meta.stereo),
        (Some(44100.0), Some(false))
    );
    assert_eq!(meta.encoder.as_deref(), Some("Lavf59.27.100"));
    assert_eq!(meta.duration, Some(2.08));
    let filesize = meta
        .other
        .iter()
        .find(|(k, _)| k == "filesize")
        .and_then(|(_, v)| v.as_f64());
    assert_eq!(filesize, Some(FIXTURE.len() as f64));
    // Rebuilding keeps ffmpeg's property order, so the tag comes back byte for byte.
    assert_eq!(meta.to_script_body().expect("encodes"), file.tags[0].body);
}

#[test]
fn writer_reproduces_the_file_byte_for_byte() {
    let file = parse_file(&Bytes::from_static(FIXTURE)).expect("fixture parses");
    let mut out = BytesMut::from(&file_header(true, true)[..]);
    for tag in &file.tags {
        write_tag(&mut out, tag.tag_type, tag.timestamp, &tag.body);
    }
    assert_eq!(out.len(), FIXTURE.len());
    assert!(out[..] == *FIXTURE, "rewritten file differs");
}

#[test]
fn incremental_reader_agrees_with_parse_file() {
    let whole = parse_file(&Bytes::from_static(FIXTURE)).expect("fixture parses");
    // Odd chunk sizes split headers, bodies and PreviousTagSize fields everywhere.
    for chunk in [1, 5, 11, 188, 1400, 65536] {
        let mut reader = FlvReader::new();
        let mut tags = Vec::new();
        for piece in FIXTURE.chunks(chunk) {
            reader.push(piece);
            while let Some(tag) = reader.next_tag().expect("fixture reads") {
                tags.push(tag);
            }
        }
        assert_eq!(tags, whole.tags, "chunk size {chunk}");
        assert_eq!(reader.previous_size_mismatches(), 0);
    }
}
