//! The RTMP handshake (plain and digest C1) fed in socket-sized pieces: it must never panic,
//! must answer exactly S0+S1+S2 once C0+C1 are in, and must leave the bytes after C2 untouched.

use bytes::BytesMut;
use rtmp::handshake::{ClientHandshake, ServerHandshake, HANDSHAKE_SIZE};

pub fn run(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    server(rest, split);
    client(rest, split);
}

fn server(data: &[u8], split: u8) {
    let mut hs = ServerHandshake::new(u64::from(split), 7);
    let (mut buf, mut out) = (BytesMut::new(), BytesMut::new());
    let mut fed = 0;
    for piece in super::pieces(data, &[split, split.rotate_left(3), 200]) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        if hs.feed(&mut buf, &mut out).is_err() {
            assert_ne!(
                data[0],
                rtmp::handshake::RTMP_VERSION,
                "version 3 is accepted"
            );
            return;
        }
        if fed > 1 + HANDSHAKE_SIZE {
            assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE, "S0+S1+S2 once C1 is in");
        } else if fed <= HANDSHAKE_SIZE {
            assert!(out.is_empty(), "no reply before C1 is complete");
        }
        if fed > 2 * HANDSHAKE_SIZE {
            assert!(hs.is_done());
            assert_eq!(
                buf.len(),
                fed - (1 + 2 * HANDSHAKE_SIZE),
                "bytes after C2 stay"
            );
        }
    }
}

/// The client side against our own server, then against the input as S0S1S2.
fn client(data: &[u8], split: u8) {
    let digest = split & 1 == 1;
    let mut c = ClientHandshake::new(u64::from(split), digest);
    let mut s = ServerHandshake::new(3, 9);
    let (mut c_out, mut s_out) = (BytesMut::new(), BytesMut::new());
    c.start(&mut c_out);
    let c1: [u8; HANDSHAKE_SIZE] = c_out[1..].try_into().expect("C1 is HANDSHAKE_SIZE bytes");
    s.feed(&mut c_out, &mut s_out)
        .expect("our own C0+C1 is accepted");
    if digest {
        let s1 = s_out[1..=HANDSHAKE_SIZE].try_into().expect("S1 size");
        let s2 = s_out[1 + HANDSHAKE_SIZE..].try_into().expect("S2 size");
        assert!(
            rtmp::handshake::verify_server_digest(&c1, s1, s2),
            "digest answer verifies"
        );
    }
    let mut other = ClientHandshake::new(1, digest);
    let mut out = BytesMut::new();
    other.start(&mut out);
    let mut buf = BytesMut::from(data);
    let _ = other.feed(&mut buf, &mut out);
}
