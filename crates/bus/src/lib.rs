//! The in-memory media bus: where ingest and every egress meet.
//!
//! Each live stream is one [`Stream`], keyed `{app}/{stream}`, in a concurrent registry. A
//! [`Publisher`] pushes FLV-style [`Tag`]s; the bus corrects their timestamps onto one continuous
//! timeline, caches what a new viewer needs (metadata, sequence headers, the GOP since the last
//! keyframe) and fans every tag out to its [`Subscriber`]s.
//!
//! What it is not: it does not parse codecs (ingest parses each FLV tag header once, building the
//! tag with [`Tag::classify`], and every egress reads [`Tag::media`]), it does not remux (each egress does that once per stream, keeping its state in a
//! [`Stream::attachment`]), and it knows nothing of sockets or configuration files.
//!
//! Fan-out is a bounded broadcast ring per stream: sending costs the same for one viewer or ten
//! thousand, a tag is shared by reference count, and a slow subscriber loses the oldest events
//! and resynchronises at the next keyframe instead of making anyone wait. There is no unbounded
//! queue, and the registry itself is bounded: at most [`BusOptions::max_streams`] streams, and
//! [`BusOptions::max_streams_per_app`] in one app; a new stream past either is refused with a
//! [`StreamLimit`] (counted in [`Bus::limit_stats`]).
//!
//! A publisher that reconnects within [`BusOptions::unpublish_grace`] keeps the stream's viewers
//! and its timeline. With [`BusOptions::backup_suffix`] set, a publisher on `{key}{suffix}` backs
//! up `{key}`: it feeds `{key}`'s viewers while the primary is silent or gone, and the primary
//! takes over again at its next keyframe (see the `backup` module).
//!
//! Who wants to act on every new publish (the recorder) subscribes to [`Bus::publishes`]: the
//! key of every publisher that attaches, through a bounded broadcast; a receiver that lags
//! learns how many it missed and can look at [`Bus::streams`] instead.
//!
//! The options can be replaced while the bus runs ([`Bus::set_options`], for a configuration
//! reload): nothing running is disturbed, and what changed applies to what starts next (see
//! there for which option is read when).

mod backup;
mod batches;
mod cache;
pub mod clients;
mod limits;
mod remux;
pub mod ring;
mod send_watch;
mod stream;
mod subscriber;
mod tag;
mod timeline;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

pub use crate::backup::Feed;
pub use crate::batches::{BatchSizes, BATCH_BUCKETS};
pub use crate::limits::{StreamLimit, StreamLimitStats};
pub use crate::remux::{Linger, Remuxer};
pub use crate::send_watch::SendWatch;
pub use crate::stream::{Event, PublisherInfo, Stream, StreamStats, ViewerGuard};
pub use crate::subscriber::Subscriber;
pub use crate::tag::{MediaInfo, Protocol, Tag, TagKind};
pub use crate::timeline::Correction;

/// Limits and timings of the bus. Every field has the default documented in the gateway's config.
///
/// They can be replaced while the bus runs ([`Bus::set_options`]). `queue_tags`, the GOP and
/// audio cache limits and `timestamp_jump_ms` are taken by each stream when it is created; the
/// others are read from the current options where they are used.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// Capacity of each stream's fan-out ring, in events: how far a subscriber may fall behind
    /// before it skips to the next keyframe.
    pub queue_tags: usize,
    /// The GOP cache is dropped (and new viewers wait for the next keyframe) past this many tags.
    pub gop_max_tags: usize,
    /// ... or past this many payload bytes.
    pub gop_max_bytes: usize,
    /// For audio-only streams, how much recent audio a new viewer receives at once.
    pub audio_only_cache_ms: u64,
    /// A timestamp step larger than this (forwards or backwards) is corrected and logged.
    pub timestamp_jump_ms: u64,
    /// How long a stream outlives its publisher, so a reconnecting publisher keeps its viewers.
    pub unpublish_grace: Duration,
    /// How long a stream created by a waiting player lives without a publisher.
    pub wait_for_publisher: Duration,
    /// A publisher on `{key}{suffix}` is the backup of `{key}` (see the `backup` module); `None`
    /// turns backup publishers off.
    pub backup_suffix: Option<String>,
    /// The backup takes over once the primary has sent nothing for this long (or at once when
    /// the primary disconnects).
    pub failover: Duration,
    /// Streams on the bus at most; a new stream past it is refused ([`StreamLimit`]).
    pub max_streams: usize,
    /// Streams of one app (the key's part before its first '/') at most.
    pub max_streams_per_app: usize,
}

