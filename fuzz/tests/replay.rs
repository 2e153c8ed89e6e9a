//! Replays every committed corpus file and crash regression through its target, without
//! libFuzzer: `cargo test` in `fuzz/` (scripts/fuzz runs it first).

use std::path::Path;

use gateway_fuzz::targets;

fn replay(name: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("a readable corpus directory").path();
        let data = std::fs::read(&path).expect("a readable corpus file");
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{name}: {} fails", path.display());
        n += 1;
    }
    eprintln!("{name}: {n} inputs replayed");
}

macro_rules! replay_tests {
    ($($t:ident),* $(,)?) => {
        $(
            #[test]
            fn $t() {
                replay(stringify!($t), targets::$t::run);
            }
        )*
    };
}

replay_tests!(
    amf0,
    amf3,
    amf_roundtrip,
    codec_config,
    flv,
    http_routes,
    mmsh,
    mmst,
    remux,
    rtmp_chunk,
    rtmp_chunk_roundtrip,
    rtmp_handshake,
    rtmp_session,
    rtp_packetize,
    rtp_parse,
    rtsp,
    rtsp_transport,
    sdp,
);
