//! The RTMP chunk stream (RTMP 1.0 specification, section 5.3): splitting
//! messages into chunks and joining chunks back into messages.
//!
//! The decoder never parses a chunk until every byte of it is buffered, so a
//! short read is always "need more bytes" (`Ok(None)`) and never a half-applied
//! header. Lengths from the wire are checked against the configured maximum
//! message size before anything is reserved.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Chunk size both sides use until a Set Chunk Size message changes it (5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;

/// Largest chunk size the spec allows: the top bit of the field must be zero
/// (5.4.1).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;

/// Default cap on one message's length. The 24-bit length field can express
/// up to 16 MiB - 1, so a 16 MiB cap would never fire; 8 MiB is still several
/// times the largest keyframe a 4K encoder at 50 Mbit/s sends.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 8 * 1024 * 1024;

/// Most chunk streams one peer may have open at once. Real clients use
/// fewer than ten (2 for control, 3 for commands, 4-8 for media).
pub const MAX_CHUNK_STREAMS: usize = 64;

/// Timestamp field value that announces an extended timestamp (5.3.1.3).
const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;

/// Bytes reserved up front for a message being reassembled; the rest grows
/// as chunks arrive, so a lying length costs nothing until data backs it.
const INITIAL_RESERVE: usize = 64 * 1024;

/// Errors in the chunk stream; every one is framing corruption, fatal to the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// A type 1, 2 or 3 chunk on a chunk stream that never carried a type 0
    /// header, so its message header cannot be completed (5.3.1.2).
    #[error("chunk stream {csid} used with fmt {fmt} before any fmt 0 header")]
    StreamNotOpened {
        /// Chunk stream id.
        csid: u32,
        /// The chunk's header type.
        fmt: u8,
    },
    /// A message longer than the configured maximum.
    #[error("message of {length} bytes on chunk stream {csid} exceeds the maximum of {max}")]
    MessageTooLarge {
        /// Chunk stream id.
        csid: u32,
        /// The declared length.
        length: u32,
        /// The configured maximum.
        max: u32,
    },
    /// A Set Chunk Size of 0 or above [`MAX_CHUNK_SIZE`].
    #[error("invalid chunk size {0}")]
    InvalidChunkSize(u32),
    /// A new message header while the previous message on that chunk stream
    /// was still incomplete, with a different length or type.
    #[error("chunk stream {csid} changed its message header mid-message")]
    HeaderChangedMidMessage {
        /// Chunk stream id.
        csid: u32,
    },
    /// More simultaneously used chunk streams than [`MAX_CHUNK_STREAMS`].
    #[error("more than {MAX_CHUNK_STREAMS} chunk streams in use")]
    TooManyChunkStreams,
    /// Partial messages on all chunk streams together exceed the budget.
    #[error("partial messages exceed {limit} bytes across chunk streams")]
    TooMuchBuffered {
        /// The budget in bytes (twice the maximum message size).
        limit: usize,
    },
    /// A protocol control message whose body is too short.
    #[error("protocol control message type {0} too short")]
    ShortControlMessage(u8),
}

/// One complete RTMP message as reassembled from chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The chunk stream it arrived on.
    pub csid: u32,
    /// Absolute timestamp in milliseconds (wraps at 2^32).
    pub timestamp: u32,
    /// Message type id (5.4, 6.2, 7.1).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// The message body.
    pub payload: Bytes,
}

#[derive(Debug, Default)]
struct ChunkStreamState {
    timestamp: u32,
    /// The last timestamp field (absolute for fmt 0, a delta otherwise), used
    /// again by a type 3 header that starts a new message.
    ts_field: u32,
    /// Whether the last header carried an extended timestamp.
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    partial: BytesMut,
    in_progress: bool,
}

/// A parsed chunk header (basic header, message header, extended timestamp).
struct ChunkHeader {
    fmt: u8,
    csid: u32,
    header_len: usize,
    ts_field: Option<u32>,
    extended: bool,
    length: Option<u32>,
    type_id: Option<u8>,
    stream_id: Option<u32>,
}

/// Joins chunks into messages.
#[derive(Debug)]
pub struct ChunkDecoder {
    chunk_size: u32,
    max_message_size: u32,
    streams: HashMap<u32, ChunkStreamState>,
    /// Bytes held in partial messages across all chunk streams.
    buffered: usize,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_SIZE)
    }
}

