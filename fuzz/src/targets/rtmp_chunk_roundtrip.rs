//! Structure-aware RTMP chunking: arbitrary messages (any chunk stream id, timestamp, type,
//! stream id and payload, extended timestamps included) and Set Chunk Size changes are chunked
//! by our encoder, interleaved across chunk streams as the spec allows (5.3.1), and fed to the
//! decoder in arbitrary pieces; it must give back exactly the messages sent, in completion order.

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use rtmp::chunk::{MessageChunking, MAX_CSID, MIN_CSID};
use rtmp::{ChunkDecoder, RawMessage};

#[derive(Debug, Arbitrary)]
enum Op {
    Message {
        csid: u16,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: Vec<u8>,
    },
    /// Flush every message in flight, then change the chunk size.
    SetChunkSize(u16),
    /// Send the next chunk of the in-flight message picked by this index.
    Step(u8),
}

struct InFlight {
    msg: RawMessage,
    chunking: MessageChunking,
    sent: usize,
}

impl InFlight {
    fn write_chunk(&mut self, out: &mut BytesMut) -> bool {
        let header = if self.sent == 0 {
            self.chunking.first
        } else {
            self.chunking.continuation
        };
        out.extend_from_slice(header.as_ref());
        let end = (self.sent + self.chunking.chunk_size).min(self.msg.payload.len());
        out.extend_from_slice(&self.msg.payload[self.sent..end]);
        self.sent = end;
        end == self.msg.payload.len()
    }
}

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ops) = Vec::<Op>::arbitrary(&mut u) else {
        return;
    };
    let splits = Vec::<u8>::arbitrary(&mut u).unwrap_or_default();
    let (wire, sent) = encode(ops);
    let mut d = ChunkDecoder::new(0xFF_FFFF);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for piece in super::pieces(&wire, &splits) {
        buf.extend_from_slice(piece);
        while let Some(m) = d.decode(&mut buf).expect("our own chunk stream decodes") {
            got.push(m);
        }
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    assert_eq!(
        got, sent,
        "the decoder returns the messages the encoder chunked"
    );
}

/// Chunks the operations; returns the wire bytes and the messages in completion order.
fn encode(ops: Vec<Op>) -> (Vec<u8>, Vec<RawMessage>) {
    let mut chunk_size = rtmp::chunk::DEFAULT_CHUNK_SIZE;
    let mut flying: Vec<InFlight> = Vec::new();
    let mut out = BytesMut::new();
    let mut done = Vec::new();
    for op in ops {
        match op {
            Op::Message {
                csid,
                timestamp,
                type_id,
                stream_id,
                payload,
            } => {
                // Ids 0 and 1 select the longer basic headers; 2 carries protocol control,
                // which the decoder applies, so user messages use 3 and up.
                let csid = (MIN_CSID + 1 + u32::from(csid)).min(MAX_CSID);
                // Types 1 and 2 are Set Chunk Size and Abort, applied by the decoder itself.
                let type_id = if type_id <= 2 { type_id + 3 } else { type_id };
                if let Some(i) = flying.iter().position(|f| f.msg.csid == csid) {
                    finish(&mut flying, i, &mut out, &mut done);
                }
                let msg = RawMessage {
                    csid,
                    timestamp,
                    type_id,
                    stream_id,
                    payload: Bytes::from(payload),
                };
                let len = msg.payload.len() as u32;
                let chunking =
                    MessageChunking::new(csid, timestamp, type_id, stream_id, len, chunk_size);
                flying.push(InFlight {
                    msg,
                    chunking,
                    sent: 0,
                });
                let last = flying.len() - 1;
                if flying[last].write_chunk(&mut out) {
                    done.push(flying.remove(last).msg);
                }
            }
            Op::SetChunkSize(size) => {
                while !flying.is_empty() {
                    finish(&mut flying, 0, &mut out, &mut done);
                }
                let size = u32::from(size).max(1);
                let payload = Bytes::copy_from_slice(&size.to_be_bytes());
                let chunking = MessageChunking::new(2, 0, 1, 0, 4, chunk_size);
                chunking.write(&payload, &mut out);
                done.push(RawMessage {
                    csid: 2,
                    timestamp: 0,
                    type_id: 1,
                    stream_id: 0,
                    payload,
                });
                chunk_size = size;
            }
            Op::Step(i) if !flying.is_empty() => {
                let i = usize::from(i) % flying.len();
                if flying[i].write_chunk(&mut out) {
                    done.push(flying.remove(i).msg);
                }
            }
            Op::Step(_) => {}
        }
    }
    while !flying.is_empty() {
        finish(&mut flying, 0, &mut out, &mut done);
    }
    (out.to_vec(), done)
}

fn finish(flying: &mut Vec<InFlight>, i: usize, out: &mut BytesMut, done: &mut Vec<RawMessage>) {
    while !flying[i].write_chunk(out) {}
    done.push(flying.remove(i).msg);
}
