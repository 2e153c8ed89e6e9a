//! The muxer against an independent demuxer: ffprobe and ffmpeg read what it writes.
//!
//! `tests/fixtures/mms/av-3s.asf` is this muxer's output for `av-3s.flv`, kept so that any change
//! in the bytes is a visible diff (`av-3s.asf.txt` is ffprobe's packet dump of it). Regenerate
//! both with `ASF_REGENERATE_FIXTURE=1 cargo test -p asf --test ffprobe_fixture`.

use std::path::{Path, PathBuf};
use std::process::Command;

use asf::{FlvAsfMuxer, MuxEvent, MuxerOptions, TagKind, TagRef};
use bytes::Bytes;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mms")
}

/// Muxes the FLV fixture; returns the header and the packets (with their random-access flag).
fn mux(flv_path: &Path) -> (Bytes, Vec<(Bytes, bool)>) {
    let data = Bytes::from(std::fs::read(flv_path).expect("FLV fixture is readable"));
    let file = flv::parse_file(&data).expect("FLV fixture parses");
    let mut m = FlvAsfMuxer::new(MuxerOptions {
        file_id: [0x42; 16],
        ..MuxerOptions::default()
    });
    let mut header = None;
    let mut packets = Vec::new();
    let mut drain = |m: &mut FlvAsfMuxer| {
        while let Some(ev) = m.poll_event() {
            match ev {
                MuxEvent::Header(h) => {
                    assert!(header.is_none(), "one header for one configuration");
                    header = Some(h);
                }
                MuxEvent::Packet(p) => packets.push((p.data, p.random_access)),
                other => panic!("unexpected event {other:?}"),
            }
        }
    };
    for t in &file.tags {
        let kind = match t.tag_type {
            8 => TagKind::Audio,
            9 => TagKind::Video,
            _ => TagKind::Script,
        };
        m.push_tag(TagRef::classify(kind, u64::from(t.timestamp), &t.body));
        drain(&mut m);
    }
    m.flush();
    drain(&mut m);
    (header.expect("a header was built"), packets)
}

fn concat(header: &Bytes, packets: &[(Bytes, bool)]) -> Vec<u8> {
    let mut out = header.to_vec();
    packets.iter().for_each(|(p, _)| out.extend_from_slice(p));
    out
}

fn have(tool: &str) -> bool {
    if Command::new(tool).arg("-version").output().is_ok() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{tool} is required in CI");
    }
    println!("SKIPPED: {tool} not installed");
    false
}

fn ffprobe(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("ffprobe prints UTF-8")
}

fn packet_dump(file: &Path) -> String {
    ffprobe(
        &[
            "-show_entries",
            "packet=stream_index,pts,dts,size,flags",
            "-of",
            "compact=p=0",
        ],
        file,
    )
}

#[test]
fn muxer_output_matches_the_kept_capture() {
    let (header, packets) = mux(&fixtures().join("av-3s.flv"));
    let bytes = concat(&header, &packets);
    let kept = fixtures().join("av-3s.asf");
    if std::env::var_os("ASF_REGENERATE_FIXTURE").is_some() {
        std::fs::write(&kept, &bytes).expect("write fixture");
        if have("ffprobe") {
            std::fs::write(fixtures().join("av-3s.asf.txt"), packet_dump(&kept))
                .expect("write dump");
        }
    }
    let expected = std::fs::read(&kept).expect("kept capture is readable");
    assert!(
        bytes == expected,
        "muxer output changed; regenerate the fixture if that is intended"
    );
}

#[test]
fn ffprobe_reads_the_kept_capture() {
    if !have("ffprobe") {
        return;
    }
    let file = fixtures().join("av-3s.asf");
    let streams = ffprobe(
        &[
            "-show_entries",
            "stream=codec_name,width,height,sample_rate,channels",
            "-of",
            "csv=p=0",
        ],
        &file,
    );
    assert_eq!(
        streams.lines().collect::<Vec<_>>(),
        ["h264,320,240", "aac,44100,2"],
        "{streams}"
    );
    let dump = packet_dump(&file);
    let video: Vec<&str> = dump
        .lines()
        .filter(|l| l.starts_with("stream_index=0"))
        .collect();
    assert_eq!(video.len(), 75, "3 s of 25 fps video");
    let keys = video
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("flags=K"))
        .map(|(i, _)| i)
        .collect::<Vec<_>>();
    assert_eq!(keys, [0, 25, 50], "one keyframe a second, flagged");
    let mut pts: Vec<i64> = video.iter().filter_map(|l| field(l, "pts")).collect();
    pts.sort_unstable();
    pts.dedup();
    assert_eq!(
        pts.len(),
        75,
        "every frame has a distinct presentation time"
    );
    assert!(
        pts.windows(2).all(|w| w[1] - w[0] == 40),
        "frames 40 ms apart: {pts:?}"
    );
    let audio = dump
        .lines()
        .filter(|l| l.starts_with("stream_index=1"))
        .count();
    assert!(
        (128..=132).contains(&audio),
        "about 3 s of 1024-sample AAC frames: {audio}"
    );
}

fn field(line: &str, name: &str) -> Option<i64> {
    line.split('|')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

#[test]
fn ffmpeg_decodes_from_every_join_point_without_errors() {
    if !have("ffmpeg") {
        return;
    }
    let (header, packets) = mux(&fixtures().join("av-3s.flv"));
    let joins: Vec<usize> = packets
        .iter()
        .enumerate()
        .filter(|(_, (_, ra))| *ra)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(joins.len(), 3, "a join point per keyframe");
    let dir = std::env::temp_dir().join(format!("asf-join-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for j in joins {
        let path = dir.join(format!("join-{j}.asf"));
        std::fs::write(&path, concat(&header, &packets[j..])).expect("write");
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostats", "-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "null", "-"])
            .output()
            .expect("ffmpeg runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "joining at packet {j}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
