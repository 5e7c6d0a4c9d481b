//! [`SessionConfig`]: every limit and policy of a session, named and documented.

use serde::{Deserialize, Serialize};

/// What the offline queue does when a new message would exceed a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FullPolicy {
    /// Evict the oldest queued messages until the new one fits; each eviction is reported as
    /// [`Event::Dropped`](crate::Event::Dropped) with [`DropReason::QueueFull`](crate::DropReason::QueueFull).
    #[default]
    DropOldest,
    /// Keep what is queued and refuse the new message:
    /// [`DeliveryOutcome::Refused`](crate::DeliveryOutcome::Refused), so the broker can push back
    /// on the publisher instead of acknowledging a message it cannot keep.
    RefuseNew,
}

/// How queued messages are released to a connected client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Pacing {
    /// Flow control only: release a queued message whenever the in-flight window has room.
    #[default]
    Window,
    /// At most `size` queued messages, then wait `interval_ms` before the next batch (and never
    /// more than the in-flight window allows). A `size` of 0 counts as 1.
    Batches {
        /// Messages per batch.
        size: u32,
        /// Pause between the starts of two batches, in milliseconds.
        interval_ms: u64,
    },
}

impl Pacing {
    /// The model service's offline pacing: 30 messages, then a 5 s pause.
    pub const MODEL_SERVICE: Pacing = Pacing::Batches {
        size: 30,
        interval_ms: 5_000,
    };
}

/// Limits and policies of one session. The defaults suit a phone or an IoT device.
///
/// Values come from configuration files, so none of them can make the session panic: a window
/// of 0 counts as 1, and a queue limit of 0 means nothing is ever queued.
///
/// ```
/// use mqgate_session::{FullPolicy, Pacing, SessionConfig};
/// let config = SessionConfig {
///     max_queued_messages: 100,
///     full_policy: FullPolicy::RefuseNew,
///     pacing: Pacing::MODEL_SERVICE,
///     ..SessionConfig::default()
/// };
/// assert_eq!(config.inflight_window, 32);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionConfig {
    /// Most outbound QoS 1 and 2 messages unacknowledged at once (packet ids in use).
    pub inflight_window: u16,
    /// Most messages waiting in the queue (not yet sent).
    pub max_queued_messages: usize,
    /// Most bytes (topic + payload) waiting in the queue.
    pub max_queued_bytes: usize,
    /// A queued message older than this (by [`Message::published_at_ms`](crate::Message::published_at_ms))
    /// is dropped instead of sent.
    pub message_ttl_ms: u64,
    /// What happens when a queue limit is reached.
    pub full_policy: FullPolicy,
    /// How queued messages are released after a reconnect.
    pub pacing: Pacing,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            inflight_window: 32,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            message_ttl_ms: 3 * 24 * 60 * 60 * 1000,
            full_policy: FullPolicy::DropOldest,
            pacing: Pacing::Window,
        }
    }
}

impl SessionConfig {
    /// The window actually applied: at least 1.
    pub(crate) fn window(&self) -> usize {
        usize::from(self.inflight_window.max(1))
    }
}
