//! Checks against ffmpeg and ffprobe run at test time: FLV written by this crate (with
//! extended timestamps) read back by ffprobe, Annex B access units compared with ffmpeg's
//! `h264_mp4toannexb`, and ADTS framing compared byte for byte with ffmpeg's ADTS muxer.
//!
//! When a tool is missing these tests print `SKIPPED:` and pass, except under `CI`, where
//! they fail.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use bytes::{Bytes, BytesMut};
use codecs::nal::annex_b_units;
use flv::{file_header, parse_file, write_tag, AudioTagHeader, FlvTag, TagType, VideoTagHeader};

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/x264_444_aac.flv")
}

fn fixture_tags() -> Vec<FlvTag> {
    let data = std::fs::read(fixture_path()).expect("fixture is readable");
    parse_file(&Bytes::from(data)).expect("fixture parses").tags
}

/// Returns whether `tool` runs; panics under CI when it does not.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required under CI"
        );
        println!("SKIPPED: {tool} is not installed");
    }
    ok
}

/// Runs a tool with `input` on stdin and returns its stdout, panicking with its stderr.
fn run(tool: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} starts: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The tool may stop reading early; a broken pipe is not a failure here.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("tool runs to completion");
    writer.join().expect("stdin writer thread finishes");
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn ffprobe_reads_extended_timestamps_we_write() {
    if !have("ffprobe") {
        return;
    }
    // Start 200 ms before 2^24 ms so the stream crosses into TimestampExtended.
    const OFFSET: u32 = 0x00ff_ffff - 200;
    let tags = fixture_tags();
    let mut out = BytesMut::from(&file_header(true, true)[..]);
    let mut want = Vec::new();
    for tag in &tags {
        if tag.kind() == Some(TagType::Script) {
            // ffmpeg turns script tags with a non-zero timestamp into a data stream.
            write_tag(&mut out, tag.tag_type, 0, &tag.body);
            continue;
        }
        write_tag(&mut out, tag.tag_type, tag.timestamp + OFFSET, &tag.body);
        // ffprobe lists coded frames only: no sequence headers, no end of sequence.
        let is_frame = match tag.kind() {
            Some(TagType::Video) => VideoTagHeader::parse(&tag.body)
                .is_ok_and(|h| h.packet == flv::VideoPacketKind::Frame),
            _ => !tag.flags().sequence_header,
        };
        if is_frame {
            want.push(i64::from(tag.timestamp + OFFSET));
        }
    }
    let csv = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_packets",
            "-show_entries",
            "packet=dts",
            "-of",
            "csv=p=0",
            "-i",
            "pipe:0",
        ],
        &out,
    );
    let got: Vec<i64> = String::from_utf8_lossy(&csv)
        .lines()
        .map(|l| l.trim().parse().expect("ffprobe prints integer dts"))
        .collect();
    assert!(
        want.iter().any(|&t| t > 0x00ff_ffff),
        "the test crosses 2^24 ms"
    );
    assert_eq!(got, want);
}

#[test]
fn idr_access_unit_matches_h264_mp4toannexb() {
    if !have("ffmpeg") {
        return;
    }
    let path = fixture_path();
    let path = path.to_str().expect("fixture path is UTF-8");
    let reference = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path,
            "-map",
            "0:v",
            "-c",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-frames:v",
            "1",
            "-f",
            "h264",
            "pipe:1",
        ],
        &[],
    );
    let reference: Vec<Bytes> = annex_b_units(&Bytes::from(reference)).collect();

    let tags = fixture_tags();
    let video: Vec<&FlvTag> = tags
        .iter()
        .filter(|t| t.kind() == Some(TagType::Video))
        .collect();
    let header = VideoTagHeader::parse(&video[0].body).expect("sequence header parses");
    let config = codecs::AvcDecoderConfig::parse_bytes(&video[0].body.slice(header.header_len..))
        .expect("avcC parses");
    let frame = VideoTagHeader::parse(&video[1].body).expect("frame header parses");
    let sample = video[1].body.slice(frame.header_len..);
    let mut ours = BytesMut::new();
    let info = codecs::avc::access_unit_to_annex_b(&sample, &config, &mut ours).expect("converts");
    assert!(info.idr && info.inserted_parameter_sets);
    let ours: Vec<Bytes> = annex_b_units(&ours.freeze()).collect();

    // We write AUD, SPS, PPS, then the sample's units; ffmpeg 5.1 puts SPS/PPS just before
    // the IDR slice (after x264's SEI) and no AUD. Both orders are valid (H.264 7.4.1.2.3).
    assert_eq!(&ours[0][..], &codecs::avc::AUD_NAL);
    let is_ps = |n: &Bytes| codecs::avc::is_sps(n) || codecs::avc::is_pps(n);
    let ref_ps: Vec<&Bytes> = reference.iter().filter(|n| is_ps(n)).collect();
    let ref_rest: Vec<&Bytes> = reference.iter().filter(|n| !is_ps(n)).collect();
    assert_eq!(ours[1..3].iter().collect::<Vec<_>>(), ref_ps);
    assert_eq!(ours[3..].iter().collect::<Vec<_>>(), ref_rest);
}

#[test]
fn adts_stream_matches_ffmpeg_adts_muxer() {
    if !have("ffmpeg") {
        return;
    }
    let path = fixture_path();
    let path = path.to_str().expect("fixture path is UTF-8");
    let reference = run(
        "ffmpeg",
        &[
            "-v", "error", "-i", path, "-map", "0:a", "-c", "copy", "-f", "adts", "pipe:1",
        ],
        &[],
    );
    let mut asc = None;
    let mut ours = Vec::new();
    for tag in fixture_tags()
        .iter()
        .filter(|t| t.kind() == Some(TagType::Audio))
    {
        let h = AudioTagHeader::parse(&tag.body).expect("audio header parses");
        let payload = &tag.body[h.header_len..];
        if tag.flags().sequence_header {
            asc = Some(codecs::AudioSpecificConfig::parse(payload).expect("ASC parses"));
            continue;
        }
        let asc = asc.as_ref().expect("the ASC precedes the first frame");
        ours.extend_from_slice(&asc.adts_header(payload.len()).expect("fits ADTS"));
        ours.extend_from_slice(payload);
    }
    assert_eq!(ours.len(), reference.len());
    assert!(ours == reference, "ADTS stream differs from ffmpeg's");
}
