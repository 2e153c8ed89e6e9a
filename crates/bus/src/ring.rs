//! The one fan-out of the gateway: a bounded broadcast ring with start-up replay and a single lag
//! policy, generic over the unit it carries.
//!
//! The bus fans FLV tags out to its subscribers through a [`Ring`]; every egress that remuxes a
//! stream once fans its own units out through one too: RTP access units to RTSP sessions, ASF
//! packets to MMS viewers. Whatever the unit, the rules are the same:
//!
//! - The sender never waits: the ring holds `capacity` units, shared by every reader, and a reader
//!   that falls a whole ring behind loses the oldest.
//! - A new reader first gets the replay's snapshot (configuration, then the units since the last
//!   place where decoding can start), atomically with respect to sending: each unit reaches it
//!   exactly once, in the snapshot or live.
//! - After a lag a reader skips media until the next [`Role::Sync`] unit, counts what it skipped,
//!   warns at most once a second, and first re-sends each configuration unit that changed while
//!   it lagged, so decoders never lose their configuration.
//!
//! What a unit means to that policy is its [`Role`]; what a new reader is given is the ring's
//! [`Replay`], which the owner of the ring supplies (the bus's start-up cache, an RTP GOP with its
//! Sender Reports, an ASF header and GOP).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// How often at most a lagging reader logs its drops.
const LAG_WARN_INTERVAL: Duration = Duration::from_secs(1);

/// What a unit is to the lag policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Decoder configuration, one kind per slot (metadata, a sequence header, an ASF header). It
    /// passes while a reader resynchronises, and after a lag the replay's current one is re-sent
    /// if the reader has not had it.
    Config(usize),
    /// Media where a decoder can start: a video keyframe, or any unit of an audio-only stream.
    Sync,
    /// An audio frame of a stream that may have video: a place to start only when the replay says
    /// the stream is audio-only ([`Replay::audio_restarts`]).
    Audio,
    /// Other media, skipped while a reader resynchronises.
    Media,
    /// Not media (a Sender Report, a publisher event): always delivered.
    Control,
    /// The end of the stream: the reader returns `None` from then on.
    End,
}

/// A unit that travels on a [`Ring`], which clones it for every reader: it must be cheap to
/// clone (reference counts, `Bytes`), or be wrapped in an `Arc` (which is a unit if `T` is).
pub trait Unit: Send + Sync + 'static {
    /// What this unit is to the lag policy.
    fn role(&self) -> Role;

    /// Whether two configuration units of the same slot carry the same configuration, so a
    /// reader that already has one skips the other.
    fn same_config(&self, _other: &Self) -> bool {
        false
    }
}

impl<T: Unit> Unit for Arc<T> {
    fn role(&self) -> Role {
        T::role(self)
    }

    fn same_config(&self, other: &Self) -> bool {
        T::same_config(self, other)
    }
}

/// What a ring replays to a new reader and re-sends after a lag. The ring calls it under its lock,
/// in the order units are sent.
pub trait Replay<U>: Send + 'static {
    /// Notes one unit that is about to be sent.
    fn record(&mut self, unit: &U);

    /// Appends what a new reader receives before live units.
    fn snapshot(&self, out: &mut Vec<U>);

    /// Appends the current configuration units (each of [`Role::Config`]), for readers that lagged.
    fn config(&self, _out: &mut Vec<U>) {}

    /// Whether audio frames are places to start ([`Role::Audio`]), as in an audio-only stream.
    fn audio_restarts(&self) -> bool {
        false
    }
}

/// A replay that keeps nothing: readers start with live units.
#[derive(Debug, Default)]
pub struct NoReplay;

impl<U> Replay<U> for NoReplay {
    fn record(&mut self, _unit: &U) {}
    fn snapshot(&self, _out: &mut Vec<U>) {}
}

/// The replay most egress rings use: the latest configuration unit of each slot, then the units
/// since the last [`Role::Sync`] unit, bounded in units and bytes. A GOP that outgrows a bound is
/// dropped whole (a partial one is useless to a decoder) until the next sync unit.
#[derive(Debug)]
pub struct GopReplay<U> {
    config: Vec<Option<U>>,
    gop: VecDeque<U>,
    gop_bytes: usize,
    valid: bool,
    max_units: usize,
    max_bytes: usize,
    size: fn(&U) -> usize,
}

