//! A viewer's (or remuxer's) bounded view of one stream.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::{Event, Protocol, Stream, Tag, TagKind};

/// How often at most a lagging subscriber logs its drops.
const LAG_WARN_INTERVAL: Duration = Duration::from_secs(1);

/// Receives one stream's tags: first the start-up snapshot (metadata, sequence headers, the GOP
/// from its keyframe), then live tags.
///
/// Its queue is the stream's bounded ring of [`crate::BusOptions::queue_tags`] events, shared by all
/// subscribers: the publisher never waits for anyone. A subscriber that falls a whole ring behind
/// loses the oldest events; it then skips to the next video keyframe, counts what it skipped, and
/// re-sends any sequence header or metadata that changed meanwhile, so decoders never lose their
/// configuration.
pub struct Subscriber {
    stream: Arc<Stream>,
    rx: broadcast::Receiver<Event>,
    pending: VecDeque<Event>,
    protocol: Protocol,
    /// After a lag: drop media until the next video keyframe.
    resync: bool,
    dropped: u64,
    unreported_drops: u64,
    last_warn: Option<Instant>,
    /// The configuration tags this subscriber has delivered, to re-send them if they change
    /// while it lags.
    sent_metadata: Option<Bytes>,
    sent_video_header: Option<Bytes>,
    sent_audio_header: Option<Bytes>,
    closed: bool,
}

/// What one received channel item means for the caller.
enum Step {
    Deliver(Event),
    Skip,
    End,
}

impl Subscriber {
    pub(crate) fn new(
        stream: Arc<Stream>,
        rx: broadcast::Receiver<Event>,
        snapshot: Vec<Tag>,
        protocol: Protocol,
        closed: bool,
    ) -> Subscriber {
        stream.viewers[protocol.index()].fetch_add(1, Ordering::Relaxed);
        Subscriber {
            stream,
            rx,
            pending: snapshot.into_iter().map(Event::Tag).collect(),
            protocol,
            resync: false,
            dropped: 0,
            unreported_drops: 0,
            last_warn: None,
            sent_metadata: None,
            sent_video_header: None,
            sent_audio_header: None,
            closed,
        }
    }

    /// The stream this subscriber reads.
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Tags this subscriber skipped because it fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The next event; `None` once the stream has been removed from the bus.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.next_pending() {
                return Some(ev);
            }
            if self.closed {
                return None;
            }
            let received = self.rx.recv().await;
            match self.step(received) {
                Step::Deliver(ev) => return Some(self.note(ev)),
                Step::Skip => continue,
                Step::End => return None,
            }
        }
    }

    /// The next event if one is ready now, for callers that batch writes. `None` means nothing is
    /// ready (or the stream is gone; [`Subscriber::recv`] tells the two apart).
    pub fn try_recv(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.next_pending() {
                return Some(ev);
            }
            if self.closed {
                return None;
            }
            let received = match self.rx.try_recv() {
                Ok(ev) => Ok(ev),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
            match self.step(received) {
                Step::Deliver(ev) => return Some(self.note(ev)),
                Step::Skip => continue,
                Step::End => return None,
            }
        }
    }

    fn next_pending(&mut self) -> Option<Event> {
        let ev = self.pending.pop_front()?;
        Some(self.note(ev))
    }

    fn step(&mut self, received: Result<Event, RecvError>) -> Step {
        match received {
            Ok(Event::Closed) | Err(RecvError::Closed) => {
                self.closed = true;
                Step::End
            }
            Ok(Event::Tag(tag)) => self.filter(tag),
            Ok(ev) => Step::Deliver(ev),
            Err(RecvError::Lagged(n)) => {
                self.on_lag(n);
                Step::Skip
            }
        }
    }

    /// While resynchronising, only configuration tags and the next keyframe get through.
    fn filter(&mut self, tag: Tag) -> Step {
        if !self.resync {
            return Step::Deliver(Event::Tag(tag));
        }
        if tag.sequence_header || tag.kind == TagKind::Script {
            // `on_lag` already re-sent the current configuration; skip an identical copy still
            // waiting in the ring.
            if self
                .sent_slot(&tag)
                .is_some_and(|sent| sent.as_ref() == Some(&tag.data))
            {
                return Step::Skip;
            }
            return Step::Deliver(Event::Tag(tag));
        }
        let restart_point =
            tag.is_video_keyframe() || (tag.kind == TagKind::Audio && !self.stream.has_video());
        if restart_point {
            self.resync = false;
            return Step::Deliver(Event::Tag(tag));
        }
        self.count_drops(1);
        Step::Skip
    }

    fn on_lag(&mut self, n: u64) {
        self.count_drops(n);
        self.resync = true;
        let (metadata, video, audio) = {
            let inner = self.stream.lock();
            let c = &inner.cache;
            (
                c.metadata.clone(),
                c.video_header.clone(),
                c.audio_header.clone(),
            )
        };
        for (current, sent) in [
            (metadata, &self.sent_metadata),
            (video, &self.sent_video_header),
            (audio, &self.sent_audio_header),
        ] {
            if let Some(tag) = current.filter(|t| sent.as_ref() != Some(&t.data)) {
                self.pending.push_back(Event::Tag(tag));
            }
        }
    }

    fn count_drops(&mut self, n: u64) {
        self.dropped += n;
        self.unreported_drops += n;
        self.stream.dropped.fetch_add(n, Ordering::Relaxed);
        let now = Instant::now();
        if self
            .last_warn
            .is_none_or(|t| now.duration_since(t) >= LAG_WARN_INTERVAL)
        {
            tracing::warn!(
                stream = self.stream.key(),
                protocol = self.protocol.as_str(),
                skipped = self.unreported_drops,
                total = self.dropped,
                "slow subscriber fell behind; skipping to the next keyframe"
            );
            self.unreported_drops = 0;
            self.last_warn = Some(now);
        }
    }

    /// Where the last delivered copy of a configuration tag is remembered; `None` for media.
    fn sent_slot(&mut self, tag: &Tag) -> Option<&mut Option<Bytes>> {
        match tag.kind {
            TagKind::Script => Some(&mut self.sent_metadata),
            TagKind::Video if tag.sequence_header => Some(&mut self.sent_video_header),
            TagKind::Audio if tag.sequence_header => Some(&mut self.sent_audio_header),
            _ => None,
        }
    }

    /// Remembers the configuration tags handed out.
    fn note(&mut self, ev: Event) -> Event {
        if let Event::Tag(tag) = &ev {
            if let Some(slot) = self.sent_slot(tag) {
                *slot = Some(tag.data.clone());
            }
        }
        ev
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stream.viewers[self.protocol.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("stream", &self.stream.key())
            .field("protocol", &self.protocol)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}
