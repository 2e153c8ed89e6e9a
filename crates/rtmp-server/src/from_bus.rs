//! A playing connection's side of the bus: tags become RTMP chunks without
//! copying their payloads.
//!
//! Per viewer, only chunk headers are built (a type 0 header carrying the
//! tag's timestamp, then one type 3 header per further chunk); the payload is
//! the tag's shared `Bytes`, sliced per chunk. Several tags are gathered into
//! one bounded batch and written with vectored writes, which saves a system
//! call per tag. The start-up burst goes out at once; after it, with
//! [`Options::write_delay`](crate::Options::write_delay) set, a caught-up
//! viewer's tag waits that long for the tags that follow it, so one write
//! (and one wake-up) carries several tags for at most that much latency.

use std::io::{self, IoSlice};
use std::time::Duration;

use bus::{Event, Subscriber, Tag, TagKind};
use bytes::Bytes;
use rtmp::chunk::ChunkHeaderBytes;
use rtmp::ServerSession;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Most slices handed to one `write_vectored` call (Linux's IOV_MAX is 1024).
const MAX_IOVECS: usize = 512;

/// One piece of output: a chunk header built for this viewer, or shared bytes.
#[derive(Debug, Clone)]
pub enum Part {
    /// A chunk header.
    Header(ChunkHeaderBytes),
    /// Payload or session output.
    Data(Bytes),
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        match self {
            Part::Header(h) => h.as_ref(),
            Part::Data(b) => b,
        }
    }
}

/// An ordered batch of output parts for one viewer.
#[derive(Debug, Default)]
pub struct Batch {
    parts: Vec<Part>,
    tags: usize,
    payload_bytes: usize,
}

impl Batch {
    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Tags queued.
    pub fn tags(&self) -> usize {
        self.tags
    }

    /// Payload bytes queued.
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }

    /// Queues whatever the session has to send (status messages, control).
    pub fn session_output(&mut self, session: &mut ServerSession) {
        if session.has_output() {
            self.parts.push(Part::Data(session.take_output().freeze()));
        }
    }

    /// Queues one tag as chunks: headers built here, payload shared.
    pub fn tag(&mut self, session: &ServerSession, stream_id: u32, tag: &Tag) {
        let len = tag.data.len();
        // RTMP timestamps are 32-bit and wrap; players expect exactly that.
        let ch = session.media_chunking(stream_id, tag.kind.flv_type(), tag.timestamp as u32, len);
        self.parts.push(Part::Header(ch.first));
        let mut start = 0;
        while start < len || start == 0 {
            if start > 0 {
                self.parts.push(Part::Header(ch.continuation));
            }
            let end = (start + ch.chunk_size).min(len);
            if end > start {
                self.parts.push(Part::Data(tag.data.slice(start..end)));
            }
            if end >= len {
                break;
            }
            start = end;
        }
        self.tags += 1;
        self.payload_bytes += len;
    }

    /// Writes every part with vectored writes and empties the batch.
    pub async fn write_to<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> io::Result<()> {
        self.write_within(w, None).await.map(|_| ())
    }

    /// Like [`Batch::write_to`], but fails with [`io::ErrorKind::TimedOut`] once one write call
    /// has waited `send_timeout` without the socket accepting a byte (the peer stopped reading).
    /// A slow peer that keeps accepting bytes is never timed out. Returns the bytes written.
    pub async fn write_within<W: AsyncWrite + Unpin>(
        &mut self,
        w: &mut W,
        send_timeout: Option<Duration>,
    ) -> io::Result<u64> {
        let mut written = 0u64;
        let (mut idx, mut off) = (0usize, 0usize);
        while idx < self.parts.len() {
            let mut slices = Vec::with_capacity(MAX_IOVECS.min(self.parts.len() - idx));
            slices.push(IoSlice::new(&self.parts[idx].as_ref()[off..]));
            for p in self.parts[idx + 1..].iter().take(MAX_IOVECS - 1) {
                slices.push(IoSlice::new(p.as_ref()));
            }
            let mut n = match send_timeout {
                Some(limit) => tokio::time::timeout(limit, w.write_vectored(&slices))
                    .await
                    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??,
                None => w.write_vectored(&slices).await?,
            };
            written += n as u64;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            while n > 0 && idx < self.parts.len() {
                let left = self.parts[idx].as_ref().len() - off;
                if n >= left {
                    n -= left;
                    idx += 1;
                    off = 0;
                } else {
                    off += n;
                    n = 0;
                }
            }
        }
        self.parts.clear();
        self.tags = 0;
        self.payload_bytes = 0;
        // A TLS stream may hold the last records until flushed (a TCP socket holds nothing);
        // a peer that stopped reading must not hold the flush forever either.
        match send_timeout {
            Some(limit) => tokio::time::timeout(limit, w.flush())
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??,
            None => w.flush().await?,
        }
        Ok(written)
    }
}