impl<U: Unit + Clone> GopReplay<U> {
    /// A replay whose GOP holds at most `max_units` units and `max_bytes` bytes, as `size` counts.
    pub fn new(max_units: usize, max_bytes: usize, size: fn(&U) -> usize) -> Self {
        GopReplay {
            config: Vec::new(),
            gop: VecDeque::new(),
            gop_bytes: 0,
            valid: false,
            max_units,
            max_bytes,
            size,
        }
    }

    /// Forgets the cached GOP and configuration (a new source brings its own).
    pub fn clear(&mut self) {
        self.config.clear();
        self.reset(false);
    }

    /// The cached GOP, from its sync unit; empty while none is valid.
    pub fn gop(&self) -> impl Iterator<Item = &U> {
        self.gop
            .iter()
            .take(if self.valid { usize::MAX } else { 0 })
    }

    /// The latest configuration unit of `slot`.
    pub fn config_of(&self, slot: usize) -> Option<&U> {
        self.config.get(slot)?.as_ref()
    }

    /// Bytes held by the GOP.
    pub fn gop_bytes(&self) -> usize {
        self.gop_bytes
    }

    fn reset(&mut self, valid: bool) {
        self.gop.clear();
        self.gop_bytes = 0;
        self.valid = valid;
    }
}

impl<U: Unit + Clone> Replay<U> for GopReplay<U> {
    fn record(&mut self, unit: &U) {
        match unit.role() {
            Role::Config(slot) => {
                if self.config.len() <= slot {
                    self.config.resize(slot + 1, None);
                }
                self.config[slot] = Some(unit.clone());
                return;
            }
            Role::Sync => self.reset(true),
            Role::Audio | Role::Media | Role::Control => {}
            Role::End => {
                self.clear();
                return;
            }
        }
        if !self.valid {
            return;
        }
        self.gop_bytes += (self.size)(unit);
        self.gop.push_back(unit.clone());
        if self.gop.len() > self.max_units || self.gop_bytes > self.max_bytes {
            self.reset(false);
        }
    }

    fn snapshot(&self, out: &mut Vec<U>) {
        self.config(out);
        out.extend(self.gop().cloned());
    }

    fn config(&self, out: &mut Vec<U>) {
        out.extend(self.config.iter().flatten().cloned());
    }
}

/// A bounded broadcast ring of `U` with the replay `R`; see the module documentation.
pub struct Ring<U, R> {
    replay: Mutex<R>,
    tx: broadcast::Sender<U>,
}

impl<U: Unit + Clone, R: Replay<U>> Ring<U, R> {
    /// A ring that holds `capacity` units (at least 1) for its readers.
    pub fn new(capacity: usize, replay: R) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Ring {
            replay: Mutex::new(replay),
            tx,
        }
    }

    /// Locks the replay, for the owner to read or change it. Sending while holding it deadlocks:
    /// use [`Ring::send_locked`].
    pub fn replay(&self) -> MutexGuard<'_, R> {
        // A panic while holding this lock would be a bug in a replay; keep serving rather than cascade.
        self.replay.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `unit` in the replay and sends it to every reader.
    pub fn send(&self, unit: U) {
        let mut replay = self.replay();
        self.send_locked(&mut replay, unit);
    }

    /// [`Ring::send`] with the replay already locked by the caller.
    pub fn send_locked(&self, replay: &mut R, unit: U) {
        replay.record(&unit);
        // An error only means nobody reads right now.
        let _ = self.tx.send(unit);
    }

    /// Readers open now.
    pub fn readers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Opens a reader that starts with the replay's snapshot; `label` names it in logs.
    pub fn reader(self: &Arc<Self>, label: impl Into<String>) -> Reader<U, R> {
        self.open(label, |replay| {
            let mut snapshot = Vec::new();
            replay.snapshot(&mut snapshot);
            (snapshot, ())
        })
        .0
    }

    /// Opens a reader that starts with the units `start` builds from the replay, under the same
    /// lock as sending (for snapshots that depend on the reader, such as the tracks it plays), and
    /// returns what else `start` computed.
    pub fn open<T>(
        self: &Arc<Self>,
        label: impl Into<String>,
        start: impl FnOnce(&R) -> (Vec<U>, T),
    ) -> (Reader<U, R>, T) {
        let replay = self.replay();
        let (snapshot, extra) = start(&replay);
        let rx = self.tx.subscribe();
        drop(replay);
        let reader = Reader {
            ring: Arc::clone(self),
            rx,
            pending: snapshot.into(),
            resync: false,
            sent_config: Vec::new(),
            dropped: 0,
            unreported: 0,
            last_warn: None,
            label: label.into(),
            on_drops: None,
            live_units: 0,
            closed: false,
        };
        (reader, extra)
    }
}