impl Default for BusOptions {
    fn default() -> Self {
        BusOptions {
            queue_tags: 512,
            gop_max_tags: 2048,
            gop_max_bytes: 16 * 1024 * 1024,
            audio_only_cache_ms: 1000,
            timestamp_jump_ms: 5000,
            unpublish_grace: Duration::from_secs(5),
            wait_for_publisher: Duration::from_secs(30),
            backup_suffix: None,
            failover: Duration::from_millis(1000),
            max_streams: 10_000,
            max_streams_per_app: 1000,
        }
    }
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("stream {key} is already being published")]
    AlreadyPublishing { key: String },
    /// A new stream would pass `bus.max_streams` or `bus.max_streams_per_app`.
    #[error(transparent)]
    Limit(#[from] StreamLimit),
}

/// The registry of streams. Cloning is cheap and every clone sees the same streams.
#[derive(Clone, Debug)]
pub struct Bus {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    streams: DashMap<Arc<str>, Arc<Stream>>,
    /// How many entries `streams` holds, per app, against the caps. Updated with the shard of
    /// the entry locked, so the counts never drift from the registry.
    counts: limits::StreamCounts,
    /// The current options: replaced whole by [`Bus::set_options`], read where they are used.
    opts: ArcSwap<BusOptions>,
    /// The key of every publisher that attached ([`Bus::publishes`]).
    publishes: tokio::sync::broadcast::Sender<Arc<str>>,
    /// Every publisher and viewer connection, for the control API.
    clients: Arc<clients::Clients>,
}

/// Publish announcements a [`Bus::publishes`] receiver may fall behind by before it lags.
const PUBLISHES_QUEUE: usize = 256;

impl Default for Bus {
    fn default() -> Self {
        Bus::new(BusOptions::default())
    }
}

/// A locked entry of the stream registry.
type StreamRef<'a> = dashmap::mapref::one::RefMut<'a, Arc<str>, Arc<Stream>>;

impl Bus {
    pub fn new(opts: BusOptions) -> Bus {
        Bus {
            shared: Arc::new(Shared {
                streams: DashMap::new(),
                counts: limits::StreamCounts::default(),
                opts: ArcSwap::from_pointee(opts),
                publishes: tokio::sync::broadcast::channel(PUBLISHES_QUEUE).0,
                clients: Arc::default(),
            }),
        }
    }

    /// The current options (those of the last [`Bus::set_options`], or of [`Bus::new`]).
    pub fn options(&self) -> Arc<BusOptions> {
        self.shared.opts.load_full()
    }

    /// Replaces the options while the bus runs (a configuration reload); no stream, publisher
    /// or subscriber is disturbed, and what changed applies to what starts next:
    ///
    /// - `queue_tags`, `gop_max_tags`, `gop_max_bytes`, `audio_only_cache_ms` and
    ///   `timestamp_jump_ms` are taken by each stream when it is created, so they apply to new
    ///   streams; a stream on the bus keeps those it was created with until it is removed.
    /// - `max_streams` and `max_streams_per_app` apply from the next new stream: streams already
    ///   past a lowered cap stay, and only new ones are refused until enough are gone.
    /// - `unpublish_grace` and `wait_for_publisher` apply to the next removal scheduled (one
    ///   already scheduled keeps its delay); `failover` to the next failover decision.
    /// - `backup_suffix` applies to the next publish: a publisher already on the bus keeps
    ///   the role (backup or not) it got when it started publishing.
    pub fn set_options(&self, opts: BusOptions) {
        self.shared.opts.store(Arc::new(opts));
    }

    /// Announces the key of every publisher that attaches from now on (a first publish, a
    /// publisher's return within the grace period, a backup's own key), after the stream is
    /// live, so [`Bus::subscribe`] finds it. Bounded: a receiver more than 256 announcements
    /// behind gets `Lagged` and should look at [`Bus::streams`] for what it missed.
    pub fn publishes(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.shared.publishes.subscribe()
    }

    /// The publisher and viewer connections of every shell (see [`clients`]).
    pub fn clients(&self) -> &Arc<clients::Clients> {
        &self.shared.clients
    }

    /// The stream caps (the current options') and how often they refused a stream, for the
    /// stats API.
    pub fn limit_stats(&self) -> StreamLimitStats {
        let opts = self.shared.opts.load();
        self.shared
            .counts
            .stats(opts.max_streams, opts.max_streams_per_app)
    }

    /// The stream at `key`, created (and counted against the caps) if it does not exist; true
    /// if it was created. The returned guard keeps the registry entry locked.
    fn entry_or_create(&self, key: &str) -> Result<(StreamRef<'_>, bool), StreamLimit> {
        match self.shared.streams.entry(Arc::from(key)) {
            Entry::Occupied(o) => Ok((o.into_ref(), false)),
            Entry::Vacant(v) => {
                let opts = self.shared.opts.load();
                self.shared
                    .counts
                    .reserve(key, opts.max_streams, opts.max_streams_per_app)
                    .inspect_err(|e| {
                        tracing::warn!(stream = %key, app = %limits::app_of(key), error = %e, "new stream refused");
                    })?;
                let stream = Arc::new(Stream::new(key, &opts));
                Ok((v.insert(stream), true))
            }
        }
    }

