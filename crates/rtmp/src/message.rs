//! Message types carried on the chunk stream: protocol control messages
//! (5.4), user control events (6.2, 7.1.7) and aggregate messages (7.1.6).

use bytes::{BufMut, Bytes, BytesMut};

use crate::chunk::RawMessage;

/// Message type ids (5.4, 7.1).
pub mod type_id {
    /// Set Chunk Size (5.4.1).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (5.4.2).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (5.4.3).
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message (6.2).
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (5.4.4).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (5.4.5).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data (7.1.4).
    pub const AUDIO: u8 = 8;
    /// Video data (7.1.5).
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3 (7.1.2).
    pub const DATA_AMF3: u8 = 15;
    /// Shared object message, AMF3 (7.1.3).
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command message, AMF3 (7.1.1).
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message, AMF0 (7.1.2).
    pub const DATA_AMF0: u8 = 18;
    /// Shared object message, AMF0 (7.1.3).
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command message, AMF0 (7.1.1).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message (7.1.6).
    pub const AGGREGATE: u8 = 22;
}

/// Chunk stream ids we send on. Control must be 2 (5.4); the others follow
/// the conventions of FMS and nginx-rtmp, which some players rely on.
pub mod csid {
    /// Protocol control and user control messages.
    pub const CONTROL: u32 = 2;
    /// NetConnection commands.
    pub const COMMAND: u32 = 3;
    /// NetStream status and data messages.
    pub const STREAM_COMMAND: u32 = 5;
    /// Audio.
    pub const AUDIO: u32 = 6;
    /// Video.
    pub const VIDEO: u32 = 7;
}

/// A User Control event (6.2, 7.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserControlEvent {
    /// The stream became functional.
    StreamBegin(u32),
    /// Playback of the stream ended.
    StreamEof(u32),
    /// No more data on the stream for now.
    StreamDry(u32),
    /// The client's buffer length in milliseconds.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        millis: u32,
    },
    /// The stream is recorded.
    StreamIsRecorded(u32),
    /// Liveness probe carrying a timestamp.
    PingRequest(u32),
    /// Answer to a ping, echoing its timestamp.
    PingResponse(u32),
    /// Any other event type, ignored.
    Other(u16),
}

impl UserControlEvent {
    /// Parses a User Control message body; `None` if it is too short.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let kind = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
        let arg = |i: usize| {
            b.get(i..i + 4)
                .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
        };
        Some(match kind {
            0 => Self::StreamBegin(arg(2)?),
            1 => Self::StreamEof(arg(2)?),
            2 => Self::StreamDry(arg(2)?),
            3 => Self::SetBufferLength {
                stream_id: arg(2)?,
                millis: arg(6)?,
            },
            4 => Self::StreamIsRecorded(arg(2)?),
            6 => Self::PingRequest(arg(2)?),
            7 => Self::PingResponse(arg(2)?),
            other => Self::Other(other),
        })
    }

    /// Serializes the event body.
    pub fn to_bytes(self) -> Vec<u8> {
        let (kind, a, b) = match self {
            Self::StreamBegin(s) => (0u16, s, None),
            Self::StreamEof(s) => (1, s, None),
            Self::StreamDry(s) => (2, s, None),
            Self::SetBufferLength { stream_id, millis } => (3, stream_id, Some(millis)),
            Self::StreamIsRecorded(s) => (4, s, None),
            Self::PingRequest(t) => (6, t, None),
            Self::PingResponse(t) => (7, t, None),
            Self::Other(k) => (k, 0, None),
        };
        let mut out = Vec::with_capacity(10);
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&a.to_be_bytes());
        if let Some(b) = b {
            out.extend_from_slice(&b.to_be_bytes());
        }
        out
    }
}

/// Errors splitting an aggregate message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    /// A sub-message header or body runs past the end of the aggregate.
    #[error("aggregate sub-message at byte {offset} runs past the end")]
    Truncated {
        /// Offset of the sub-message header inside the aggregate body.
        offset: usize,
    },
}

