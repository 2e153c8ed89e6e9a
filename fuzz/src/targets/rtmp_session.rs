//! The RTMP server session, bytes in and events out. Input that starts with the RTMP version
//! byte is a client's byte stream from the handshake on (the seeds are real publisher
//! captures); anything else gets a valid handshake put in front, its first byte choosing the
//! answers to publish/play requests. Whatever comes in, the bytes the session writes back must
//! be a well-formed chunk stream that our own decoder reads to the end.

use bytes::BytesMut;
use rtmp::handshake::{HANDSHAKE_SIZE, RTMP_VERSION};
use rtmp::{ChunkDecoder, ServerSession, ServerSessionConfig, ServerSessionEvent};

pub fn run(data: &[u8]) {
    let Some(&first) = data.first() else {
        return;
    };
    let (input, policy) = if first == RTMP_VERSION {
        (data.to_vec(), data.len() as u8)
    } else {
        let mut v = vec![RTMP_VERSION];
        v.resize(1 + 2 * HANDSHAKE_SIZE, 0);
        v.extend_from_slice(&data[1..]);
        (v, first)
    };
    let config = ServerSessionConfig {
        max_message_size: 64 * 1024,
        window_ack_size: 4096,
        ..ServerSessionConfig::default()
    };
    let mut s = ServerSession::new(config);
    let mut out = Output::default();
    for piece in super::pieces(&input, &[policy, 255, policy.wrapping_mul(7), 40]) {
        if s.feed(piece).is_err() {
            break;
        }
        if drain(&mut s, policy).is_err() {
            out.check(&mut s);
            break;
        }
        out.check(&mut s);
    }
}

fn drain(s: &mut ServerSession, policy: u8) -> Result<(), rtmp::SessionError> {
    while let Some(ev) = s.poll_event()? {
        match ev {
            ServerSessionEvent::PublishRequested { stream_id, .. } if policy & 1 == 0 => {
                s.accept_publish(stream_id)
            }
            ServerSessionEvent::PublishRequested { stream_id, .. } => {
                s.reject_publish(stream_id, "refused")
            }
            ServerSessionEvent::PlayRequested { stream_id, .. } if policy & 2 == 0 => {
                s.accept_play(stream_id);
                s.send_media(stream_id, 9, 0, &[0x17, 0, 0, 0, 0, 1, 2, 3]);
                s.notify_unpublished(stream_id);
                s.notify_published(stream_id);
            }
            ServerSessionEvent::PlayRequested { stream_id, .. } => {
                s.reject_play(stream_id, "not live")
            }
            ServerSessionEvent::Audio { data, .. } | ServerSessionEvent::Video { data, .. } => {
                let _ = flv::classify(9, &data);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads what the session wrote back, as a client would.
#[derive(Default)]
struct Output {
    handshake: usize,
    buf: BytesMut,
    decoder: ChunkDecoder,
}

impl Output {
    fn check(&mut self, s: &mut ServerSession) {
        let mut bytes = s.take_output();
        let skip = (1 + 2 * HANDSHAKE_SIZE - self.handshake).min(bytes.len());
        let _ = bytes.split_to(skip);
        self.handshake += skip;
        self.buf.extend_from_slice(&bytes);
        while let Some(m) = self
            .decoder
            .decode(&mut self.buf)
            .expect("our output decodes")
        {
            if m.type_id == 20 {
                amf::decode_amf0_all(&m.payload).expect("our commands are valid AMF0");
            }
        }
        assert!(self.buf.is_empty(), "the session writes whole messages");
    }
}