impl<U, R> std::fmt::Debug for Ring<U, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("readers", &self.tx.receiver_count())
            .finish_non_exhaustive()
    }
}

/// What one received item means for the reader.
enum Step<U> {
    Deliver(U),
    Skip,
    End,
}

/// One reader's bounded view of a [`Ring`]: the snapshot, then live units, with the lag policy.
pub struct Reader<U, R> {
    ring: Arc<Ring<U, R>>,
    rx: broadcast::Receiver<U>,
    pending: VecDeque<U>,
    /// After a lag: skip media until the next place to start.
    resync: bool,
    /// The configuration units delivered, by slot.
    sent_config: Vec<Option<U>>,
    dropped: u64,
    unreported: u64,
    last_warn: Option<Instant>,
    label: String,
    on_drops: Option<Box<dyn Fn(u64) + Send + Sync>>,
    live_units: u64,
    closed: bool,
}

impl<U: Unit + Clone, R: Replay<U>> Reader<U, R> {
    /// Calls `f` with the number of units skipped, each time some are (for per-stream or
    /// per-session counters).
    pub fn on_drops(mut self, f: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.on_drops = Some(Box::new(f));
        self
    }

    /// Also calls `f` with the number of units skipped, after any callback set before (for a
    /// client's own counter beside its stream's: see [`crate::clients`]).
    pub fn add_on_drops(&mut self, f: impl Fn(u64) + Send + Sync + 'static) {
        let before = self.on_drops.take();
        self.on_drops = Some(Box::new(move |n| {
            if let Some(before) = &before {
                before(n);
            }
            f(n);
        }));
    }

    /// Starts by skipping media until a place to start, as after a lag (for a reader whose
    /// snapshot holds no place to start).
    pub fn wait_for_sync(mut self) -> Self {
        self.resync = true;
        self
    }

    /// Marks the reader as ended: it returns what is pending, then `None`.
    pub fn end(mut self) -> Self {
        self.closed = true;
        self
    }

    /// The ring this reader reads.
    pub fn ring(&self) -> &Arc<Ring<U, R>> {
        &self.ring
    }

    /// Units skipped so far because this reader fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether the reader is past its start-up: the snapshot is out and a live unit went out
    /// before the latest one (write batching may delay units from then on).
    pub fn is_live(&self) -> bool {
        self.pending.is_empty() && self.live_units > 1
    }

    /// The next unit; `None` once the stream ended.
    pub async fn recv(&mut self) -> Option<U> {
        loop {
            if let Some(u) = self.next_pending() {
                return Some(u);
            }
            if self.closed {
                return None;
            }
            let received = self.rx.recv().await;
            match self.step(received) {
                Step::Deliver(u) => return Some(self.note(u)),
                Step::Skip => continue,
                Step::End => return None,
            }
        }
    }

