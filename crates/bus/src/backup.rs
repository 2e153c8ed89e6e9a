//! Backup publishers: a second encoder for the same stream that takes over when the primary
//! stops sending, and hands back when the primary returns.
//!
//! A publisher on `{app}/{stream}{suffix}` (with [`crate::BusOptions::backup_suffix`] set) is the
//! backup of `{app}/{stream}`. It publishes its own stream as usual (viewable under its own key,
//! with its own caches), and each of its tags is also offered to the primary stream. The primary
//! stream is fed by exactly one of the two at a time:
//!
//! - **Failover.** While the primary feeds it, a backup tag that arrives when the primary has
//!   sent nothing for [`crate::BusOptions::failover`] (or has disconnected) switches the feed to
//!   the backup. Viewers first get the backup's metadata and sequence headers, then the backup
//!   stream's cached GOP from its last keyframe, so they resume on a keyframe without waiting
//!   for the next one; live backup tags follow.
//! - **Takeback.** While the backup feeds it, the primary's tags are held back (its sequence
//!   headers remembered) until it sends a video keyframe (any audio frame for an audio-only
//!   primary); from that tag on the primary feeds the stream again, after its headers.
//!
//! Each switch restarts the primary stream's timeline at the new source (so timestamps stay
//! continuous), clears its start-up cache and announces [`crate::Event::PublisherJoined`], as a
//! reconnecting publisher does. Detection needs no timer: the backup sends tens of tags a
//! second, and each one checks how long the primary has been quiet. Time is
//! `tokio::time::Instant`, so tests run on paused time.

use tokio::time::Instant;

use crate::{MediaInfo, Tag, TagKind};

/// Which publisher feeds a stream's viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Feed {
    /// The stream's own publisher (or nobody).
    #[default]
    Primary,
    /// The backup publisher, on the stream's key plus the backup suffix.
    Backup,
}

impl Feed {
    /// "primary" or "backup", for logs and the stats API.
    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Primary => "primary",
            Feed::Backup => "backup",
        }
    }
}

/// The configuration tags one publisher sent, to replay them when it takes the stream back.
#[derive(Debug, Default)]
pub(crate) struct Headers {
    pub metadata: Option<Tag>,
    pub video: Option<Tag>,
    pub audio: Option<Tag>,
    pub media_info: MediaInfo,
}

impl Headers {
    pub(crate) fn record(&mut self, tag: &Tag) {
        match tag.kind {
            TagKind::Script => self.metadata = Some(tag.clone()),
            TagKind::Video if tag.sequence_header => self.video = Some(tag.clone()),
            TagKind::Audio if tag.sequence_header => self.audio = Some(tag.clone()),
            _ => {}
        }
    }

    /// Whether `tag` is a point where this publisher's media can start: a video keyframe, or
    /// any audio frame of a publisher without video.
    pub(crate) fn starts_at(&self, tag: &Tag) -> bool {
        tag.is_video_keyframe()
            || (tag.kind == TagKind::Audio && !tag.sequence_header && self.video.is_none())
    }

    /// The headers in the order a decoder wants them.
    pub(crate) fn tags(&self) -> impl Iterator<Item = &Tag> {
        self.metadata
            .iter()
            .chain(self.video.iter())
            .chain(self.audio.iter())
    }
}

/// The failover state kept in every stream (idle unless a backup attaches).
#[derive(Debug, Default)]
pub(crate) struct Failover {
    pub feed: Feed,
    /// A backup publisher is connected.
    pub backup_attached: bool,
    /// When the primary last pushed a tag.
    pub last_primary: Option<Instant>,
    /// The primary's headers, replayed when it takes the stream back.
    pub primary: Headers,
    pub failovers: u64,
    pub takebacks: u64,
}

impl Failover {
    /// True while the backup feeds the stream's viewers.
    pub(crate) fn backup_feeding(&self) -> bool {
        self.feed == Feed::Backup && self.backup_attached
    }

