//! Writes the seed corpora under `fuzz/corpus/<target>/` from the real captures in
//! `tests/fixtures` (FLV tags, onMetaData and RTMP command AMF, AVC/HEVC/AAC configurations,
//! the RTMP publisher captures) and from hand-written RTSP, SDP, MMS and HTTP inputs.
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds`.
//! Seeds are named `seed-*`; files the fuzzer adds (named by their SHA-1) are left alone.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use rtmp::ChunkDecoder;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus");
const FLVS: [&str; 5] = [
    "av.flv",
    "audio-only.flv",
    "video-only.flv",
    "mp3.flv",
    "mms/av-3s.flv",
];
const CAPTURES: [&str; 2] = [
    "rtmp/ffmpeg-publish.c2s.bin",
    "rtmp/gst-rtmp2sink-publish.c2s.bin",
];

struct Seeds {
    dir: PathBuf,
    n: usize,
}

impl Seeds {
    fn new(target: &str) -> Seeds {
        let dir = Path::new(CORPUS).join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        Seeds { dir, n: 0 }
    }

    fn add(&mut self, name: &str, data: &[u8]) {
        let path = self.dir.join(format!("seed-{:02}-{name}", self.n));
        std::fs::write(path, data).expect("write seed");
        self.n += 1;
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).expect("fixture")
}

fn stem(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).replace('.', "-")
}

fn with(prefix: &[u8], data: &[u8]) -> Vec<u8> {
    [prefix, data].concat()
}

/// Deterministic filler for structure-aware targets.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The messages of a capture after its handshake.
fn capture_messages(name: &str) -> Vec<rtmp::RawMessage> {
    let data = fixture(name);
    let mut buf = BytesMut::from(&data[1 + 2 * rtmp::handshake::HANDSHAKE_SIZE..]);
    let mut d = ChunkDecoder::default();
    let mut out = Vec::new();
    while let Ok(Some(m)) = d.decode(&mut buf) {
        out.push(m);
    }
    out
}

fn main() {
    let flv_files: Vec<(String, flv::FlvFile)> = FLVS
        .iter()
        .map(|f| {
            (
                stem(f),
                flv::parse_file(&Bytes::from(fixture(f))).expect("fixture FLV"),
            )
        })
        .collect();

    let mut s = Seeds::new("flv");
    let mut remux = Seeds::new("remux");
    for f in FLVS {
        let data = fixture(f);
        s.add(&stem(f), &with(&[7], &data[..4096.min(data.len())]));
        remux.add(&stem(f), &data[..24 * 1024]);
    }

    let mut amf0 = Seeds::new("amf0");
    for (name, file) in &flv_files {
        if let Some(t) = file.tags.iter().find(|t| t.tag_type == 18) {
            amf0.add(&format!("{name}-onmetadata"), &t.body);
        }
    }
    for c in CAPTURES {
        for (i, m) in capture_messages(c)
            .iter()
            .filter(|m| matches!(m.type_id, 18 | 20))
            .enumerate()
        {
            if i < 6 {
                amf0.add(&format!("{}-msg{i}", stem(c)), &m.payload);
            }
        }
    }

    let mut amf3 = Seeds::new("amf3");
    let values = [
        amf::Amf3Value::String("onMetaData".into()),
        amf::Amf3Value::Array {
            assoc: vec![("width".into(), amf::Amf3Value::Integer(640))],
            dense: vec![amf::Amf3Value::Double(25.0), amf::Amf3Value::Null],
        },
        amf::Amf3Value::Object {
            class_name: String::new(),
            sealed: vec![("app".into(), amf::Amf3Value::String("live".into()))],
            is_dynamic: true,
            dynamic: vec![(
                "tcUrl".into(),
                amf::Amf3Value::String("rtmp://h/live".into()),
            )],
        },
        amf::Amf3Value::ByteArray(vec![1, 2, 3]),
        amf::Amf3Value::Date(1.0e12),
    ];
    for (i, v) in values.iter().enumerate() {
        amf3.add(&format!("value{i}"), &amf::encode_amf3(v).expect("encodes"));
    }

    let mut codec = Seeds::new("codec_config");
    for (name, file) in &flv_files {
        let video_sh = file
            .tags
            .iter()
            .find(|t| t.tag_type == 9 && flv::classify(9, &t.body).sequence_header);
        let key = file
            .tags
            .iter()
            .find(|t| t.tag_type == 9 && flv::classify(9, &t.body).keyframe);
        if let (Some(sh), Some(key)) = (video_sh, key) {
            let record = &sh.body[5..];
            let frame = &key.body[5..key.body.len().min(600)];
            let len = record.len().min(255) as u8;
            codec.add(
                &format!("{name}-avcc"),
                &[&[0, len][..], &record[..usize::from(len)], frame].concat(),
            );
            let config = codecs::AvcDecoderConfig::parse(record).expect("fixture avcC");
            codec.add(&format!("{name}-sps"), &with(&[3], &config.sps[0]));
            codec.add(&format!("{name}-sample"), &with(&[5], frame));
        }
        if let Some(sh) = file
            .tags
            .iter()
            .find(|t| t.tag_type == 8 && flv::classify(8, &t.body).sequence_header)
        {
            codec.add(&format!("{name}-asc"), &with(&[2], &sh.body[2..]));
        }
        if let Some(t) = file
            .tags
            .iter()
            .find(|t| t.tag_type == 8 && t.body[0] >> 4 == 2)
        {
            codec.add(
                &format!("{name}-mp3"),
                &with(&[4], &t.body[1..t.body.len().min(64)]),
            );
        }
    }
    let mp4 = fixture("hevc.mp4");
    let at = mp4
        .windows(4)
        .position(|w| w == b"hvcC")
        .expect("an hvcC box");
    let size = u32::from_be_bytes(mp4[at - 4..at].try_into().expect("4 bytes")) as usize;
    let hvcc = &mp4[at + 4..at - 4 + size];
    codec.add(
        "hevc-hvcc",
        &[&[1, 255][..], &hvcc[..255.min(hvcc.len())]].concat(),
    );
    let hevc = codecs::HevcDecoderConfig::parse(hvcc).expect("fixture hvcC");
    if let Some(sps) = hevc.nals_of_type(codecs::hevc::NAL_SPS).next() {
        codec.add("hevc-sps", &with(&[3], sps));
    }
    codec.add(
        "adts",
        &with(&[4], &[0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc]),
    );

    let mut hs = Seeds::new("rtmp_handshake");
    let mut chunk = Seeds::new("rtmp_chunk");
    let mut session = Seeds::new("rtmp_session");
    for c in CAPTURES {
        let data = fixture(c);
        let after = 1 + 2 * rtmp::handshake::HANDSHAKE_SIZE;
        hs.add(&stem(c), &with(&[200], &data[..after + 16]));
        chunk.add(&stem(c), &with(&[100], &data[after..after + 6000]));
        session.add(&format!("{}-8k", stem(c)), &data[..8 * 1024]);
        session.add(&format!("{}-16k", stem(c)), &data[..16 * 1024]);
        // The same messages behind a generated handshake (first byte: the policy bits).
        session.add(
            &format!("{}-auto", stem(c)),
            &with(&[2], &data[after..after + 6000]),
        );
    }
    let mut client = rtmp::handshake::ClientHandshake::new(5, true);
    let mut c1 = BytesMut::new();
    client.start(&mut c1);
    hs.add("digest-c0c1", &with(&[1], &c1));

    let mut rt = Seeds::new("rtmp_chunk_roundtrip");
    let mut amf_rt = Seeds::new("amf_roundtrip");
    let mut sdp = Seeds::new("sdp");
    let mut pk = Seeds::new("rtp_packetize");
    for i in 0..4 {
        rt.add(&format!("noise{i}"), &noise(i, 64 << i));
        amf_rt.add(&format!("noise{i}"), &noise(i + 10, 64 << i));
        sdp.add(&format!("noise{i}"), &noise(i + 20, 64 << i));
        pk.add(&format!("noise{i}"), &noise(i + 30, 256 << i));
    }

    rtsp_seeds();
    rtp_parse_seeds(&flv_files);
    mms_seeds();
    http_seeds();
}

fn rtsp_seeds() {
    let mut s = Seeds::new("rtsp");
    let url = "rtsp://127.0.0.1:8554/live/test";
    let session = [
        format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: Lavf59.27.100\r\n\r\n"),
        format!("DESCRIBE {url} RTSP/1.0\r\nAccept: application/sdp\r\nCSeq: 2\r\n\r\n"),
        format!("SETUP {url}/trackID=0 RTSP/1.0\r\nTransport: RTP/AVP/UDP;unicast;client_port=5000-5001\r\nCSeq: 3\r\n\r\n"),
        format!("SETUP {url}/trackID=1 RTSP/1.0\r\nTransport: RTP/AVP/UDP;unicast;client_port=5002-5003\r\nCSeq: 4\r\nSession: 1\r\n\r\n"),
        format!("PLAY {url}/ RTSP/1.0\r\nRange: npt=0.000-\r\nCSeq: 5\r\nSession: 1\r\n\r\n"),
        format!("GET_PARAMETER {url}/ RTSP/1.0\r\nCSeq: 6\r\nSession: 1\r\n\r\n"),
        format!("TEARDOWN {url}/ RTSP/1.0\r\nCSeq: 7\r\nSession: 1\r\n\r\n"),
    ]
    .concat();
    s.add("ffmpeg-udp", &with(&[0], session.as_bytes()));
    let tcp = [
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        format!("SETUP {url}/trackID=0 RTSP/1.0\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nCSeq: 2\r\n\r\n"),
        format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: 1\r\n\r\n"),
    ]
    .concat();
    let mut tcp = tcp.into_bytes();
    tcp.extend_from_slice(&[b'$', 1, 0, 8, 0x81, 201, 0, 1, 0, 0, 0, 1]);
    tcp.extend_from_slice(
        b"SET_PARAMETER rtsp://h/live/test RTSP/1.0\nCSeq: 9\nContent-Length: 4\n\nab\r\n",
    );
    s.add("tcp-interleaved", &with(&[0], &tcp));
    s.add("refused", &with(&[7], session.as_bytes()));
    s.add(
        "record",
        &with(
            &[0],
            b"ANNOUNCE rtsp://h/a/b RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 3\r\n\r\nv=0",
        ),
    );

    let mut t = Seeds::new("rtsp_transport");
    for h in [
        "RTP/AVP;unicast;client_port=5000-5001",
        "RTP/AVP/UDP;unicast;client_port=6970",
        "RTP/AVP/TCP;unicast;interleaved=0-1",
        "RTP/AVP/TCP;unicast",
        "RTP/SAVP;unicast;client_port=1-2, RTP/AVP;multicast, RTP/AVP;unicast;client_port=4588-4589;mode=\"PLAY\"",
    ] {
        t.add("header", h.as_bytes());
    }
}

fn rtp_parse_seeds(flv_files: &[(String, flv::FlvFile)]) {
    let mut s = Seeds::new("rtp_parse");
    let params = rtp::TrackParams {
        payload_type: 96,
        ssrc: 1,
        initial_sequence: 1,
        timestamp_offset: 0,
        mtu: 1400,
    };
    let (_, file) = &flv_files[0];
    let sh = file
        .tags
        .iter()
        .find(|t| t.tag_type == 9 && flv::classify(9, &t.body).sequence_header)
        .expect("avc sh");
    let config = codecs::AvcDecoderConfig::parse(&sh.body[5..]).expect("avcC");
    let key = file
        .tags
        .iter()
        .find(|t| t.tag_type == 9 && flv::classify(9, &t.body).keyframe)
        .expect("key");
    let nals: Vec<Bytes> = codecs::nal_units(&key.body.slice(5..), config.nal_length_size)
        .flatten()
        .collect();
    let mut p = rtp::h264::H264Packetizer::new(params, config.sps.clone(), config.pps.clone())
        .expect("mtu");
    let mut out = Vec::new();
    p.packetize(0, &nals, &mut out);
    for (i, pkt) in out.iter().take(4).enumerate() {
        s.add(&format!("h264-{i}"), pkt);
    }
    // A receiver report with one block, then SDES (what ffmpeg sends back).
    let mut rr = vec![
        0x81, 201, 0, 7, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0, 0, 0, 0,
        0, 0, 0,
    ];
    rr.extend_from_slice(&[0x81, 202, 0, 2, 0, 0, 0, 2, 1, 2, b'h', b'i']);
    s.add("rtcp-rr-sdes", &rr);
    s.add("rtcp-bye", &[0x81, 203, 0, 1, 0, 0, 0, 2]);
}

fn client_command(mid: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    let push32 = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_le_bytes());
    push32(&mut b, 1);
    push32(&mut b, mms::mmst::SESSION_ID);
    push32(&mut b, 0);
    b.extend_from_slice(b"MMS ");
    push32(&mut b, 0);
    push32(&mut b, seq);
    b.extend_from_slice(&[0; 12]);
    b.extend_from_slice(&mid.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes());
    b.extend_from_slice(body);
    let exact = b.len().div_ceil(8) * 8;
    b.resize(exact, 0);
    let first = (exact - 16) as u32;
    b[8..12].copy_from_slice(&first.to_le_bytes());
    b[16..20].copy_from_slice(&(first / 8).to_le_bytes());
    b[32..36].copy_from_slice(&(first / 8 - 2).to_le_bytes());
    b
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn mms_seeds() {
    use mms::mmst::cmd;
    let mut s = Seeds::new("mmst");
    let connect = client_command(
        cmd::CONNECT,
        0,
        &[
            u32s(&[0, 0x0004_000b, 0x0003_001c]),
            utf16("NSPlayer/7.0.0.1956; {7E667F5D-A661-495E-A512-F55686DDA178}; Host: x"),
        ]
        .concat(),
    );
    let funnel = client_command(cmd::FUNNEL_INFO, 1, &u32s(&[0x00f0_f0f0, 0x0004_000b]));
    let connect_funnel = client_command(
        cmd::CONNECT_FUNNEL,
        2,
        &[
            u32s(&[0, 0xffff_ffff, 0, 0x0098_9680, 2]),
            utf16("\\\\192.168.0.129\\TCP\\1037"),
        ]
        .concat(),
    );
    let open = client_command(
        cmd::OPEN_FILE,
        3,
        &[u32s(&[1, 0xffff_ffff, 0, 0]), utf16("live/test")].concat(),
    );
    let read = client_command(
        cmd::READ_BLOCK,
        4,
        &u32s(&[
            1,
            0,
            0,
            0x0080_0000,
            0xffff_ffff,
            0,
            0,
            0,
            0,
            0x40AC_2000,
            2,
            0,
        ]),
    );
    let switch = client_command(
        cmd::STREAM_SWITCH,
        5,
        &[
            u32s(&[2]),
            vec![0xff, 0xff, 1, 0, 0, 0, 0xff, 0xff, 2, 0, 0, 0],
        ]
        .concat(),
    );
    let play = client_command(
        cmd::START_PLAYING,
        6,
        &[
            u32s(&[1, 0x0001_FFFF, 0, 0, 0xffff_ffff, 0xffff_ffff]),
            vec![0xff, 0xff, 0xff, 0],
            u32s(&[4]),
        ]
        .concat(),
    );
    let pong = client_command(cmd::PONG, 7, &u32s(&[0, 0]));
    let stop = client_command(cmd::STOP_PLAYING, 8, &u32s(&[1, 1]));
    let close = client_command(cmd::CLOSE_FILE, 9, &u32s(&[1, 1]));
    let all = [
        connect,
        funnel,
        connect_funnel,
        open,
        read,
        switch,
        play,
        pong,
        stop,
        close,
    ]
    .concat();
    s.add("ffmpeg-sequence", &with(&[0], &all));
    s.add("refused", &with(&[1], &all));

    let mut h = Seeds::new("mmsh");
    h.add(
        "describe",
        b"NSPlayer/7.10.0.3059\nno-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\nxClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}",
    );
    h.add(
        "play",
        b"NSPlayer/7.10.0.3059\nno-cache,rate=1.000000,stream-time=0,stream-offset=4294967295:4294967295,request-context=2,max-duration=0\nxPlayStrm=1\nxClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\nstream-switch-count=2\nstream-switch-entry=ffff:1:0 ffff:2:0",
    );
}

fn http_seeds() {
    let mut s = Seeds::new("http_routes");
    for req in [
        "GET /live/test.flv\nHost: 127.0.0.1:8080",
        "HEAD /live/test.flv",
        "OPTIONS /live/test.flv\nOrigin: http://example.com",
        "GET /live/test.flv\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13",
        "GET /live/test/index.m3u8",
        "GET /live/test/s1-3.ts",
        "GET /live/test/s1-0.key",
        "GET /api/streams\nHost: [::1]:8080",
        "GET /api/streams/live/test",
        "GET /LiveEvents.asx\nHost: media.example:8080",
        "GET /live/test.ASX\nHost: [::1]",
        "GET /live/test\nUser-Agent: NSPlayer/7.10.0.3059\nPragma: no-cache,rate=1.000000,request-context=1\nPragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}",
        "GET /LiveEvents\nUser-Agent: NSPlayer/7.10.0.3059\nPragma: xPlayStrm=1,stream-switch-entry=ffff:1:0 ffff:2:0",
        "GET /",
        "GET /index.html",
        "GET /vendor/hls.js",
        "GET /../Cargo.toml",
        "GET /live/%2e%2e/x.flv?x=1#f",
    ] {
        s.add("req", req.as_bytes());
    }
}
