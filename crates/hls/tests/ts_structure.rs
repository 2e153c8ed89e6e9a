//! Structural checks of real segments, read back with an independent demuxer
//! (`mpeg2ts-reader`): PAT/PMT first in every segment, PCR present, each segment opens on an
//! IDR preceded by AUD/SPS/PPS, continuity counters continuous across segments, DTS/PTS
//! monotonic across segments.
//!
//! The input is an FLV made by ffmpeg at test time (testsrc 640x360 25 fps, GOP 2 s, AAC
//! 44.1 kHz), read with the `flv` crate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use hls::{InputTag, Segmenter, SegmenterOptions, TagKind};
use mpeg2ts_reader::packet::Packet;
use mpeg2ts_reader::pes::{PesContents, PesHeader, PtsDts};

const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;

fn make_flv(name: &str, args: &[&str]) -> Option<Bytes> {
    let dir = std::env::temp_dir().join(format!("hls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let path: PathBuf = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(&path)
        .status();
    match status {
        Ok(s) if s.success() => Some(Bytes::from(std::fs::read(&path).ok()?)),
        Ok(s) => panic!("ffmpeg failed: {s}"),
        Err(e) if std::env::var_os("CI").is_some() => panic!("ffmpeg is required in CI: {e}"),
        Err(e) => {
            println!("SKIPPED: ffmpeg not available: {e}");
            None
        }
    }
}

fn av_args() -> Vec<&'static str> {
    vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=640x360:rate=25:duration=9",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100:duration=9",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-bf",
        "2",
        "-g",
        "50",
        "-keyint_min",
        "50",
        "-sc_threshold",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-f",
        "flv",
    ]
}

fn input_tags(flv_bytes: &Bytes) -> Vec<InputTag> {
    let file = flv::parse_file(flv_bytes).expect("ffmpeg wrote a valid FLV");
    file.tags
        .iter()
        .filter_map(|t| {
            let kind = match t.tag_type {
                8 => TagKind::Audio,
                9 => TagKind::Video,
                _ => return None,
            };
            let composition_time =
                flv::VideoTagHeader::parse(&t.body).map_or(0, |h| h.composition_time);
            Some(InputTag {
                kind,
                timestamp: u64::from(t.timestamp),
                composition_time: if kind == TagKind::Video {
                    composition_time
                } else {
                    0
                },
                keyframe: t.flags().keyframe,
                data: t.body.clone(),
            })
        })
        .collect()
}

fn segment(tags: Vec<InputTag>) -> Vec<Bytes> {
    let mut s = Segmenter::new(SegmenterOptions {
        window: 100,
        ..Default::default()
    });
    for t in tags {
        let ts = t.timestamp;
        s.push(t, 1_000_000 + ts)
            .expect("every tag of an ffmpeg FLV is muxable");
    }
    s.flush();
    s.segments().map(|s| s.data.clone()).collect()
}

/// Per-PID state carried across segments.
#[derive(Default)]
struct Checker {
    cc: HashMap<u16, u8>,
    last_ts: HashMap<u16, u64>,
    pes_count: HashMap<u16, usize>,
}

impl Checker {
    fn check_segment(&mut self, index: usize, seg: &[u8], has_video: bool) {
        assert_eq!(seg.len() % 188, 0, "segment {index} is whole packets");
        let packets: Vec<Packet<'_>> = seg.chunks(188).map(Packet::new).collect();
        assert_eq!(u16::from(packets[0].pid()), 0, "segment {index}: PAT first");
        assert_eq!(
            packets[0].payload().map(|p| p[1]),
            Some(0x00),
            "PAT table_id"
        );
        assert_eq!(
            u16::from(packets[1].pid()),
            0x1000,
            "segment {index}: PMT second"
        );
        assert_eq!(
            packets[1].payload().map(|p| p[1]),
            Some(0x02),
            "PMT table_id"
        );
        let pcr_pid = if has_video { VIDEO_PID } else { AUDIO_PID };
        let pcrs = packets
            .iter()
            .filter(|p| u16::from(p.pid()) == pcr_pid)
            .filter_map(|p| p.adaptation_field().and_then(|a| a.pcr().ok()))
            .count();
        assert!(pcrs > 0, "segment {index}: PCR present");
        for p in &packets {
            self.check_cc(p);
        }
        let mut first_video = true;
        for (pid, pes) in reassemble(&packets) {
            self.check_pes(pid, &pes);
            if pid == VIDEO_PID && first_video {
                first_video = false;
                let types = nal_types(es_payload(&pes));
                assert_eq!(
                    &types[..3],
                    &[9, 7, 8],
                    "segment {index}: AUD, SPS, PPS first"
                );
                assert!(
                    types.contains(&5),
                    "segment {index}: first access unit is an IDR"
                );
            }
        }
    }