    /// The next unit if one is ready now, for callers that batch writes. `None` means nothing is
    /// ready, or the stream ended ([`Reader::recv`] tells the two apart).
    pub fn try_recv(&mut self) -> Option<U> {
        loop {
            if let Some(u) = self.next_pending() {
                return Some(u);
            }
            if self.closed {
                return None;
            }
            let received = match self.rx.try_recv() {
                Ok(u) => Ok(u),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
            match self.step(received) {
                Step::Deliver(u) => return Some(self.note(u)),
                Step::Skip => continue,
                Step::End => return None,
            }
        }
    }

    fn next_pending(&mut self) -> Option<U> {
        let u = self.pending.pop_front()?;
        Some(self.note(u))
    }

    fn step(&mut self, received: Result<U, RecvError>) -> Step<U> {
        match received {
            Ok(u) => {
                self.live_units += 1;
                self.filter(u)
            }
            Err(RecvError::Closed) => {
                self.closed = true;
                Step::End
            }
            Err(RecvError::Lagged(n)) => {
                self.on_lag(n);
                Step::Skip
            }
        }
    }

    /// The lag policy, unit by unit.
    fn filter(&mut self, u: U) -> Step<U> {
        let role = u.role();
        if role == Role::End {
            self.closed = true;
            return Step::End;
        }
        if !self.resync {
            return Step::Deliver(u);
        }
        let restart = match role {
            Role::Config(slot) => {
                // `on_lag` already re-sent the current configuration; skip an identical copy
                // still waiting in the ring.
                let had = self.sent_config.get(slot).and_then(Option::as_ref);
                if had.is_some_and(|had| had.same_config(&u)) {
                    return Step::Skip;
                }
                return Step::Deliver(u);
            }
            Role::Control => return Step::Deliver(u),
            Role::Sync => true,
            Role::Audio => self.ring.replay().audio_restarts(),
            Role::Media | Role::End => false,
        };
        if restart {
            self.resync = false;
            return Step::Deliver(u);
        }
        self.count_drops(1);
        Step::Skip
    }

    fn on_lag(&mut self, n: u64) {
        self.count_drops(n);
        self.resync = true;
        let mut current = Vec::new();
        self.ring.replay().config(&mut current);
        for u in current {
            let Role::Config(slot) = u.role() else {
                continue;
            };
            let had = self.sent_config.get(slot).and_then(Option::as_ref);
            if !had.is_some_and(|had| had.same_config(&u)) {
                self.pending.push_back(u);
            }
        }
    }

    fn count_drops(&mut self, n: u64) {
        self.dropped += n;
        self.unreported += n;
        if let Some(f) = &self.on_drops {
            f(n);
        }
        let now = Instant::now();
        if self
            .last_warn
            .is_none_or(|t| now.duration_since(t) >= LAG_WARN_INTERVAL)
        {
            tracing::warn!(
                reader = %self.label,
                skipped = self.unreported,
                total = self.dropped,
                "slow reader fell behind; skipping to the next keyframe"
            );
            self.unreported = 0;
            self.last_warn = Some(now);
        }
    }

    /// Remembers the configuration units handed out.
    fn note(&mut self, u: U) -> U {
        if let Role::Config(slot) = u.role() {
            if self.sent_config.len() <= slot {
                self.sent_config.resize(slot + 1, None);
            }
            self.sent_config[slot] = Some(u.clone());
        }
        u
    }
}

impl<U, R> std::fmt::Debug for Reader<U, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("label", &self.label)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test unit: `C`/`c` configuration in slot 0 (two versions), `K` sync, `a` audio, `m`
    /// media, `x` control, `E` end; the number tells units apart.
    #[derive(Debug, Clone, PartialEq)]
    struct T(char, u32);

    impl Unit for T {
        fn role(&self) -> Role {
            match self.0 {
                'C' | 'c' => Role::Config(0),
                'K' => Role::Sync,
                'a' => Role::Audio,
                'x' => Role::Control,
                'E' => Role::End,
                _ => Role::Media,
            }
        }
        fn same_config(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }

    fn ring(capacity: usize) -> Arc<Ring<T, GopReplay<T>>> {
        Arc::new(Ring::new(capacity, GopReplay::new(100, 1000, |_| 10)))
    }

    fn send(ring: &Ring<T, GopReplay<T>>, codes: &str) {
        for (i, c) in codes.chars().enumerate() {
            ring.send(T(c, i as u32));
        }
    }

    fn drain<R: Replay<T>>(reader: &mut Reader<T, R>) -> String {
        std::iter::from_fn(|| reader.try_recv())
            .map(|t| t.0)
            .collect()
    }