/// Size of an FLV-style sub-message header inside an aggregate (7.1.6).
const SUB_HEADER: usize = 11;
/// Size of the back pointer after each sub-message.
const BACK_POINTER: usize = 4;

/// Splits an aggregate message into its sub-messages (7.1.6). Sub-message
/// timestamps are rebased so the first one equals the aggregate's timestamp.
/// Payloads are slices of the aggregate's buffer, not copies.
pub fn split_aggregate(msg: &RawMessage) -> Result<Vec<RawMessage>, AggregateError> {
    let body = &msg.payload;
    let mut out = Vec::new();
    let mut pos = 0;
    let mut base: Option<u32> = None;
    while pos < body.len() {
        let h = body
            .get(pos..pos + SUB_HEADER)
            .ok_or(AggregateError::Truncated { offset: pos })?;
        let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let start = pos + SUB_HEADER;
        let end = start + len;
        if end + BACK_POINTER > body.len() {
            return Err(AggregateError::Truncated { offset: pos });
        }
        let first = *base.get_or_insert(ts);
        out.push(RawMessage {
            csid: msg.csid,
            timestamp: msg.timestamp.wrapping_add(ts.wrapping_sub(first)),
            type_id: h[0],
            stream_id: msg.stream_id,
            payload: body.slice(start..end),
        });
        pos = end + BACK_POINTER;
    }
    Ok(out)
}

/// Builds an aggregate body from `(type_id, timestamp, payload)` triples;
/// used by tests and by clients that batch.
pub fn build_aggregate(parts: &[(u8, u32, &[u8])]) -> Bytes {
    let mut out = BytesMut::new();
    for (type_id, ts, payload) in parts {
        out.put_u8(*type_id);
        out.put_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        out.put_slice(&ts.to_be_bytes()[1..]);
        out.put_u8((ts >> 24) as u8);
        out.put_slice(&[0, 0, 0]);
        out.put_slice(payload);
        out.put_u32((SUB_HEADER + payload.len()) as u32);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_control_round_trip() {
        let cases = [
            UserControlEvent::StreamBegin(1),
            UserControlEvent::StreamEof(1),
            UserControlEvent::StreamDry(2),
            UserControlEvent::SetBufferLength {
                stream_id: 1,
                millis: 3000,
            },
            UserControlEvent::StreamIsRecorded(1),
            UserControlEvent::PingRequest(99),
            UserControlEvent::PingResponse(99),
        ];
        for ev in cases {
            assert_eq!(UserControlEvent::parse(&ev.to_bytes()), Some(ev));
        }
        assert_eq!(
            UserControlEvent::parse(&[0, 3, 0, 0, 0, 1]),
            None,
            "SetBufferLength needs 8 bytes"
        );
    }

    #[test]
    fn aggregate_splits_and_rebases() {
        let body = build_aggregate(&[(9, 1000, b"vid"), (8, 1020, b"au"), (9, 1040, b"v2")]);
        let agg = RawMessage {
            csid: 6,
            timestamp: 50,
            type_id: type_id::AGGREGATE,
            stream_id: 1,
            payload: body,
        };
        let subs = split_aggregate(&agg).expect("valid aggregate");
        let got: Vec<(u8, u32, &[u8])> = subs
            .iter()
            .map(|m| (m.type_id, m.timestamp, &m.payload[..]))
            .collect();
        assert_eq!(
            got,
            vec![
                (9, 50, &b"vid"[..]),
                (8, 70, &b"au"[..]),
                (9, 90, &b"v2"[..])
            ]
        );
        let cut = RawMessage {
            payload: agg.payload.slice(..agg.payload.len() - 1),
            ..agg
        };
        assert_eq!(
            split_aggregate(&cut),
            Err(AggregateError::Truncated { offset: 35 })
        );
    }
}
