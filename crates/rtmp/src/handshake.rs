//! The RTMP handshake (RTMP 1.0 specification, section 5.2) in its plain form
//! and in the digest ("complex") form that Flash Player, FMLE and many
//! hardware encoders use, and that some players verify in our reply.
//!
//! Plain: C1 carries time, four zero bytes and random data; the server
//! answers S1 (its own random data) and S2 (an echo of C1).
//!
//! Digest: C1 bytes 4..8 carry a non-zero version and C1 embeds an
//! HMAC-SHA256 digest keyed with the first 30 bytes of the Flash Player key,
//! at an offset found with scheme 0 (offset bytes at 8..12) or scheme 1
//! (offset bytes at 772..776). The server then embeds its own digest in S1
//! (Flash Media Server key, first 36 bytes) and signs S2 with a key derived
//! from C1's digest. When C1 validates under neither scheme we fall back to
//! the plain reply, which every client that sent a plain C1 expects.

use bytes::{Buf, BufMut, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Size of C1, C2, S1 and S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// The only RTMP version we speak (C0/S0). 6 would be RTMPE.
pub const RTMP_VERSION: u8 = 3;

const DIGEST_LEN: usize = 32;

/// The shared tail of the Flash Player and Flash Media Server keys.
const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
const PLAYER_KEY_TEXT: &[u8; 30] = b"Genuine Adobe Flash Player 001";
const SERVER_KEY_TEXT: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";
/// Version we announce in a digest S1, as FMS 4.5 does.
const SERVER_VERSION: [u8; 4] = [0x04, 0x05, 0x00, 0x01];
/// Version a digest C1 announces (Flash Player 10-era); used by our client
/// only when asked for the digest form.
const CLIENT_VERSION: [u8; 4] = [0x0A, 0x00, 0x2D, 0x02];

/// Errors during the handshake; all are fatal to the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// C0/S0 announced a version other than 3 (RTMPE uses 6).
    #[error("unsupported RTMP version {0} (only 3 is supported)")]
    UnsupportedVersion(u8),
}

/// Which handshake form the server answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// Plain echo handshake.
    Plain,
    /// Digest handshake, with the C1 digest found by the given scheme (0 or 1).
    Digest {
        /// 0 or 1.
        scheme: u8,
    },
}

/// A small deterministic generator for handshake filler bytes. The handshake
/// bytes are not secret; seeding keeps the core free of clock and OS reads.
#[derive(Debug, Clone)]
pub(crate) struct FillRng(u64);

