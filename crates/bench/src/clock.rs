//! The generator's one clock: nanoseconds since the run started.

use std::time::{Duration, Instant};

/// The start of a run; every timestamp in payloads and reports is relative to it, so
/// publisher and subscriber (same process) compare like with like.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
}

impl RunClock {
    /// Reads the monotonic clock: the generator's only clock read besides tokio's timers.
    pub fn start_now() -> Self {
        RunClock {
            start: Instant::now(),
        }
    }

    /// Nanoseconds since [`RunClock::start_now`].
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The tokio instant `seconds` after the start (negative or NaN: the start).
    pub fn deadline(&self, seconds: f64) -> tokio::time::Instant {
        let bound = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO);
        tokio::time::Instant::from_std(self.start + bound)
    }
}
