//! Backing off after accept errors, and logging at most once per interval.

use std::time::{Duration, Instant};

/// The first pause after a failed accept.
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// The longest pause: an accept loop out of descriptors tries again at least once a second.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// Accept errors are logged at most this often.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// "At most once per interval": [`RateLimit::check`] says whether to log now and how many
/// events were kept quiet since the last line.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(interval: Duration) -> RateLimit {
        RateLimit {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// Records one event at `now`. `Some(n)`: log it now, mentioning the `n` events suppressed
    /// since the previous line; `None`: keep quiet (the event is counted).
    pub fn check(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if !due {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The state of one accept loop's error handling.
///
/// ```ignore
/// match listener.accept().await {
///     Ok(a) => { backoff.succeeded(); a }
///     Err(e) => { backoff.failed(&e).await; continue }
/// }
/// ```
#[derive(Debug)]
pub struct AcceptBackoff {
    listener: &'static str,
    delay: Duration,
    log: RateLimit,
}

impl AcceptBackoff {
    /// `listener` names the accept loop in log lines ("RTMP", "HTTP"...).
    pub fn new(listener: &'static str) -> AcceptBackoff {
        AcceptBackoff {
            listener,
            delay: FIRST_DELAY,
            log: RateLimit::new(LOG_INTERVAL),
        }
    }

    /// An accept succeeded: the next failure starts from the shortest pause again.
    pub fn succeeded(&mut self) {
        self.delay = FIRST_DELAY;
    }

    /// An accept failed: logs (at most once per second) and sleeps, longer each time in a row.
    ///
    /// Running out of descriptors leaves the pending connection in the kernel's queue, so
    /// `accept` would fail again at once; without the pause the loop would spin and log
    /// thousands of lines a second.
    pub async fn failed(&mut self, err: &std::io::Error) {
        let pause = self.next_pause(err, Instant::now());
        tokio::time::sleep(pause).await;
    }

    /// Logs if due and returns how long to pause; the clock is an argument for tests.
    fn next_pause(&mut self, err: &std::io::Error, now: Instant) -> Duration {
        if let Some(suppressed) = self.log.check(now) {
            tracing::warn!(
                listener = %self.listener,
                error = %err,
                suppressed,
                retry_in_ms = self.delay.as_millis() as u64,
                "accept failed (out of file descriptors? raise `ulimit -n`)"
            );
        }
        let pause = self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_logs_once_per_interval_and_counts_the_rest() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut r = RateLimit::new(Duration::from_secs(1));
        let table = [
            (0, Some(0)),
            (10, None),
            (500, None),
            (999, None),
            (1000, Some(3)),
            (1001, None),
            (5000, Some(1)),
        ];
        for (at, want) in table {
            assert_eq!(r.check(ms(at)), want, "at {at} ms");
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_second_and_resets_after_success() {
        let err = std::io::Error::from_raw_os_error(24); // EMFILE
        let now = Instant::now();
        let mut b = AcceptBackoff::new("test");
        let pauses: Vec<u64> = (0..7)
            .map(|_| b.next_pause(&err, now).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [50, 100, 200, 400, 800, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.next_pause(&err, now), FIRST_DELAY);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_sleeps() {
        let err = std::io::Error::from_raw_os_error(24);
        let mut b = AcceptBackoff::new("test");
        let start = tokio::time::Instant::now();
        b.failed(&err).await;
        b.failed(&err).await;
        assert_eq!(start.elapsed(), Duration::from_millis(150));
    }
}