    fn check_cc(&mut self, p: &Packet<'_>) {
        let pid = u16::from(p.pid());
        let cc = p.continuity_counter().count();
        if let Some(prev) = self.cc.insert(pid, cc) {
            assert_eq!(cc, (prev + 1) % 16, "CC continuity on pid {pid:#x}");
        }
    }

    fn check_pes(&mut self, pid: u16, pes: &[u8]) {
        let header = PesHeader::from_bytes(pes).expect("PES header");
        let PesContents::Parsed(Some(parsed)) = header.contents() else {
            panic!("PES without header fields")
        };
        let ts = match parsed.pts_dts().expect("PTS present") {
            PtsDts::PtsOnly(Ok(pts)) => pts.value(),
            PtsDts::Both { dts: Ok(dts), .. } => dts.value(),
            other => panic!("bad timestamps {other:?}"),
        };
        if let Some(prev) = self.last_ts.insert(pid, ts) {
            assert!(
                ts > prev,
                "pid {pid:#x}: decode timestamps increase ({prev} then {ts})"
            );
        }
        *self.pes_count.entry(pid).or_default() += 1;
    }
}

/// Splits a segment's packets into PES packets per elementary PID.
fn reassemble(packets: &[Packet<'_>]) -> Vec<(u16, Vec<u8>)> {
    let mut out: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut open: HashMap<u16, usize> = HashMap::new();
    for p in packets {
        let pid = u16::from(p.pid());
        let Some(payload) = p.payload() else { continue };
        if pid != VIDEO_PID && pid != AUDIO_PID {
            continue;
        }
        if p.payload_unit_start_indicator() {
            open.insert(pid, out.len());
            out.push((pid, payload.to_vec()));
        } else if let Some(&i) = open.get(&pid) {
            out[i].1.extend_from_slice(payload);
        }
    }
    out
}

fn es_payload(pes: &[u8]) -> &[u8] {
    let header_len = 9 + usize::from(pes[8]);
    &pes[header_len..]
}

/// NAL unit types of an Annex B H.264 byte stream, in order.
fn nal_types(es: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < es.len() {
        if es[i] == 0 && es[i + 1] == 0 && es[i + 2] == 1 {
            types.push(es[i + 3] & 0x1F);
            i += 3;
        }
        i += 1;
    }
    types
}

#[test]
fn av_segments_are_structurally_valid() {
    let Some(flv) = make_flv("av.flv", &av_args()) else {
        return;
    };
    let segments = segment(input_tags(&flv));
    assert!(
        segments.len() >= 4,
        "9 s at a 2 s target gives at least 4 segments"
    );
    let mut checker = Checker::default();
    for (i, seg) in segments.iter().enumerate() {
        checker.check_segment(i, seg, true);
    }
    // 9 s of 25 fps video and of AAC batched at up to 100 ms per PES.
    assert_eq!(checker.pes_count.get(&VIDEO_PID), Some(&225));
    assert!(checker.pes_count.get(&AUDIO_PID).is_some_and(|n| *n >= 80));
}

#[test]
fn audio_only_segments_are_structurally_valid() {
    let args = [
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100:duration=7",
        "-c:a",
        "aac",
        "-f",
        "flv",
    ];
    let Some(flv) = make_flv("a.flv", &args) else {
        return;
    };
    let segments = segment(input_tags(&flv));
    assert!(segments.len() >= 3);
    let mut checker = Checker::default();
    for (i, seg) in segments.iter().enumerate() {
        checker.check_segment(i, seg, false);
    }
    assert_eq!(checker.pes_count.get(&VIDEO_PID), None);
}
