//! The broker's background loops, each ended by the shutdown signal:
//!
//! - [`timers`]: the one timer of every connection (keep-alive, offline pacing), checked every
//!   [`TIMER_TICK`] and only when one may be due;
//! - [`expiry_sweep`]: removes expired messages from the store;
//! - [`token_watch`]: closes connections whose login token expired or was revoked, when
//!   `auth.disconnect_on_token_invalid` asks for it;
//! - [`trace_sweep`]: removes trace records older than the retention, and the oldest while
//!   the trace log is over its size bound;
//! - [`session_expiry`]: ends the offline MQTT 5 sessions whose Session Expiry Interval
//!   passed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mqgate_store::Store;
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use crate::auth::Access;
use crate::clock::{monotonic_ms, unix_time_ms};
use crate::core::registry::Registry;
use crate::core::trace::Tracer;
use crate::core::Core;
use crate::Metrics;

/// How often [`timers`] looks for due timers: how late a keep-alive expiry can be found.
pub(crate) const TIMER_TICK: Duration = Duration::from_millis(100);

/// Most messages the expiry sweep handles per transaction.
const SWEEP_BATCH: usize = 1024;
/// Most sweep transactions per round, so one round never runs unbounded.
const SWEEP_ROUNDS: usize = 64;

/// The clock of a periodic loop: a tick every period (a late tick is delayed, not bunched
/// up) until the broker shuts down.
struct Ticker {
    tick: Interval,
    shutdown: watch::Receiver<bool>,
}

impl Ticker {
    fn new(shutdown: watch::Receiver<bool>, every: Duration) -> Self {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ticker { tick, shutdown }
    }

    /// Waits for the next tick: `false` once the broker shuts down.
    async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.shutdown.changed() => false,
            _ = self.tick.tick() => true,
        }
    }
}

/// Every [`TIMER_TICK`], wakes the connections whose timer is due on the monotonic clock,
/// looking at them only when one may be (see [`Timers`](crate::core::inbox::Timers)).
pub(crate) async fn timers(registry: Arc<Registry>, shutdown: watch::Receiver<bool>) {
    let mut ticker = Ticker::new(shutdown, TIMER_TICK);
    while ticker.next().await {
        let now = monotonic_ms();
        if registry.timers.may_be_due(now) {
            registry.wake_due(now);
        }
    }
}

/// How often a sweep runs for a lifetime of `message_ttl_ms` (the message TTL for the store's
/// expiry sweep, the retention for the trace sweep): a quarter of it, between 100 ms and a
/// minute (so an expired message stays on disk at most a quarter TTL longer, and a 3-day TTL
/// costs one small transaction a minute).
pub(crate) fn sweep_interval(message_ttl_ms: u64) -> Duration {
    Duration::from_millis((message_ttl_ms / 4).clamp(100, 60_000))
}

/// Removes expired messages from the store every `every`, in bounded batches, off the
/// runtime's workers. Expiry is by the messages' stored publication time: the wall clock.
pub(crate) async fn expiry_sweep(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    every: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let mut ticker = Ticker::new(shutdown, every);
    while ticker.next().await {
        let store = store.clone();
        let metrics = metrics.clone();
        let swept = tokio::task::spawn_blocking(move || {
            let mut total = 0;
            for _ in 0..SWEEP_ROUNDS {
                match store.sweep_expired(unix_time_ms(), SWEEP_BATCH) {
                    Ok(n) => {
                        total += n;
                        if n < SWEEP_BATCH {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "expiry sweep failed");
                        metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            total
        })
        .await
        .unwrap_or(0);
        if swept > 0 {
            tracing::info!(messages = swept, "expired messages swept from the store");
        }
    }
}

/// How often [`session_expiry`] looks for expired sessions: the Session Expiry Interval
/// counts in seconds.
pub(crate) const SESSION_EXPIRY_TICK: Duration = Duration::from_secs(1);

/// Every `every`, ends the offline MQTT 5 sessions whose Session Expiry Interval passed on
/// the broker's monotonic clock (see [`Core::end_expired_sessions`]).
pub(crate) async fn session_expiry(
    core: Arc<Core>,
    every: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let mut ticker = Ticker::new(shutdown, every);
    while ticker.next().await {
        let ended = core.end_expired_sessions(monotonic_ms());
        if ended > 0 {
            tracing::info!(sessions = ended, "expired sessions ended");
        }
    }
}

/// Checks the live token connections every `every`, and at once when a token is revoked;
/// closes those whose token is no longer valid.
pub(crate) async fn token_watch(
    access: Arc<Access>,
    registry: Arc<Registry>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let watch = &access.tokens;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(every) => {}
            () = watch.asked() => {}
        }
        watch.sweep(access.core.as_deref(), &registry);
    }
}

/// Sweeps the trace log every `every` (see [`sweep_interval`], from the retention), off the
/// runtime's workers. Retention is by the records' wall-clock times.
pub(crate) async fn trace_sweep(
    trace: Arc<Tracer>,
    every: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let mut ticker = Ticker::new(shutdown, every);
    while ticker.next().await {
        let trace = trace.clone();
        let removed = tokio::task::spawn_blocking(move || trace.sweep(unix_time_ms()))
            .await
            .unwrap_or(0);
        if removed > 0 {
            tracing::debug!(segments = removed, "old trace records swept");
        }
    }
}