impl ChunkDecoder {
    /// Creates a decoder that rejects messages longer than `max_message_size`.
    pub fn new(max_message_size: u32) -> Self {
        ChunkDecoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_message_size,
            streams: HashMap::new(),
            buffered: 0,
        }
    }

    /// The chunk size the peer currently sends with.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Applies a Set Chunk Size from the peer.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkError::InvalidChunkSize(size));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops the partial message on `csid` (Abort Message, 5.4.2).
    pub fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.get_mut(&csid) {
            self.buffered -= s.partial.len();
            s.partial.clear();
            s.in_progress = false;
        }
    }

    /// Decodes chunks from `buf` until a message completes (`Ok(Some)`), or
    /// returns `Ok(None)` when `buf` holds no further complete chunk.
    ///
    /// Set Chunk Size (type 1) and Abort (type 2) are applied here, before the
    /// next chunk is parsed, and still returned to the caller.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            let Some(header) = self.parse_header(buf)? else {
                return Ok(None);
            };
            let state = self.streams.get(&header.csid);
            let remaining = match state {
                Some(s) if s.in_progress => s.length as usize - s.partial.len(),
                Some(s) => header.length.unwrap_or(s.length) as usize,
                None => header.length.unwrap_or(0) as usize,
            };
            let body = remaining.min(self.chunk_size as usize);
            if buf.len() < header.header_len + body {
                return Ok(None);
            }
            buf.advance(header.header_len);
            let data = buf.split_to(body);
            if let Some(msg) = self.apply(header, data)? {
                self.control(&msg)?;
                return Ok(Some(msg));
            }
        }
    }

    /// Parses the header at the front of `buf` without consuming anything.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<ChunkHeader>, ChunkError> {
        let Some((fmt, csid, mut pos)) = basic_header(buf) else {
            return Ok(None);
        };
        let state = self.streams.get(&csid);
        if fmt != 0 && state.is_none() {
            return Err(ChunkError::StreamNotOpened { csid, fmt });
        }
        let mh_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(mh) = buf.get(pos..pos + mh_len) else {
            return Ok(None);
        };
        pos += mh_len;
        let mut h = ChunkHeader {
            fmt,
            csid,
            header_len: pos,
            ts_field: None,
            extended: false,
            length: None,
            type_id: None,
            stream_id: None,
        };
        if fmt <= 2 {
            h.ts_field = Some(be24(&mh[0..3]));
        }
        if fmt <= 1 {
            let length = be24(&mh[3..6]);
            if length > self.max_message_size {
                let max = self.max_message_size;
                return Err(ChunkError::MessageTooLarge { csid, length, max });
            }
            h.length = Some(length);
            h.type_id = Some(mh[6]);
        }
        if fmt == 0 {
            h.stream_id = Some(u32::from_le_bytes([mh[7], mh[8], mh[9], mh[10]]));
        }
        if fmt == 0 && state.is_none() && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(ChunkError::TooManyChunkStreams);
        }
        Ok(extended_timestamp(buf, state, h))
    }
}

impl ChunkDecoder {
    /// Applies a parsed header and its chunk body to the chunk stream state,
    /// returning the message when this chunk completes it.
    fn apply(&mut self, h: ChunkHeader, data: BytesMut) -> Result<Option<RawMessage>, ChunkError> {
        let s = self.streams.entry(h.csid).or_default();
        if h.fmt != 3 || !s.in_progress {
            if s.in_progress {
                // A new header mid-message: only tolerated when it restates
                // the same message (some encoders send fmt 0 continuations).
                if h.length.is_some_and(|l| l != s.length) {
                    return Err(ChunkError::HeaderChangedMidMessage { csid: h.csid });
                }
            } else {
                start_message(s, &h);
            }
        }
        if s.partial.is_empty() && data.len() == s.length as usize {
            // Single-chunk message: hand the chunk's buffer over without a copy.
            s.in_progress = false;
            return Ok(Some(finish(h.csid, s, data.freeze())));
        }
        // Partial messages on all chunk streams together may hold at most
        // twice the largest message, so interleaving many half-sent messages
        // cannot multiply the per-message limit.
        let budget = 2 * self.max_message_size as usize;
        if self.buffered + data.len() > budget {
            return Err(ChunkError::TooMuchBuffered { limit: budget });
        }
        if s.partial.capacity() == 0 {
            s.partial.reserve((s.length as usize).min(INITIAL_RESERVE));
        }
        s.partial.extend_from_slice(&data);
        self.buffered += data.len();
        if s.partial.len() < s.length as usize {
            s.in_progress = true;
            return Ok(None);
        }
        s.in_progress = false;
        self.buffered -= s.partial.len();
        let payload = s.partial.split().freeze();
        Ok(Some(finish(h.csid, s, payload)))
    }

