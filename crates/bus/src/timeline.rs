//! Turns publishers' 32-bit millisecond timestamps into one continuous 64-bit timeline.
//!
//! RTMP timestamps are 32-bit milliseconds and wrap after about 49.7 days; encoders also restart
//! at zero when they reconnect, and some jump when their clock is reset. Players stall on a large
//! jump or regression, so the bus keeps a continuous timeline: small deltas (including the few
//! milliseconds by which audio and video interleave out of order) pass through, and a step larger
//! than the threshold is replaced by a nominal step and logged.

/// The step used after a correction when no earlier positive delta is known.
const DEFAULT_STEP_MS: u64 = 1;
/// A corrected step never exceeds this, whatever the last delta was.
const MAX_STEP_MS: u64 = 100;

/// A correction applied to one timestamp, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Correction {
    /// The raw 32-bit timestamp the publisher sent.
    pub raw: u32,
    /// The signed distance from the previous raw timestamp that was judged a jump.
    pub delta_ms: i64,
    /// The timestamp it was given instead.
    pub corrected: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// The previous raw timestamp of the current publisher.
    last_raw: Option<u32>,
    /// `out = unwrapped + offset`; `unwrapped` accumulates signed 32-bit deltas.
    unwrapped: i64,
    offset: i64,
    /// The largest output timestamp so far (any track).
    high_water: u64,
    /// The largest presentation time so far (timestamp plus composition time): with B-frames a
    /// publisher that stops mid-GOP has shown frames later than its last decode timestamp.
    presented: u64,
    /// A first timestamp has been mapped: later publishers continue after it.
    started: bool,
    /// The last positive delta seen, used as the nominal step after a correction.
    last_step: u64,
    jump_threshold_ms: i64,
}

impl Timeline {
    pub(crate) fn new(jump_threshold_ms: u64) -> Timeline {
        Timeline {
            jump_threshold_ms: i64::try_from(jump_threshold_ms).unwrap_or(i64::MAX),
            ..Timeline::default()
        }
    }

    /// Starts a new publisher: its first timestamp continues just after the timeline's high water
    /// mark, so viewers that stay through a reconnect never see time run backwards.
    pub(crate) fn restart(&mut self) {
        self.last_raw = None;
    }

    /// Maps one raw timestamp; returns the timeline value and the correction made, if any.
    pub(crate) fn map(&mut self, raw: u32) -> (u64, Option<Correction>) {
        let Some(prev) = self.last_raw.replace(raw) else {
            return (self.start(raw), None);
        };
        // The signed 32-bit difference handles the wrap at 2^32 for free.
        let delta = i64::from(raw.wrapping_sub(prev) as i32);
        if delta.abs() > self.jump_threshold_ms {
            let corrected = self.jump(raw);
            return (
                corrected,
                Some(Correction {
                    raw,
                    delta_ms: delta,
                    corrected,
                }),
            );
        }
        self.unwrapped += delta;
        if delta > 0 {
            self.last_step = delta.unsigned_abs().min(MAX_STEP_MS);
        }
        (self.emit(), None)
    }

    /// Records the presentation time of a mapped tag (its timestamp plus composition time), so a
    /// restart or a jump continues after everything viewers were shown, not only after the last
    /// decode timestamp. Otherwise a decoder would see the new publisher's first picture
    /// presented before the old one's last.
    pub(crate) fn presented(&mut self, pts: u64) {
        self.presented = self.presented.max(pts);
    }

    fn start(&mut self, raw: u32) -> u64 {
        self.unwrapped = i64::from(raw);
        if !std::mem::replace(&mut self.started, true) {
            // The very first publisher: keep its timestamps as they are.
            self.offset = 0;
        } else {
            self.offset = self.next() as i64 - self.unwrapped;
        }
        self.emit()
    }

    fn jump(&mut self, raw: u32) -> u64 {
        self.unwrapped = i64::from(raw);
        self.offset = self.next() as i64 - self.unwrapped;
        self.emit()
    }

    /// Where the timeline continues after a restart or a jump.
    fn next(&self) -> u64 {
        self.high_water
            .max(self.presented)
            .saturating_add(self.step())
    }

    fn step(&self) -> u64 {
        if self.last_step == 0 {
            DEFAULT_STEP_MS
        } else {
            self.last_step
        }
    }

    fn emit(&mut self) -> u64 {
        let out = (self.unwrapped + self.offset).max(0) as u64;
        self.high_water = self.high_water.max(out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds raw timestamps and returns the mapped ones; `restart_at` marks a new publisher.
    fn check(threshold: u64, raws: &[u32], restart_at: &[usize], want: &[u64]) {
        let mut t = Timeline::new(threshold);
        let got: Vec<u64> = raws
            .iter()
            .enumerate()
            .map(|(i, &raw)| {
                if restart_at.contains(&i) {
                    t.restart();
                }
                t.map(raw).0
            })
            .collect();
        assert_eq!(got, want, "raws {raws:?}");
    }

    #[test]
    fn passes_ordinary_timestamps_through() {
        check(5000, &[0, 23, 40, 46, 80], &[], &[0, 23, 40, 46, 80]);
    }

    #[test]
    fn keeps_small_interleaving_regressions() {
        // Audio a few ms behind video is normal FLV interleaving and must not be "corrected".
        check(
            5000,
            &[1000, 1040, 1023, 1080],
            &[],
            &[1000, 1040, 1023, 1080],
        );
    }

    #[test]
    fn unwraps_the_32_bit_wrap() {
        let near = u32::MAX - 20;
        check(
            5000,
            &[near, u32::MAX, 9, 30],
            &[],
            &[
                u64::from(near),
                u64::from(u32::MAX),
                u64::from(u32::MAX) + 10,
                u64::from(u32::MAX) + 31,
            ],
        );
    }

    #[test]
    fn corrects_a_forward_jump_with_the_last_step() {
        check(
            5000,
            &[0, 40, 80, 900_000, 900_040],
            &[],
            &[0, 40, 80, 120, 160],
        );
    }

    #[test]
    fn corrects_a_regression() {
        check(
            5000,
            &[100_000, 100_040, 10, 50],
            &[],
            &[100_000, 100_040, 100_080, 100_120],
        );
    }

    #[test]
    fn continues_after_a_publisher_restart() {
        check(5000, &[0, 40, 80, 0, 40], &[3], &[0, 40, 80, 120, 160]);
    }

    #[test]
    fn a_restart_continues_after_the_last_presented_picture() {
        // The old publisher's last picture is presented 120 ms after its decode time (B-frames).
        let mut t = Timeline::new(5000);
        t.map(0);
        let (last, _) = t.map(40);
        t.presented(last + 120);
        t.restart();
        assert_eq!(
            t.map(0).0,
            200,
            "after 160 ms presented, plus the last step"
        );
    }

    #[test]
    fn reports_the_correction() {
        let mut t = Timeline::new(1000);
        t.map(0);
        let (_, c) = t.map(5000);
        assert_eq!(
            c,
            Some(Correction {
                raw: 5000,
                delta_ms: 5000,
                corrected: 1
            })
        );
    }
}
