//! Gives freed memory back to the operating system after the load drops.
//!
//! glibc's allocator keeps memory that viewers freed in its arenas for reuse, so after a thousand
//! viewers leave, the process RSS stays at its peak although nothing holds that memory (measured:
//! 6.7 MB idle, 31.4 MB with 1,000 RTMP viewers, still 31.4 MB ten seconds after they left, 7.8 MB
//! after `malloc_trim`). A small task watches the load and trims once it has fallen.

use std::time::Duration;

use bus::Bus;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often the load is checked.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// A fall in load (viewers, or a stream counted as this many) that is worth a trim.
const MIN_DROP: u64 = 64;

/// Decides when to trim: the highest load seen since the last trim, against the load now.
#[derive(Debug, Default)]
struct Trigger {
    high: u64,
}

impl Trigger {
    /// Notes the current load; true when it has fallen by [`MIN_DROP`] or more since the peak.
    fn observe(&mut self, load: u64) -> bool {
        self.high = self.high.max(load);
        if self.high >= load + MIN_DROP {
            self.high = load;
            return true;
        }
        false
    }
}

/// Viewers of every stream, plus [`MIN_DROP`] per stream (a stream's caches are worth that many
/// viewers' buffers, so a stream ending is a fall worth trimming for too).
fn load(bus: &Bus) -> u64 {
    bus.streams()
        .iter()
        .map(|s| s.stats().viewers.iter().sum::<u64>() + MIN_DROP)
        .sum()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes no pointers; glibc locks each arena while it trims it.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// Starts the watcher; it stops with `shutdown`.
pub(crate) fn spawn(tasks: &mut JoinSet<()>, bus: Bus, shutdown: CancellationToken) {
    tasks.spawn(async move {
        let mut trigger = Trigger::default();
        let mut tick = tokio::time::interval(CHECK_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let now = load(&bus);
            if trigger.observe(now) {
                tracing::debug!(
                    load = now,
                    "load fell; returning freed memory to the system"
                );
                // Trimming walks the heap; keep it off the runtime's worker threads.
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_after_a_fall_from_the_peak() {
        let mut t = Trigger::default();
        let seen: Vec<bool> = [
            0,
            500,
            1000,
            990,
            950,
            200,
            200,
            250,
            200,
            250 + MIN_DROP,
            0,
        ]
        .into_iter()
        .map(|load| t.observe(load))
        .collect();
        assert_eq!(
            seen,
            [false, false, false, false, false, true, false, false, false, false, true]
        );
    }

    #[test]
    fn a_stream_counts_as_min_drop_viewers() {
        let bus = Bus::new(bus::BusOptions::default());
        assert_eq!(load(&bus), 0);
        let info = bus::PublisherInfo {
            protocol: bus::Protocol::Internal,
            peer: None,
            query: None,
        };
        let _p = bus.publish("live/a", info).expect("free key");
        let _sub = bus.subscribe("live/a", bus::Protocol::Rtmp).expect("live");
        assert_eq!(load(&bus), MIN_DROP + 1);
    }
}