    /// Applies Set Chunk Size and Abort as soon as they are decoded, since they
    /// change how the very next chunk is framed.
    fn control(&mut self, msg: &RawMessage) -> Result<(), ChunkError> {
        if msg.csid != 2 && msg.stream_id != 0 {
            return Ok(());
        }
        match msg.type_id {
            1 => {
                let b = msg
                    .payload
                    .get(0..4)
                    .ok_or(ChunkError::ShortControlMessage(1))?;
                // The top bit must be zero; mask it as FFmpeg and librtmp write
                // it as zero anyway, then validate the remainder.
                self.set_chunk_size(be32(b))
            }
            2 => {
                let b = msg
                    .payload
                    .get(0..4)
                    .ok_or(ChunkError::ShortControlMessage(2))?;
                self.abort(be32(b));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Reads the extended timestamp if one follows the message header, or
/// returns `None` when its bytes have not arrived yet.
fn extended_timestamp(
    buf: &[u8],
    state: Option<&ChunkStreamState>,
    mut h: ChunkHeader,
) -> Option<ChunkHeader> {
    let pos = h.header_len;
    let ext = buf.get(pos..pos + 4).map(be32);
    match h.ts_field {
        Some(EXTENDED_TIMESTAMP) => {
            h.ts_field = Some(ext?);
            h.extended = true;
            h.header_len += 4;
        }
        Some(_) => {}
        None => {
            // A type 3 chunk after a header with an extended timestamp
            // repeats it (5.3.1.3; Flash Player, FFmpeg, OBS), but some
            // encoders omit it on continuation chunks. Accept both: consume
            // the four bytes only when they equal the value we expect. The
            // decision waits until four bytes are buffered, so an "omit"
            // chunk shorter than four bytes is decoded when more data follows.
            let Some(s) = state.filter(|s| s.extended) else {
                return Some(h);
            };
            if ext? == s.ts_field {
                h.header_len += 4;
            }
        }
    }
    Some(h)
}

fn start_message(s: &mut ChunkStreamState, h: &ChunkHeader) {
    match h.fmt {
        0 => {
            let field = h.ts_field.unwrap_or(0);
            s.timestamp = field;
            s.ts_field = field;
        }
        1 | 2 => {
            let field = h.ts_field.unwrap_or(0);
            s.timestamp = s.timestamp.wrapping_add(field);
            s.ts_field = field;
        }
        _ => s.timestamp = s.timestamp.wrapping_add(s.ts_field),
    }
    if h.fmt <= 2 {
        s.extended = h.extended;
    }
    if let Some(l) = h.length {
        s.length = l;
    }
    if let Some(t) = h.type_id {
        s.type_id = t;
    }
    if let Some(id) = h.stream_id {
        s.stream_id = id;
    }
    s.partial.clear();
}

fn finish(csid: u32, s: &ChunkStreamState, payload: Bytes) -> RawMessage {
    RawMessage {
        csid,
        timestamp: s.timestamp,
        type_id: s.type_id,
        stream_id: s.stream_id,
        payload,
    }
}

/// Parses a basic header: `(fmt, csid, length)`, or `None` if incomplete.
fn basic_header(buf: &[u8]) -> Option<(u8, u32, usize)> {
    let b0 = *buf.first()?;
    let fmt = b0 >> 6;
    match b0 & 0x3f {
        0 => Some((fmt, 64 + u32::from(*buf.get(1)?), 2)),
        1 => {
            let (lo, hi) = (*buf.get(1)?, *buf.get(2)?);
            Some((fmt, 64 + u32::from(lo) + 256 * u32::from(hi), 3))
        }
        id => Some((fmt, u32::from(id), 1)),
    }
}

fn be24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The smallest chunk stream id and the largest one a 3-byte basic header
/// can carry (5.3.1.1).
pub const MIN_CSID: u32 = 2;
/// See [`MIN_CSID`].
pub const MAX_CSID: u32 = 65_599;

/// A serialized chunk header, at most 3 + 11 + 4 bytes, kept inline so that
/// building one per viewer costs no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeaderBytes {
    bytes: [u8; 18],
    len: u8,
}

impl ChunkHeaderBytes {
    fn new() -> Self {
        ChunkHeaderBytes {
            bytes: [0; 18],
            len: 0,
        }
    }

    fn push(&mut self, b: &[u8]) {
        let start = usize::from(self.len);
        self.bytes[start..start + b.len()].copy_from_slice(b);
        self.len += b.len() as u8;
    }
}

impl AsRef<[u8]> for ChunkHeaderBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The headers needed to send one message: a type 0 header for the first
/// chunk and the type 3 header that precedes every later chunk. A caller
/// interleaves them with slices of the (shared) payload.
#[derive(Clone, Copy, Debug)]
pub struct MessageChunking {
    /// Type 0 header of the first chunk.
    pub first: ChunkHeaderBytes,
    /// Type 3 header of each continuation chunk.
    pub continuation: ChunkHeaderBytes,
    /// Payload bytes per chunk.
    pub chunk_size: usize,
}

impl MessageChunking {
    /// Builds the headers for a message; `csid` must lie in
    /// [`MIN_CSID`]..=[`MAX_CSID`] (an internal invariant: ids are chosen by
    /// us, never by the peer).
    pub fn new(
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        length: u32,
        chunk_size: u32,
    ) -> Self {
        assert!(
            (MIN_CSID..=MAX_CSID).contains(&csid),
            "csid chosen by the encoder is in range"
        );
        let ext = timestamp >= EXTENDED_TIMESTAMP;
        let mut first = ChunkHeaderBytes::new();
        put_basic_header(&mut first, 0, csid);
        first.push(&timestamp.min(EXTENDED_TIMESTAMP).to_be_bytes()[1..]);
        first.push(&length.to_be_bytes()[1..]);
        first.push(&[type_id]);
        first.push(&stream_id.to_le_bytes());
        let mut continuation = ChunkHeaderBytes::new();
        put_basic_header(&mut continuation, 3, csid);
        if ext {
            // Repeat the extended timestamp on type 3 chunks, as Flash Player
            // and FFmpeg expect (5.3.1.3).
            first.push(&timestamp.to_be_bytes());
            continuation.push(&timestamp.to_be_bytes());
        }
        MessageChunking {
            first,
            continuation,
            chunk_size: chunk_size as usize,
        }
    }

    /// The number of chunks a payload of `len` bytes takes.
    pub fn chunk_count(&self, len: usize) -> usize {
        len.div_ceil(self.chunk_size).max(1)
    }

    /// Appends header and payload chunks to `out` (copies the payload; used
    /// for control and command messages).
    pub fn write(&self, payload: &[u8], out: &mut BytesMut) {
        out.reserve(payload.len() + self.chunk_count(payload.len()) * 18);
        out.put_slice(self.first.as_ref());
        for (i, chunk) in payload.chunks(self.chunk_size).enumerate() {
            if i > 0 {
                out.put_slice(self.continuation.as_ref());
            }
            out.put_slice(chunk);
        }
    }
}

fn put_basic_header(h: &mut ChunkHeaderBytes, fmt: u8, csid: u32) {
    if csid < 64 {
        h.push(&[(fmt << 6) | csid as u8]);
    } else if csid < 320 {
        h.push(&[fmt << 6, (csid - 64) as u8]);
    } else {
        let v = csid - 64;
        h.push(&[(fmt << 6) | 1, (v & 0xff) as u8, (v >> 8) as u8]);
    }
}

/// Splits messages into chunks with our outgoing chunk size.
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: u32,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

impl ChunkEncoder {
    /// The chunk size currently used for outgoing chunks.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the outgoing chunk size; the caller must send the Set Chunk
    /// Size message (with the old size) first.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkError::InvalidChunkSize(size));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// The headers for sending one message with the current chunk size.
    pub fn chunking(
        &self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        length: usize,
    ) -> MessageChunking {
        MessageChunking::new(
            csid,
            timestamp,
            type_id,
            stream_id,
            length as u32,
            self.chunk_size,
        )
    }

    /// Appends one whole message as chunks to `out`.
    pub fn write(
        &self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        self.chunking(csid, timestamp, type_id, stream_id, payload.len())
            .write(payload, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) -> RawMessage {
        RawMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// Decodes `wire` in one go and compares the messages.
    fn check(name: &str, wire: &[u8], want: &[RawMessage]) {
        let mut d = ChunkDecoder::default();
        let mut buf = BytesMut::from(wire);
        let mut got = Vec::new();
        while let Some(m) = d.decode(&mut buf).unwrap_or_else(|e| panic!("{name}: {e}")) {
            got.push(m);
        }
        assert_eq!(got, want, "{name}");
        assert!(buf.is_empty(), "{name}: {} bytes left", buf.len());
    }

    #[test]
    fn header_types_and_csid_widths() {
        let cases: Vec<(&str, Vec<u8>, Vec<RawMessage>)> = vec![
            (
                "fmt0 1-byte csid",
                vec![0x03, 0, 0, 10, 0, 0, 2, 20, 1, 0, 0, 0, b'h', b'i'],
                vec![msg(3, 10, 20, 1, b"hi")],
            ),
            (
                "fmt0 2-byte csid",
                vec![0x00, 0x06, 0, 0, 10, 0, 0, 1, 9, 1, 0, 0, 0, 7],
                vec![msg(70, 10, 9, 1, &[7])],
            ),
            (
                "fmt0 3-byte csid",
                vec![0x01, 0x10, 0x02, 0, 0, 10, 0, 0, 1, 9, 1, 0, 0, 0, 7],
                vec![msg(64 + 0x10 + 0x200, 10, 9, 1, &[7])],
            ),
            (
                "fmt1 then fmt2 then fmt3 new message (delta repeated)",
                vec![
                    0x04, 0, 0, 100, 0, 0, 1, 8, 1, 0, 0, 0, 1, // fmt0 ts=100
                    0x44, 0, 0, 20, 0, 0, 2, 9, 2, 2, // fmt1 delta=20 len=2 type=9
                    0x84, 0, 0, 30, 3, 3, // fmt2 delta=30
                    0xC4, 4, 4, // fmt3 delta=30 again
                ],
                vec![
                    msg(4, 100, 8, 1, &[1]),
                    msg(4, 120, 9, 1, &[2, 2]),
                    msg(4, 150, 9, 1, &[3, 3]),
                    msg(4, 180, 9, 1, &[4, 4]),
                ],
            ),
            (
                "fmt1 with an extended timestamp delta",
                [
                    &[0x04, 0, 0, 10, 0, 0, 1, 8, 1, 0, 0, 0, 1][..],
                    &[0x44, 0xff, 0xff, 0xff, 0, 0, 1, 8],
                    &0x0100_0000u32.to_be_bytes(),
                    &[2],
                ]
                .concat(),
                vec![msg(4, 10, 8, 1, &[1]), msg(4, 0x0100_000A, 8, 1, &[2])],
            ),
            (
                "fmt0 restating the header mid-message",
                [
                    &[0x04, 0, 0, 5, 0, 0, 130, 9, 1, 0, 0, 0][..],
                    &[0xAA; 128],
                    &[0x04, 0, 0, 5, 0, 0, 130, 9, 1, 0, 0, 0],
                    &[0xBB; 2],
                ]
                .concat(),
                vec![msg(
                    4,
                    5,
                    9,
                    1,
                    &[[0xAA; 128].as_slice(), &[0xBB; 2]].concat(),
                )],
            ),
            (
                "extended timestamp repeated on continuation",
                [
                    &[0x04, 0xff, 0xff, 0xff, 0, 0, 130, 9, 1, 0, 0, 0][..],
                    &0x0100_0000u32.to_be_bytes(),
                    &[0xAA; 128],
                    &[0xC4],
                    &0x0100_0000u32.to_be_bytes(),
                    &[0xBB; 2],
                ]
                .concat(),
                vec![msg(
                    4,
                    0x0100_0000,
                    9,
                    1,
                    &[[0xAA; 128].as_slice(), &[0xBB; 2]].concat(),
                )],
            ),
            (
                "extended timestamp omitted on continuation",
                [
                    &[0x04, 0xff, 0xff, 0xff, 0, 0, 134, 9, 1, 0, 0, 0][..],
                    &0x0100_0000u32.to_be_bytes(),
                    &[0xAA; 128],
                    &[0xC4],
                    &[0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x11],
                ]
                .concat(),
                vec![msg(
                    4,
                    0x0100_0000,
                    9,
                    1,
                    &[
                        [0xAA; 128].as_slice(),
                        &[0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x11],
                    ]
                    .concat(),
                )],
            ),
        ];
        for (name, wire, want) in cases {
            check(name, &wire, &want);
        }
    }

    #[test]
    fn chunk_size_change_mid_stream() {
        let mut enc = ChunkEncoder::default();
        let mut wire = BytesMut::new();
        let big = vec![5u8; 300];
        enc.write(4, 0, 9, 1, &big, &mut wire);
        enc.write(2, 0, 1, 0, &200u32.to_be_bytes(), &mut wire);
        enc.set_chunk_size(200).expect("valid size");
        enc.write(4, 40, 9, 1, &big, &mut wire);
        check(
            "set chunk size",
            &wire,
            &[
                msg(4, 0, 9, 1, &big),
                msg(2, 0, 1, 0, &200u32.to_be_bytes()),
                msg(4, 40, 9, 1, &big),
            ],
        );
    }

    #[test]
    fn interleaved_chunk_streams() {
        let audio = vec![1u8; 200];
        let video = vec![2u8; 200];
        let a = MessageChunking::new(4, 5, 8, 1, 200, 128);
        let v = MessageChunking::new(6, 7, 9, 1, 200, 128);
        let mut wire = Vec::new();
        wire.extend_from_slice(a.first.as_ref());
        wire.extend_from_slice(&audio[..128]);
        wire.extend_from_slice(v.first.as_ref());
        wire.extend_from_slice(&video[..128]);
        wire.extend_from_slice(a.continuation.as_ref());
        wire.extend_from_slice(&audio[128..]);
        wire.extend_from_slice(v.continuation.as_ref());
        wire.extend_from_slice(&video[128..]);
        check(
            "interleaved",
            &wire,
            &[msg(4, 5, 8, 1, &audio), msg(6, 7, 9, 1, &video)],
        );
    }

    #[test]
    fn abort_drops_partial_message() {
        let mut wire = BytesMut::new();
        let c = MessageChunking::new(4, 0, 9, 1, 200, 128);
        wire.extend_from_slice(c.first.as_ref());
        wire.extend_from_slice(&[9u8; 128]);
        ChunkEncoder::default().write(2, 0, 2, 0, &4u32.to_be_bytes(), &mut wire);
        ChunkEncoder::default().write(4, 3, 9, 1, &[1], &mut wire);
        check(
            "abort",
            &wire,
            &[msg(2, 0, 2, 0, &4u32.to_be_bytes()), msg(4, 3, 9, 1, &[1])],
        );
    }

    #[test]
    fn errors() {
        let cases: Vec<(&str, Vec<u8>, ChunkError)> = vec![
            (
                "fmt1 on unopened stream",
                vec![0x45, 0, 0, 0, 0, 0, 1, 9],
                ChunkError::StreamNotOpened { csid: 5, fmt: 1 },
            ),
            (
                "fmt3 on unopened stream",
                vec![0xC7, 0],
                ChunkError::StreamNotOpened { csid: 7, fmt: 3 },
            ),
            (
                "chunk size zero",
                vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                ChunkError::InvalidChunkSize(0),
            ),
            (
                "chunk size with top bit",
                vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x80, 0, 0, 0],
                ChunkError::InvalidChunkSize(0x8000_0000),
            ),
        ];
        for (name, wire, want) in cases {
            let mut d = ChunkDecoder::default();
            let mut buf = BytesMut::from(&wire[..]);
            let got = loop {
                match d.decode(&mut buf) {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("{name}: no error"),
                    Err(e) => break e,
                }
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn message_too_large_against_configured_max() {
        let mut d = ChunkDecoder::new(1000);
        let mut buf = BytesMut::from(&[0x04, 0, 0, 0, 0, 0x03, 0xE9, 9, 1, 0, 0, 0][..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(ChunkError::MessageTooLarge {
                csid: 4,
                length: 1001,
                max: 1000
            })
        );
    }

    #[test]
    fn interleaved_partial_messages_share_one_budget() {
        let mut d = ChunkDecoder::new(1000);
        d.set_chunk_size(600).expect("valid size");
        let mut wire = BytesMut::new();
        for csid in 4..8 {
            let c = MessageChunking::new(csid, 0, 9, 1, 1000, 600);
            wire.extend_from_slice(c.first.as_ref());
            wire.extend_from_slice(&[0u8; 600]);
        }
        let got = loop {
            match d.decode(&mut wire) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert_eq!(got, ChunkError::TooMuchBuffered { limit: 2000 });
    }

    #[test]
    fn partial_chunk_is_need_more_bytes() {
        let mut d = ChunkDecoder::default();
        let wire = [0x03, 0, 0, 10, 0, 0, 2, 20, 1, 0, 0, 0, b'h', b'i'];
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(d.decode(&mut buf), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut, "nothing consumed at {cut}");
        }
    }
}
