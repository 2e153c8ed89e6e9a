//! An H.265 stream (legacy FLV codec id 12, as Chinese CDNs and OBS plugins publish it): the SDP
//! carries sprop-vps/sps/pps, VPS/SPS/PPS travel in an aggregation packet before each IRAP, and
//! ffprobe/ffmpeg decode it over TCP and UDP.

mod common;

use std::time::Duration;

use bus::{Bus, Tag, TagKind};
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Builds an HEVCDecoderConfigurationRecord (ISO 14496-15 §8.3.3.1) for one VPS, SPS and PPS.
fn hvcc(vps: &[u8], sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let info = codecs::HevcSpsInfo::parse(sps).expect("x265 writes a valid SPS");
    // general_profile_space 0, tier, profile; the compatibility flag of that profile; no constraints.
    let compatibility = 1u32 << (31 - u32::from(info.profile_idc & 31));
    let mut ptl = vec![(u8::from(info.tier_flag) << 5) | info.profile_idc];
    ptl.extend_from_slice(&compatibility.to_be_bytes());
    ptl.extend_from_slice(&[0; 6]);
    ptl.push(info.level_idc);
    let mut out = vec![1];
    out.extend_from_slice(&ptl);
    out.extend_from_slice(&[0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 3]);
    for (kind, nal) in [(32u8, vps), (33, sps), (34, pps)] {
        out.push(0x80 | kind);
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// Encodes 12 s of testsrc with x265 (no B-frames, 2 s GOP, AUDs) and turns it into FLV-style tags.
fn hevc_tags() -> Option<Vec<Tag>> {
    if !common::have_tool("ffmpeg") {
        return None;
    }
    let path = std::env::temp_dir().join(format!("rtsp-server-h265-{}.hevc", std::process::id()));
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=25",
            "-t",
            "12",
            "-c:v",
            "libx265",
        ])
        .args([
            "-x265-params",
            "log-level=error:bframes=0:keyint=50:aud=1",
            "-f",
            "hevc",
        ])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not encode H.265");
    let stream = Bytes::from(std::fs::read(&path).expect("encoded file"));
    let _ = std::fs::remove_file(&path);
    let nals: Vec<Bytes> = codecs::nal::annex_b_units(&stream).collect();
    let kind = |n: &Bytes| (n[0] >> 1) & 0x3f;
    let find = |k| {
        nals.iter()
            .find(|n| kind(n) == k)
            .cloned()
            .expect("x265 writes VPS, SPS and PPS")
    };
    let (vps, sps, pps) = (find(32), find(33), find(34));
    let mut header = vec![0x1c, 0, 0, 0, 0];
    header.extend_from_slice(&hvcc(&vps, &sps, &pps));
    let mut tags = vec![Tag::classify(TagKind::Video, 0, Bytes::from(header))];
    // Access units start at each AUD; parameter sets travel only in the sequence header, as RTMP sends them.
    let mut units: Vec<Vec<Bytes>> = Vec::new();
    for nal in nals.into_iter().filter(|n| !(32..=34).contains(&kind(n))) {
        if kind(&nal) == 35 || units.is_empty() {
            units.push(Vec::new());
        }
        units.last_mut().expect("pushed above").push(nal);
    }
    for (i, unit) in units.iter().enumerate() {
        let key = unit.iter().any(|n| (16..=23).contains(&kind(n)));
        let mut body = vec![if key { 0x1c } else { 0x2c }, 1, 0, 0, 0];
        for nal in unit {
            body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            body.extend_from_slice(nal);
        }
        // The frame type (0x1c key, 0x2c inter) says what `key` says.
        tags.push(Tag::classify(
            TagKind::Video,
            i as u64 * 40,
            Bytes::from(body),
        ));
    }
    Some(tags)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_plays_in_ffprobe_and_ffmpeg() {
    if !common::have_tool("ffprobe") {
        return;
    }
    let Some(tags) = hevc_tags() else { return };
    let bus = Bus::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("bound");
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    tokio::spawn(rtsp_server::run(
        listener,
        bus.clone(),
        common::options(),
        stop.clone(),
    ));
    tokio::spawn(common::feed(bus.clone(), tags, stop.clone()));
    while bus
        .stream(common::KEY)
        .is_none_or(|s| s.video_sequence_header().is_none())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let url = format!("rtsp://{addr}/{}", common::KEY);
    for transport in ["tcp", "udp"] {
        let (stdout, _) = common::ffprobe_streams(&url, transport, "codec_name,width,height").await;
        assert!(
            stdout.contains("stream|codec_name=hevc|width=640|height=360"),
            "{transport}: ffprobe saw {stdout}"
        );
        let stderr = common::ffmpeg_decode(&url, transport, 5).await;
        assert_eq!(stderr, "", "{transport}: ffmpeg reported errors");
    }
}