    /// Starts publishing `key`. A stream that is in its grace period (or has waiting players) is
    /// taken over, and its subscribers carry on.
    pub fn publish(&self, key: &str, info: PublisherInfo) -> Result<Publisher, PublishError> {
        // The registry entry stays locked while the stream turns live, so a grace-period removal
        // can never remove a stream that was just taken over.
        let (entry, _) = self.entry_or_create(key)?;
        let stream = Arc::clone(entry.value());
        let mut inner = stream.lock();
        if inner.live {
            return Err(PublishError::AlreadyPublishing {
                key: key.to_owned(),
            });
        }
        inner.live = true;
        inner.generation += 1;
        inner.publisher = Some(info.clone());
        inner.published_at = Some(std::time::Instant::now());
        inner.failover.primary = backup::Headers::default();
        inner.failover.last_primary = None;
        let generation = inner.generation;
        if inner.failover.backup_feeding() {
            // The backup keeps feeding the viewers until this publisher sends a keyframe.
            tracing::info!(
                stream = %key,
                "primary publisher back; takeback at its first keyframe"
            );
        } else {
            inner.failover.feed = Feed::Primary;
            stream.ring.replay().clear();
            inner.media_info = MediaInfo::default();
            inner.timeline.restart();
            if generation > 1 {
                stream.ring.send(Event::PublisherJoined);
            }
        }
        drop(inner);
        drop(entry);
        tracing::debug!(stream = %key, generation, "publisher attached to the bus");
        // Nobody listening is no error.
        let _ = self.shared.publishes.send(Arc::from(key));
        let backup_of = self
            .backup_target(key)
            .map(|primary| self.attach_backup(primary));
        Ok(Publisher {
            stream,
            bus: self.clone(),
            generation,
            backup_of,
        })
    }

    /// The primary key `key` is a backup of, if backups are on and `key` has the suffix.
    fn backup_target<'k>(&self, key: &'k str) -> Option<&'k str> {
        let opts = self.shared.opts.load();
        let suffix = opts.backup_suffix.as_deref()?;
        let primary = key.strip_suffix(suffix)?;
        let is_backup = !suffix.is_empty() && !primary.is_empty() && !primary.ends_with('/');
        is_backup.then_some(primary)
    }

    /// Registers a backup publisher with the primary stream `key`, creating it if nobody has
    /// published or watched it yet.
    fn attach_backup(&self, key: &str) -> Arc<Stream> {
        let stream = Arc::clone(
            self.shared
                .streams
                .entry(Arc::from(key))
                .or_insert_with(|| {
                    // Past the caps if need be: one per backup publisher, which was counted.
                    self.shared.counts.force(key);
                    Arc::new(Stream::new(key, &self.shared.opts.load()))
                })
                .value(),
        );
        stream.lock().failover.backup_attached = true;
        tracing::info!(stream = %key, "backup publisher attached");
        stream
    }

    /// A backup publisher left `primary`: if it was feeding an otherwise empty stream, the
    /// stream's viewers are told and the stream is removed after the grace period.
    fn detach_backup(&self, primary: &Stream) {
        let mut inner = primary.lock();
        inner.failover.backup_attached = false;
        tracing::info!(stream = %primary.key(), "backup publisher detached");
        if inner.live {
            return;
        }
        if inner.failover.feed == Feed::Backup {
            inner.failover.feed = Feed::Primary;
            primary.ring.send(Event::PublisherLeft);
        }
        let generation = inner.generation;
        drop(inner);
        let grace = self.shared.opts.load().unpublish_grace;
        self.schedule_removal(primary.key(), generation, grace);
    }

    /// Subscribes to a live stream; `None` if nobody is publishing `key`.
    pub fn subscribe(&self, key: &str, protocol: Protocol) -> Option<Subscriber> {
        let stream = self.stream(key)?;
        if !stream.is_live() {
            return None;
        }
        Some(stream.subscribe(protocol))
    }

    /// Subscribes to `key`, creating a waiting stream if nobody publishes it yet. The waiting
    /// stream is removed (and the subscriber's `recv` returns `None`) if no publisher arrives within
    /// [`BusOptions::wait_for_publisher`]. A waiting stream counts against the stream caps; past
    /// them the player is refused.
    pub fn subscribe_or_wait(
        &self,
        key: &str,
        protocol: Protocol,
    ) -> Result<Subscriber, StreamLimit> {
        let (entry, created) = self.entry_or_create(key)?;
        let stream = Arc::clone(entry.value());
        drop(entry);
        if created {
            let wait = self.shared.opts.load().wait_for_publisher;
            self.schedule_removal(key, 0, wait);
        }
        Ok(stream.subscribe(protocol))
    }

    /// The stream at `key`, live or not (in its grace period, or with waiting players).
    pub fn stream(&self, key: &str) -> Option<Arc<Stream>> {
        self.shared.streams.get(key).map(|s| Arc::clone(s.value()))
    }

    /// Every stream on the bus, sorted by key.
    pub fn streams(&self) -> Vec<Arc<Stream>> {
        let mut all: Vec<_> = self
            .shared
            .streams
            .iter()
            .map(|s| Arc::clone(s.value()))
            .collect();
        all.sort_by(|a, b| a.key().cmp(b.key()));
        all
    }

    /// Removes `key` after `delay` unless a publisher took it meanwhile (its generation moved on
    /// from `generation`, or it is live).
    fn schedule_removal(&self, key: &str, generation: u64, delay: Duration) {
        let bus = self.clone();
        let key: Arc<str> = Arc::from(key);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    tokio::time::sleep(delay).await;
                    bus.remove_if_idle(&key, generation);
                });
            }
            Err(_) => bus.remove_if_idle(&key, generation),
        }
    }

    fn remove_if_idle(&self, key: &str, generation: u64) {
        let removed = self.shared.streams.remove_if(key, |_, stream| {
            let mut inner = stream.lock();
            let idle =
                !inner.live && !inner.failover.backup_attached && inner.generation == generation;
            if idle {
                inner.removed = true;
            }
            idle
        });
        if let Some((_, stream)) = removed {
            self.shared.counts.release(key);
            stream.ring.send(Event::Closed);
            tracing::info!(stream = %key, "stream removed from the bus");
        }
    }
}