    #[test]
    fn a_new_reader_starts_with_the_configuration_and_the_gop() {
        let ring = ring(16);
        send(&ring, "CKmmKmx");
        let mut reader = ring.reader("test");
        assert_eq!(drain(&mut reader), "CKmx");
        send(&ring, "m");
        assert_eq!(drain(&mut reader), "m", "then live units, once each");
    }

    #[test]
    fn a_gop_past_its_bound_is_dropped_until_the_next_sync_unit() {
        let ring = Arc::new(Ring::new(16, GopReplay::new(3, 1000, |_: &T| 10)));
        send(&ring, "CKmmm");
        assert_eq!(drain(&mut ring.reader("test")), "C");
        send(&ring, "mK");
        assert_eq!(drain(&mut ring.reader("test")), "CK");
    }

    #[test]
    fn a_lagging_reader_skips_to_a_sync_unit_and_gets_the_new_configuration() {
        let ring = ring(4);
        send(&ring, "CK");
        let mut reader = ring.reader("test");
        assert_eq!(drain(&mut reader), "CK");
        // Far more than the ring holds, with a configuration change in the middle.
        send(&ring, "mmmmmmcmmmmmmmm");
        send(&ring, "mmK");
        let got = drain(&mut reader);
        assert_eq!(got, "cK", "the changed configuration, then the sync unit");
        assert!(reader.dropped() > 10, "dropped {}", reader.dropped());
    }

    #[test]
    fn an_unchanged_configuration_is_not_sent_twice() {
        let ring = ring(4);
        send(&ring, "CK");
        let mut reader = ring.reader("test");
        drain(&mut reader);
        send(&ring, "mmmmmmmmC");
        send(&ring, "mK");
        assert_eq!(drain(&mut reader), "K");
    }

    #[test]
    fn audio_restarts_only_when_the_replay_says_so() {
        struct AudioOnly;
        impl Replay<T> for AudioOnly {
            fn record(&mut self, _: &T) {}
            fn snapshot(&self, _: &mut Vec<T>) {}
            fn audio_restarts(&self) -> bool {
                true
            }
        }
        let ring = Arc::new(Ring::new(4, AudioOnly));
        let mut reader = ring.reader("test");
        for i in 0..10 {
            ring.send(T('m', i));
        }
        ring.send(T('a', 10));
        ring.send(T('m', 11));
        assert_eq!(drain(&mut reader), "am");

        let ring = ring_of_gop();
        let mut reader = ring.reader("test");
        send(&ring, "mmmmmmmmmmam");
        assert_eq!(
            drain(&mut reader),
            "",
            "audio is no place to start a stream with video"
        );
    }

    fn ring_of_gop() -> Arc<Ring<T, GopReplay<T>>> {
        ring(4)
    }

    #[test]
    fn control_units_pass_while_resynchronising_and_end_ends() {
        let ring = ring(4);
        let mut reader = ring.reader("test");
        send(&ring, "mmmmmmmmx");
        assert_eq!(drain(&mut reader), "x");
        send(&ring, "Em");
        assert_eq!(drain(&mut reader), "");
        assert!(reader.try_recv().is_none());
    }

    #[test]
    fn drops_are_reported_to_the_counter() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let ring = ring(4);
        let counter = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&counter);
        let mut reader = ring.reader("test").on_drops(move |n| {
            c.fetch_add(n, Ordering::Relaxed);
        });
        send(&ring, "mmmmmmmmmmK");
        assert_eq!(drain(&mut reader), "K");
        assert_eq!(counter.load(Ordering::Relaxed), reader.dropped());
        assert!(reader.dropped() >= 6);
    }

    #[tokio::test]
    async fn recv_returns_none_when_the_ring_is_dropped() {
        let ring = ring(4);
        let mut reader = ring.reader("test");
        send(&ring, "K");
        assert_eq!(reader.recv().await, Some(T('K', 0)));
        // The reader holds the ring, so the end comes as a unit.
        ring.send(T('E', 1));
        assert_eq!(reader.recv().await, None);
    }
}
