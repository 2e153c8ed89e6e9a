//! The RTMP chunk decoder on raw bytes: decoding the whole buffer at once and decoding it as it
//! trickles in (in arbitrary pieces) must give the same messages and the same error, since
//! "need more bytes" is a state, never a half-applied header.

use bytes::BytesMut;
use rtmp::{ChunkDecoder, ChunkError, RawMessage};

/// A small cap so that the size checks fire on short inputs too.
const MAX_MESSAGE: u32 = 4096;

pub fn run(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let whole = decode(&[rest]);
    let trickled = decode(&super::pieces(rest, &[split, 1, split / 3, 7]));
    assert_eq!(
        whole, trickled,
        "whole-buffer and incremental decoding agree"
    );
}

fn decode(pieces: &[&[u8]]) -> (Vec<RawMessage>, Option<ChunkError>) {
    let mut d = ChunkDecoder::new(MAX_MESSAGE);
    let mut buf = BytesMut::new();
    let mut msgs = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= MAX_MESSAGE as usize);
                    msgs.push(m);
                }
                Ok(None) => break,
                Err(e) => return (msgs, Some(e)),
            }
        }
    }
    (msgs, None)
}