/// The right to push tags into one stream. Dropping it unpublishes: subscribers get
/// [`Event::PublisherLeft`] and the stream is removed after the grace period unless a new
/// publisher takes it over.
pub struct Publisher {
    stream: Arc<Stream>,
    bus: Bus,
    generation: u64,
    /// For a backup publisher, the primary stream its tags are offered to.
    backup_of: Option<Arc<Stream>>,
}

impl Publisher {
    /// The stream being published.
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Pushes one tag. Only the low 32 bits of `tag.timestamp` are read (the publisher's RTMP
    /// timestamp, extended timestamps already resolved); the bus maps it onto the stream's
    /// continuous timeline.
    pub fn push(&mut self, tag: Tag) {
        let opts = self.bus.shared.opts.load();
        // The clock is read only where backups exist; elsewhere nobody asks when we last pushed.
        let now = opts.backup_suffix.is_some().then(tokio::time::Instant::now);
        let mut inner = self.stream.lock();
        if now.is_some() {
            inner.failover.last_primary = now;
        }
        if inner.failover.feed == Feed::Backup {
            // The backup feeds the viewers; this publisher takes over at its first keyframe.
            self.stream.offer_primary(&mut inner, tag);
            return;
        }
        inner.failover.primary.record(&tag);
        let Some(primary) = &self.backup_of else {
            let _ = self.stream.push_mapped(&mut inner, tag);
            return;
        };
        // A backup: its own stream first, then the same tag, on the own stream's timeline, to
        // the primary stream (which uses it only while the primary is quiet).
        let copy = tag.clone();
        let timestamp = self.stream.push_mapped(&mut inner, tag);
        let now = now.unwrap_or_else(tokio::time::Instant::now);
        let cache = self.stream.ring.replay();
        let tag = Tag { timestamp, ..copy };
        primary.offer_backup(&inner, &cache, tag, now, opts.failover);
    }

    /// Records what ingest learned about the codecs.
    pub fn set_media_info(&self, info: MediaInfo) {
        let mut inner = self.stream.lock();
        inner.failover.primary.media_info = info.clone();
        if inner.failover.feed == Feed::Primary {
            inner.media_info = info.clone();
        }
        if let Some(primary) = &self.backup_of {
            let mut p = primary.lock();
            if p.failover.feed == Feed::Backup {
                p.media_info = info;
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let mut inner = self.stream.lock();
        inner.live = false;
        inner.publisher = None;
        if !inner.failover.backup_attached {
            self.stream.ring.send(Event::PublisherLeft);
        }
        drop(inner);
        if let Some(primary) = self.backup_of.take() {
            self.bus.detach_backup(&primary);
        }
        tracing::debug!(
            stream = %self.stream.key(),
            "publisher detached from the bus"
        );
        let grace = self.bus.shared.opts.load().unpublish_grace;
        self.bus
            .schedule_removal(self.stream.key(), self.generation, grace);
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("stream", &self.stream.key())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
