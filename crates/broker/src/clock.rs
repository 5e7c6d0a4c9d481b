//! The broker's two clocks. Everything below the runtime (the session and status machines,
//! the store) takes time as an argument; these are the only places the broker reads it.
//!
//! - [`monotonic_ms`] drives every timer and every duration: keep-alive deadlines, offline
//!   pacing, how long a stalled receiver is skipped, message age in a session's queue. It
//!   never goes back and never jumps when the system clock is stepped (NTP, an operator), so a
//!   step cannot expire every connection at once or keep a dead one alive.
//! - [`unix_time_ms`] is the wall clock, used only where a time is shown or stored: status
//!   events, a message's publication time in the store, token and credential expiry, the
//!   store's expiry sweep, signed API requests.
//!
//! The monotonic clock starts at the wall-clock time of its first reading, so both read about
//! the same until the system clock is stepped; after a step they differ by the step. A
//! session compares a message's stored publication time with the monotonic clock to age it,
//! so a step of the system clock changes a queued message's age by at most that step, never a
//! keep-alive deadline.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, by the system clock; 0 if the clock is before 1970.
pub fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds on the broker's monotonic clock: the wall-clock time of the process's first
/// reading plus the time elapsed since, by [`Instant`]. Never decreases.
///
/// ```
/// let a = mqgate_broker::clock::monotonic_ms();
/// let b = mqgate_broker::clock::monotonic_ms();
/// assert!(b >= a);
/// ```
pub fn monotonic_ms() -> u64 {
    static ORIGIN: OnceLock<(Instant, u64)> = OnceLock::new();
    let (start, at) = ORIGIN.get_or_init(|| (Instant::now(), unix_time_ms()));
    let elapsed = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    at.saturating_add(elapsed)
}