/// A player attached to a bus stream.
pub struct Player {
    /// The bus subscription.
    pub subscriber: Subscriber,
    /// The RTMP message stream the client plays on.
    pub stream_id: u32,
    /// Play.Start was sent (false while waiting for a publisher).
    pub started: bool,
    /// When a waiting player gives up with StreamNotFound.
    pub wait_deadline: Option<Instant>,
    /// The client paused playback.
    pub paused: bool,
    /// `receiveAudio` state.
    pub audio: bool,
    /// `receiveVideo` state.
    pub video: bool,
    /// Tags written so far.
    pub tags_sent: u64,
    /// Bytes of media batches written so far.
    pub bytes_sent: u64,
    /// Whether an audio or video frame (not a sequence header) has been written: from then on
    /// the viewer is past its start-up and write batching may delay it.
    pub media_sent: bool,
}

impl Player {
    /// A player for `stream_id`; `started` says whether Play.Start was sent.
    pub fn new(
        subscriber: Subscriber,
        stream_id: u32,
        started: bool,
        wait_deadline: Option<Instant>,
    ) -> Self {
        Player {
            subscriber,
            stream_id,
            started,
            wait_deadline,
            paused: false,
            audio: true,
            video: true,
            tags_sent: 0,
            bytes_sent: 0,
            media_sent: false,
        }
    }

    /// Whether the client wants this tag.
    pub fn wants(&self, tag: &Tag) -> bool {
        match tag.kind {
            TagKind::Audio => self.audio,
            TagKind::Video => self.video,
            TagKind::Script => true,
        }
    }

    /// Adds one bus event to `batch`, starting playback first if the player
    /// was waiting for a publisher.
    pub fn queue_event(&mut self, session: &mut ServerSession, batch: &mut Batch, ev: &Event) {
        if !self.started {
            session.accept_play(self.stream_id);
            self.started = true;
            self.wait_deadline = None;
            if matches!(ev, Event::PublisherJoined) {
                // Play.Start already told the client the stream is on.
                batch.session_output(session);
                return;
            }
        }
        match ev {
            Event::Tag(tag) if self.wants(tag) => {
                batch.session_output(session);
                batch.tag(session, self.stream_id, tag);
                self.tags_sent += 1;
                self.media_sent |= tag.kind != TagKind::Script && !tag.sequence_header;
            }
            Event::Tag(_) => {}
            // A publisher that left may come back within the bus's grace period, and the player
            // carries on with the same timeline. NetStream.Play.UnpublishNotify now would end it:
            // ffmpeg's RTMP client stops reading at that status. So nothing is said until the
            // stream is removed from the bus (then the connection sends UnpublishNotify), and a
            // returning publisher's sequence headers simply follow as tags.
            Event::PublisherLeft | Event::PublisherJoined => {}
            _ => {}
        }
        batch.session_output(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtmp::chunk::ChunkDecoder;
    use rtmp::ServerSessionConfig;

    #[tokio::test]
    async fn batch_writes_decodable_chunks_without_copying_payloads() {
        let mut session = ServerSession::new(ServerSessionConfig::default());
        let payload = Bytes::from((0..300u32).map(|i| i as u8).collect::<Vec<u8>>());
        let tag = Tag::new(TagKind::Video, 0x0100_0005, payload.clone());
        let mut batch = Batch::default();
        batch.session_output(&mut session);
        batch.tag(&session, 1, &tag);
        batch.tag(&session, 1, &Tag::new(TagKind::Audio, 7, Bytes::new()));
        // Every payload part points into the tag's own buffer.
        for p in &batch.parts {
            if let Part::Data(b) = p {
                let inside = payload.as_ptr() as usize..payload.as_ptr() as usize + payload.len();
                assert!(inside.contains(&(b.as_ptr() as usize)));
            }
        }
        let mut out = Vec::new();
        batch.write_to(&mut out).await.expect("writes to a Vec");
        let mut d = ChunkDecoder::default();
        let mut buf = bytes::BytesMut::from(&out[..]);
        let m1 = d.decode(&mut buf).expect("valid").expect("video message");
        assert_eq!(
            (m1.type_id, m1.timestamp, m1.payload.clone()),
            (9, 0x0100_0005, payload)
        );
        let m2 = d.decode(&mut buf).expect("valid").expect("audio message");
        assert_eq!((m2.type_id, m2.timestamp, m2.payload.len()), (8, 7, 0));
    }
}
