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
/// assert_eq!(config.inflight_window, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionConfig {
    /// Most outbound QoS 1 and 2 messages unacknowledged at once (packet ids in use); 100
    /// by default. Measured side by side (benches/README.md), 100 delivered 1.3 to 1.6 times
    /// what 32 did to a subscriber taking QoS 1 from four publishers, with the same latency
    /// at 10 000 messages/s; the window holds a reference and a packet id per unacknowledged
    /// message.
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
            inflight_window: 100,
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

    /// The bounds of this session's queue.
    pub fn queue_bounds(&self) -> QueueBounds {
        QueueBounds {
            max_messages: u64::try_from(self.max_queued_messages).unwrap_or(u64::MAX),
            max_bytes: u64::try_from(self.max_queued_bytes).unwrap_or(u64::MAX),
        }
    }
}

/// The bounds of one queue of messages, and the one rule for them that the session's queue,
/// the broker (when it decides whether a receiver can take more) and the store (when it
/// trims a stored queue) all apply: a queue is within its bounds while it holds at most
/// `max_messages` messages and `max_bytes` bytes (topic + payload).
///
/// ```
/// use mqgate_session::QueueBounds;
/// let bounds = QueueBounds { max_messages: 2, max_bytes: 100 };
/// assert!(bounds.holds(2, 100));
/// assert!(!bounds.holds(3, 10));
/// assert!(bounds.has_room(1, 60, 40));
/// assert!(!bounds.has_room(1, 60, 41));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBounds {
    /// Most messages.
    pub max_messages: u64,
    /// Most bytes.
    pub max_bytes: u64,
}

impl QueueBounds {
    /// Whether a queue of `messages` messages and `bytes` bytes is within the bounds.
    pub fn holds(&self, messages: u64, bytes: u64) -> bool {
        messages <= self.max_messages && bytes <= self.max_bytes
    }

    /// Whether a queue of `messages` messages and `bytes` bytes stays within the bounds with
    /// one more message of `size` bytes.
    pub fn has_room(&self, messages: usize, bytes: usize, size: usize) -> bool {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.holds(
            wide(messages).saturating_add(1),
            wide(bytes).saturating_add(wide(size)),
        )
    }
}
