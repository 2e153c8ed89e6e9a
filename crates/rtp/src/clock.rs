//! The media-to-wall-clock mapping of one stream: which wall-clock instant a media timestamp
//! (milliseconds on the stream's timeline) corresponds to, shared by all of the stream's tracks so
//! receivers can synchronise audio and video from the Sender Reports (RFC 3550 §6.4.1). The caller
//! passes `now`; nothing here reads the clock.

use std::time::SystemTime;

use crate::rtcp::{ntp_timestamp, SenderInfo};

/// How far (ms) the stream may fall behind the mapping before it is re-anchored.
pub const REANCHOR_MS: i64 = 1000;

/// A stream's media clock: one (wall clock, media ms) anchor, moved only when the media falls
/// behind it by more than [`REANCHOR_MS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaClock {
    anchor: Option<(SystemTime, i64)>,
}

/// What a Sender Report says about one track besides the time: its SSRC, clock and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackClock {
    pub ssrc: u32,
    pub clock_rate: u32,
    /// The random offset added to every RTP timestamp of the track (RFC 3550 §5.1).
    pub timestamp_offset: u32,
    pub packets: u32,
    pub octets: u32,
}

impl MediaClock {
    /// Notes that media time `ms` is being sent at `now`; returns whether the mapping moved.
    ///
    /// A mapping that followed every unit would jitter by milliseconds from one Sender Report to
    /// the next, and receivers that time packets from SRs (ffmpeg) would see timestamps step back
    /// and forth; so it moves only when the stream fell behind it by more than [`REANCHOR_MS`] (a
    /// publisher stall, a reconnect, a failover gap). Media that runs ahead of it (a burst: a
    /// backup's cached GOP replayed at a failover, an encoder catching up) keeps it: moving it
    /// then would give the current RTP time an earlier wall-clock time than the last SR implied,
    /// and SR-timed receivers would step back in time by the size of the burst.
    pub fn observe(&mut self, now: SystemTime, ms: i64) -> bool {
        let moves = self.media_ms_at(now).is_none_or(|p| p - ms > REANCHOR_MS);
        if moves {
            self.anchor = Some((now, ms));
        }
        moves
    }

    /// The media time the mapping gives `now`; `None` before the first unit.
    pub fn media_ms_at(&self, now: SystemTime) -> Option<i64> {
        let (wall, ms) = self.anchor?;
        Some(ms + now.duration_since(wall).unwrap_or_default().as_millis() as i64)
    }

    /// The RTP timestamp of `track` at `now` (0 ms of media before the first unit).
    pub fn rtp_time_at(&self, track: &TrackClock, now: SystemTime) -> u32 {
        let ms = self.media_ms_at(now).unwrap_or(0);
        crate::ms_to_rtp(ms, track.clock_rate).wrapping_add(track.timestamp_offset)
    }

    /// The sender information of a Sender Report (or BYE) for `track` at `now`.
    pub fn sender_info(&self, track: &TrackClock, now: SystemTime) -> SenderInfo {
        SenderInfo {
            ssrc: track.ssrc,
            ntp: ntp_timestamp(now),
            rtp_timestamp: self.rtp_time_at(track, now),
            packet_count: track.packets,
            octet_count: track.octets,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn anchored(t0: SystemTime) -> MediaClock {
        let mut c = MediaClock::default();
        assert!(c.observe(t0, 0), "the first unit anchors");
        c
    }

    #[test]
    fn the_mapping_moves_forwards_only() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let now = t0 + Duration::from_secs(5);
        // (media ms at `now`, whether the mapping moves)
        for (ms, moves) in [
            (5000, false), // on time
            (4200, false), // a little behind: jitter, not a gap
            (3500, true),  // 1.5 s behind: a stall or failover gap, the mapping follows
            (7000, false), // 2 s ahead: a burst; moving back would step SR-timed receivers back
        ] {
            let mut c = anchored(t0);
            assert_eq!(c.observe(now, ms), moves, "media at {ms} ms");
            let want = if moves { ms } else { 5000 };
            assert_eq!(c.media_ms_at(now), Some(want), "media at {ms} ms");
        }
    }

    #[test]
    fn sender_reports_follow_the_mapping() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let track = TrackClock {
            ssrc: 7,
            clock_rate: 90_000,
            timestamp_offset: 1000,
            packets: 3,
            octets: 300,
        };
        let before = MediaClock::default().sender_info(&track, t0);
        assert_eq!(
            before.rtp_timestamp, 1000,
            "before any media: the offset alone"
        );
        let c = anchored(t0);
        let info = c.sender_info(&track, t0 + Duration::from_millis(2500));
        assert_eq!(info.rtp_timestamp, 1000 + 2500 * 90);
        assert_eq!(
            (info.ssrc, info.packet_count, info.octet_count),
            (7, 3, 300)
        );
        assert_eq!(info.ntp, ntp_timestamp(t0 + Duration::from_millis(2500)));
        // The 32-bit RTP clock wraps.
        let late = TrackClock {
            timestamp_offset: u32::MAX,
            ..track
        };
        assert_eq!(c.rtp_time_at(&late, t0 + Duration::from_millis(1)), 89);
    }
}
