//! One module per fuzz target; each exposes `run(data: &[u8])`, which panics on a violated
//! invariant.

pub mod amf0;
pub mod amf3;
pub mod amf_roundtrip;
pub mod codec_config;
pub mod flv;
pub mod http_routes;
pub mod mmsh;
pub mod mmst;
pub mod remux;
pub mod rtmp_chunk;
pub mod rtmp_chunk_roundtrip;
pub mod rtmp_handshake;
pub mod rtmp_session;
pub mod rtp_packetize;
pub mod rtp_parse;
pub mod rtsp;
pub mod rtsp_transport;
pub mod sdp;

/// Equality through `Debug`, so NaN equals NaN and -0.0 differs from 0.0: what a byte-exact
/// round trip means for trees of floats.
pub(crate) fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// Splits `data` into pieces whose sizes come from `sizes` (cycled; 0 means 1), for feeding
/// incremental decoders the way a socket would.
pub(crate) fn pieces<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .map_or(rest.len(), |&s| usize::from(s).max(1));
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
        i += 1;
    }
    out
}