    /// Whether the primary counts as gone: disconnected, silent for `limit`, or never there.
    pub(crate) fn primary_quiet(
        &self,
        primary_live: bool,
        now: Instant,
        limit: std::time::Duration,
    ) -> bool {
        !primary_live
            || self
                .last_primary
                .is_none_or(|t| now.duration_since(t) >= limit)
    }
}

impl crate::Stream {
    /// A backup tag (already on the backup stream's own timeline) offered to this, its primary
    /// stream. `backup` is the backup stream's state, locked by the caller (lock order: backup
    /// stream, then primary stream). `failover` is the current `bus.failover`.
    pub(crate) fn offer_backup(
        &self,
        backup: &crate::stream::Inner,
        backup_cache: &crate::cache::StartupCache,
        tag: Tag,
        now: Instant,
        failover: std::time::Duration,
    ) {
        let mut inner = self.lock();
        if !inner.failover.backup_attached {
            return;
        }
        if inner.failover.feed == Feed::Backup {
            let _ = self.push_mapped(&mut inner, tag);
            return;
        }
        if !inner.failover.primary_quiet(inner.live, now, failover) {
            return;
        }
        // The backup stream's GOP since its last keyframe (this tag included): viewers resume
        // on that keyframe at once. Without one (no keyframe yet), wait for the next tag.
        let gop: Vec<Tag> = backup_cache.gop().cloned().collect();
        if gop.is_empty() {
            return;
        }
        let headers: Vec<Tag> = backup_cache.headers().cloned().collect();
        let info = backup.media_info.clone();
        self.switch_feed(&mut inner, Feed::Backup, &headers, gop, info);
    }

    /// A primary tag while the backup feeds the stream: remembered if it is a header, and the
    /// start of the takeback if it is a point the primary's media can start from.
    pub(crate) fn offer_primary(&self, inner: &mut crate::stream::Inner, tag: Tag) {
        inner.failover.primary.record(&tag);
        if tag.sequence_header || tag.kind == TagKind::Script {
            return;
        }
        if !inner.failover.primary.starts_at(&tag) {
            return;
        }
        let headers: Vec<Tag> = inner.failover.primary.tags().cloned().collect();
        let info = inner.failover.primary.media_info.clone();
        self.switch_feed(inner, Feed::Primary, &headers, vec![tag], info);
    }

    /// Hands the stream to `to`: a fresh start-up cache, the timeline restarted at the new
    /// source, [`crate::Event::PublisherJoined`], then `headers` (stamped with the first media
    /// tag's time) and `media` with their raw timestamps mapped.
    fn switch_feed(
        &self,
        inner: &mut crate::stream::Inner,
        to: Feed,
        headers: &[Tag],
        media: Vec<Tag>,
        info: MediaInfo,
    ) {
        inner.failover.feed = to;
        match to {
            Feed::Backup => {
                inner.failover.failovers += 1;
                tracing::warn!(
                    stream = %self.key(),
                    failovers = inner.failover.failovers,
                    "failover: the primary publisher stopped sending; the backup feeds the stream"
                );
            }
            Feed::Primary => {
                inner.failover.takebacks += 1;
                tracing::info!(
                    stream = %self.key(),
                    takebacks = inner.failover.takebacks,
                    "takeback: the primary publisher feeds the stream again"
                );
            }
        }
        self.ring.replay().clear();
        inner.timeline.restart();
        inner.media_info = info;
        self.ring.send(crate::Event::PublisherJoined);
        let mut pending_headers = Some(headers);
        for mut tag in media {
            let (timestamp, _) = inner.timeline.map(tag.timestamp as u32);
            for h in pending_headers.take().into_iter().flatten() {
                let h = Tag {
                    timestamp,
                    ..h.clone()
                };
                self.deliver(inner, h);
            }
            tag.timestamp = timestamp;
            inner.timeline.presented(tag.pts());
            self.deliver(inner, tag);
        }
    }
}
