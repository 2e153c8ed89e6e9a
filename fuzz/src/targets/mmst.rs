//! An MMST client's command stream, fed in pieces to the server session, OpenFile answered
//! from the input. Whatever comes in, what the session writes must read back as the client
//! reads it: sealed reports padded to 8 bytes with the to-client direction, and data packets
//! whose prefix gives their length.

use bytes::{Bytes, BytesMut};
use mms::mmst::{CommandDecoder, ServerSession, SessionEvent, SEAL, SESSION_ID};

pub fn run(data: &[u8]) {
    let Some((&policy, rest)) = data.split_first() else {
        return;
    };
    let mut s = ServerSession::new();
    let mut out = Vec::new();
    'feed: for piece in super::pieces(rest, &[policy, 64, policy.wrapping_add(17)]) {
        if s.handle_input(piece).is_err() {
            break;
        }
        loop {
            out.extend(std::iter::from_fn(|| s.poll_transmit()).flatten());
            let Some(ev) = s.poll_event() else {
                break;
            };
            let answer = match ev {
                SessionEvent::OpenFile { path } if policy & 1 == 0 && !path.is_empty() => {
                    s.accept_open(Bytes::from(vec![0xAB; 100 + usize::from(policy)]), 4096)
                }
                SessionEvent::OpenFile { .. } => s.reject_open(mms::mmst::NS_E_FILE_NOT_FOUND),
                SessionEvent::Play => {
                    let prefix = s.media_prefix(4096);
                    out.extend_from_slice(&prefix);
                    out.resize(out.len() + 4096, 0);
                    s.end_of_stream();
                    Ok(())
                }
                _ => Ok(()),
            };
            if answer.is_err() {
                break 'feed;
            }
        }
    }
    out.extend(std::iter::from_fn(|| s.poll_transmit()).flatten());
    read_back(&out);
    // The bare decoder on the raw input.
    let mut d = CommandDecoder::default();
    let mut buf = BytesMut::from(rest);
    while let Ok(Some(c)) = d.decode(&mut buf) {
        assert!(c.body.len() <= mms::mmst::MAX_COMMAND_LEN);
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

/// Reads the server's bytes the way ffmpeg's `get_tcp_server_response` does.
fn read_back(mut b: &[u8]) {
    while !b.is_empty() {
        assert!(b.len() >= 8, "a whole prefix");
        if le32(b, 4) == SESSION_ID {
            let total = le32(b, 8) as usize + 16;
            assert!(total >= 40 && total <= b.len(), "a whole report");
            assert_eq!(total % 8, 0, "reports are padded to 8 bytes");
            assert_eq!(le32(b, 12), SEAL);
            assert_eq!(le16(b, 38), 4, "direction to client");
            b = &b[total..];
        } else {
            let len = usize::from(le16(b, 6));
            assert!(len >= 8 && len <= b.len(), "a whole data packet");
            b = &b[len..];
        }
    }
}