impl FillRng {
    pub(crate) fn new(seed: u64) -> Self {
        FillRng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn full_key(text: &[u8]) -> Vec<u8> {
    [text, &KEY_TAIL[..]].concat()
}

/// Offset of the digest inside a 1536-byte C1/S1 for `scheme`.
fn digest_offset(block: &[u8; HANDSHAKE_SIZE], scheme: u8) -> usize {
    let base = if scheme == 0 { 8 } else { 772 };
    let sum: usize = block[base..base + 4].iter().map(|&b| usize::from(b)).sum();
    sum % 728 + base + 4
}

/// The digest of `block` with its digest bytes at `offset` left out.
fn block_digest(block: &[u8; HANDSHAKE_SIZE], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac(key, &[&block[..offset], &block[offset + DIGEST_LEN..]])
}

/// Finds the scheme under which C1's embedded digest validates.
fn find_client_digest(c1: &[u8; HANDSHAKE_SIZE]) -> Option<(u8, [u8; DIGEST_LEN])> {
    (0u8..2).find_map(|scheme| {
        let off = digest_offset(c1, scheme);
        let want = block_digest(c1, off, PLAYER_KEY_TEXT);
        (c1[off..off + DIGEST_LEN] == want).then_some((scheme, want))
    })
}

/// Writes a digest into `block` at the position `scheme` selects.
fn embed_digest(block: &mut [u8; HANDSHAKE_SIZE], scheme: u8, key: &[u8]) {
    let off = digest_offset(block, scheme);
    let d = block_digest(block, off, key);
    block[off..off + DIGEST_LEN].copy_from_slice(&d);
}

/// Builds S0 + S1 + S2 answering `c1`.
fn server_reply(
    c1: &[u8; HANDSHAKE_SIZE],
    rng: &mut FillRng,
    epoch: u32,
) -> (Vec<u8>, HandshakeKind) {
    let mut s1 = [0u8; HANDSHAKE_SIZE];
    rng.fill(&mut s1[8..]);
    s1[0..4].copy_from_slice(&epoch.to_be_bytes());
    let digest = if c1[4..8] == [0; 4] {
        None
    } else {
        find_client_digest(c1)
    };
    let mut out = Vec::with_capacity(1 + 2 * HANDSHAKE_SIZE);
    out.push(RTMP_VERSION);
    let Some((scheme, c1_digest)) = digest else {
        out.extend_from_slice(&s1);
        out.extend_from_slice(c1);
        return (out, HandshakeKind::Plain);
    };
    s1[4..8].copy_from_slice(&SERVER_VERSION);
    embed_digest(&mut s1, scheme, SERVER_KEY_TEXT);
    let mut s2 = [0u8; HANDSHAKE_SIZE];
    rng.fill(&mut s2);
    let key = hmac(&full_key(SERVER_KEY_TEXT), &[&c1_digest]);
    let sig = hmac(&key, &[&s2[..HANDSHAKE_SIZE - DIGEST_LEN]]);
    s2[HANDSHAKE_SIZE - DIGEST_LEN..].copy_from_slice(&sig);
    out.extend_from_slice(&s1);
    out.extend_from_slice(&s2);
    (out, HandshakeKind::Digest { scheme })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// The server side of the handshake.
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
    rng: FillRng,
    epoch: u32,
    kind: Option<HandshakeKind>,
}

impl ServerHandshake {
    /// Creates a server handshake; `seed` feeds the filler bytes and `epoch`
    /// is the time field written into S1.
    pub fn new(seed: u64, epoch: u32) -> Self {
        ServerHandshake {
            state: ServerState::AwaitC0C1,
            rng: FillRng::new(seed),
            epoch,
            kind: None,
        }
    }

    /// True once C2 has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }

    /// The form we answered with, once C1 has been seen.
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.kind
    }

    /// Consumes handshake bytes from `buf`, appending our reply to `out`.
    /// Bytes after C2 stay in `buf` for the chunk decoder.
    pub fn feed(&mut self, buf: &mut BytesMut, out: &mut BytesMut) -> Result<(), HandshakeError> {
        if self.state == ServerState::AwaitC0C1 {
            if let Some(&v) = buf.first() {
                if v != RTMP_VERSION {
                    return Err(HandshakeError::UnsupportedVersion(v));
                }
            }
            if buf.len() < 1 + HANDSHAKE_SIZE {
                return Ok(());
            }
            buf.advance(1);
            let mut c1 = [0u8; HANDSHAKE_SIZE];
            buf.copy_to_slice(&mut c1);
            let (reply, kind) = server_reply(&c1, &mut self.rng, self.epoch);
            out.put_slice(&reply);
            self.kind = Some(kind);
            self.state = ServerState::AwaitC2;
        }
        if self.state == ServerState::AwaitC2 && buf.len() >= HANDSHAKE_SIZE {
            // C2 is not verified: several encoders send garbage there and no
            // server we interoperate with rejects it.
            buf.advance(HANDSHAKE_SIZE);
            self.state = ServerState::Done;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Start,
    AwaitS0S1S2,
    Done,
}

/// The client side of the handshake (plain by default, digest on request).
#[derive(Debug)]
pub struct ClientHandshake {
    state: ClientState,
    rng: FillRng,
    digest: bool,
}

impl ClientHandshake {
    /// Creates a client handshake; `digest` selects the complex C1 form.
    pub fn new(seed: u64, digest: bool) -> Self {
        ClientHandshake {
            state: ClientState::Start,
            rng: FillRng::new(seed),
            digest,
        }
    }

    /// True once S0-S2 have been consumed and C2 written.
    pub fn is_done(&self) -> bool {
        self.state == ClientState::Done
    }

    /// Appends C0 + C1 to `out`; call once at the start.
    pub fn start(&mut self, out: &mut BytesMut) {
        let mut c1 = [0u8; HANDSHAKE_SIZE];
        self.rng.fill(&mut c1[8..]);
        if self.digest {
            c1[4..8].copy_from_slice(&CLIENT_VERSION);
            embed_digest(&mut c1, 0, PLAYER_KEY_TEXT);
        }
        out.put_u8(RTMP_VERSION);
        out.put_slice(&c1);
        self.state = ClientState::AwaitS0S1S2;
    }

    /// Consumes S0 + S1 + S2 from `buf` and appends C2 (an echo of S1).
    pub fn feed(&mut self, buf: &mut BytesMut, out: &mut BytesMut) -> Result<(), HandshakeError> {
        if self.state != ClientState::AwaitS0S1S2 {
            return Ok(());
        }
        if let Some(&v) = buf.first() {
            if v != RTMP_VERSION {
                return Err(HandshakeError::UnsupportedVersion(v));
            }
        }
        if buf.len() < 1 + 2 * HANDSHAKE_SIZE {
            return Ok(());
        }
        buf.advance(1);
        let s1 = buf.split_to(HANDSHAKE_SIZE);
        buf.advance(HANDSHAKE_SIZE);
        out.put_slice(&s1);
        self.state = ClientState::Done;
        Ok(())
    }
}

/// Checks that a digest S1/S2 pair answers the digest C1 we sent (used by tests
/// to prove the server's reply is what Flash Player verifies).
pub fn verify_server_digest(
    c1: &[u8; HANDSHAKE_SIZE],
    s1: &[u8; HANDSHAKE_SIZE],
    s2: &[u8; HANDSHAKE_SIZE],
) -> bool {
    let Some((scheme, c1_digest)) = find_client_digest(c1) else {
        return false;
    };
    let off = digest_offset(s1, scheme);
    let s1_ok = s1[off..off + DIGEST_LEN] == block_digest(s1, off, SERVER_KEY_TEXT);
    let key = hmac(&full_key(SERVER_KEY_TEXT), &[&c1_digest]);
    let sig = hmac(&key, &[&s2[..HANDSHAKE_SIZE - DIGEST_LEN]]);
    s1_ok && s2[HANDSHAKE_SIZE - DIGEST_LEN..] == sig
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c1_for(scheme: Option<u8>, seed: u64) -> [u8; HANDSHAKE_SIZE] {
        let mut c1 = [0u8; HANDSHAKE_SIZE];
        FillRng::new(seed).fill(&mut c1[8..]);
        if let Some(s) = scheme {
            c1[4..8].copy_from_slice(&CLIENT_VERSION);
            embed_digest(&mut c1, s, PLAYER_KEY_TEXT);
        }
        c1
    }

    fn run_server(
        c1: &[u8; HANDSHAKE_SIZE],
        split: usize,
    ) -> (ServerHandshake, BytesMut, BytesMut) {
        let mut hs = ServerHandshake::new(7, 0);
        let mut wire = BytesMut::new();
        wire.put_u8(3);
        wire.put_slice(c1);
        wire.put_slice(&[0u8; HANDSHAKE_SIZE]);
        wire.put_slice(b"tail");
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        for piece in wire.chunks(split) {
            buf.extend_from_slice(piece);
            hs.feed(&mut buf, &mut out).expect("valid handshake");
        }
        (hs, buf, out)
    }

    #[test]
    fn server_answers_each_form() {
        let cases = [
            (None, HandshakeKind::Plain),
            (Some(0), HandshakeKind::Digest { scheme: 0 }),
            (Some(1), HandshakeKind::Digest { scheme: 1 }),
        ];
        for (scheme, want) in cases {
            for split in [1, 7, 1537, 5000] {
                let c1 = c1_for(scheme, 42);
                let (hs, rest, out) = run_server(&c1, split);
                assert!(hs.is_done(), "{scheme:?} split {split}");
                assert_eq!(hs.kind(), Some(want));
                assert_eq!(&rest[..], b"tail");
                assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
                let s1: [u8; HANDSHAKE_SIZE] =
                    out[1..1 + HANDSHAKE_SIZE].try_into().expect("s1 size");
                let s2: [u8; HANDSHAKE_SIZE] =
                    out[1 + HANDSHAKE_SIZE..].try_into().expect("s2 size");
                match want {
                    HandshakeKind::Plain => assert_eq!(s2, c1, "S2 echoes C1"),
                    HandshakeKind::Digest { .. } => assert!(verify_server_digest(&c1, &s1, &s2)),
                }
            }
        }
    }

    #[test]
    fn non_zero_version_with_bad_digest_falls_back_to_plain() {
        let mut c1 = c1_for(None, 3);
        c1[4..8].copy_from_slice(&CLIENT_VERSION);
        let (hs, _, out) = run_server(&c1, 4096);
        assert_eq!(hs.kind(), Some(HandshakeKind::Plain));
        assert_eq!(&out[1 + HANDSHAKE_SIZE..], &c1[..]);
    }

    #[test]
    fn rejects_other_versions() {
        let mut hs = ServerHandshake::new(1, 0);
        let mut buf = BytesMut::from(&[6u8][..]);
        assert_eq!(
            hs.feed(&mut buf, &mut BytesMut::new()),
            Err(HandshakeError::UnsupportedVersion(6))
        );
    }

    #[test]
    fn client_and_server_complete() {
        for digest in [false, true] {
            let mut client = ClientHandshake::new(1, digest);
            let mut server = ServerHandshake::new(2, 0);
            let (mut c2s, mut s2c) = (BytesMut::new(), BytesMut::new());
            client.start(&mut c2s);
            server
                .feed(&mut c2s, &mut s2c)
                .expect("server accepts C0C1");
            client
                .feed(&mut s2c, &mut c2s)
                .expect("client accepts S0S1S2");
            server.feed(&mut c2s, &mut s2c).expect("server accepts C2");
            assert!(client.is_done() && server.is_done(), "digest={digest}");
            let want = if digest {
                HandshakeKind::Digest { scheme: 0 }
            } else {
                HandshakeKind::Plain
            };
            assert_eq!(server.kind(), Some(want));
        }
    }
}
