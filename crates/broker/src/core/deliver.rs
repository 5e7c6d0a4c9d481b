//! Handing a routed message to one receiver, and waiting for a receiver that is full.
//!
//! An offer never waits: it puts the delivery in the receiver's inbox, its offline session or
//! its handover buffer, or hands it back as [`Blocked`] when the inbox is full. Who waits for
//! room, and how long, is the caller's business; [`settle`] is the wait of callers that have
//! nothing else to serve meanwhile (the embedding API, wills, the RocketMQ inflow). A
//! connection waits its own way, serving its own inbox meanwhile, with the same rules: a QoS 0
//! delivery waits at most [`Waits::qos0`], after which its receiver is skipped for a while
//! ([`Stalls`]); a QoS 1 or 2 one waits up to [`Waits::backpressure`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mqgate_session::{DeliveryOutcome, DropReason, Session};

use super::inbox;
use super::registry::{Delivery, Drops, Offer, Registry};
use crate::clock::monotonic_ms;
use crate::config::Limits;
use crate::Metrics;

/// How often a delivery to an inbox that just closed is offered again: the closing connection
/// is moving its session to the registry, which takes microseconds.
const CLOSED_INBOX_RETRIES: usize = 64;

/// How long a publisher skips waiting for a receiver that made it give up a QoS 0 wait (ms).
const STALLED_FOR_MS: u64 = 1_000;

/// A delivery waiting for room in a receiver's inbox.
#[derive(Debug)]
pub(crate) struct Blocked {
    pub(crate) client: Arc<str>,
    pub(crate) inbox: inbox::Sender<Delivery>,
    pub(crate) delivery: Delivery,
}

/// How long deliveries wait for a full receiver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waits {
    /// A QoS 1 or 2 delivery: past it, the waiting publisher gives up.
    pub(crate) backpressure: Duration,
    /// A QoS 0 delivery: past it, the message is dropped for that receiver.
    pub(crate) qos0: Duration,
}

impl From<&Limits> for Waits {
    fn from(limits: &Limits) -> Self {
        Waits {
            backpressure: limits.backpressure_timeout,
            qos0: limits.qos0_wait,
        }
    }
}

/// The receivers one publisher gave up waiting for at QoS 0, and until when (ms on the
/// monotonic clock): QoS 0 messages to them are dropped at once meanwhile, so one stuck
/// client cannot slow a publisher down at every message. A handful at most: a linear scan.
#[derive(Debug, Default)]
pub(crate) struct Stalls {
    until: Vec<(Arc<str>, u64)>,
}

impl Stalls {
    /// Remembers that `client` made this publisher give up a QoS 0 wait at `now`.
    pub(crate) fn mark(&mut self, client: Arc<str>, now: u64) {
        self.until.retain(|(_, until)| *until > now);
        self.until.push((client, now + STALLED_FOR_MS));
    }

    /// Whether a QoS 0 delivery to `client` is dropped without waiting at `now`.
    pub(crate) fn skips(&self, client: &str, now: u64) -> bool {
        self.until
            .iter()
            .any(|(c, until)| *until > now && c.as_ref() == client)
    }
}

/// Offers one delivery to its receiver, again while the receiver's connection is closing (it
/// is moving its session into the registry); `Some` when the inbox is full and the delivery
/// must wait for room. Every other end is counted.
pub(crate) fn offer(
    registry: &Registry,
    metrics: &Metrics,
    client: &str,
    delivery: Delivery,
    now: u64,
) -> Option<Blocked> {
    let mut delivery = delivery;
    for _ in 0..CLOSED_INBOX_RETRIES {
        match registry.deliver_to(client, delivery, now) {
            Offer::Full(inbox, back) => {
                return Some(Blocked {
                    client: Arc::from(client),
                    inbox,
                    delivery: back,
                })
            }
            Offer::Closed(back) => {
                delivery = back;
                std::thread::yield_now();
            }
            other => {
                count_offer(metrics, client, other);
                return None;
            }
        }
    }
    tracing::warn!(%client, "receiver's connection closed while routing; message dropped");
    metrics.session_dropped.fetch_add(1, Ordering::Relaxed);
    None
}

/// Counts an offer to `client` that ended (sent, handled by the registry, or nobody there)
/// and wakes the receiver if it waited. [`Offer::Full`] and [`Offer::Closed`] are not ends:
/// callers handle them.
pub(crate) fn count_offer(metrics: &Metrics, client: &str, offer: Offer) {
    match offer {
        Offer::Sent(waker) => {
            metrics.messages_delivered.fetch_add(1, Ordering::Relaxed);
            if let Some(waker) = waker {
                waker.wake();
            }
        }
        Offer::Done(outcome, dropped) => {
            count_outcome(metrics, client, outcome);
            count_drops(metrics, client, dropped);
        }
        Offer::Unknown => {
            metrics.p2p_no_target.fetch_add(1, Ordering::Relaxed);
        }
        Offer::Full(..) | Offer::Closed(_) => {}
    }
}

/// Counts what `client`'s session did with one delivery; a refusal or a drop for the
/// queue's bounds is counted by its reason too, and logged.
pub(crate) fn count_outcome(metrics: &Metrics, client: &str, outcome: DeliveryOutcome) {
    let counter = match outcome {
        DeliveryOutcome::Sent | DeliveryOutcome::Queued => &metrics.messages_delivered,
        DeliveryOutcome::Dropped(_) | DeliveryOutcome::Refused => &metrics.session_dropped,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    match outcome {
        DeliveryOutcome::Refused => {
            metrics.queue_full_refused.fetch_add(1, Ordering::Relaxed);
            log_queue_bound(client, "refused: queue full", 1);
        }
        DeliveryOutcome::Dropped(DropReason::TooLarge) => {
            metrics.queue_too_large.fetch_add(1, Ordering::Relaxed);
            log_queue_bound(client, "dropped: larger than max_queued_bytes", 1);
        }
        _ => {}
    }
}

/// Counts messages `client`'s session dropped from its queue, by reason; evictions from a
/// full queue are logged.
pub(crate) fn count_drops(metrics: &Metrics, client: &str, drops: Drops) {
    if drops.total == 0 {
        return;
    }
    metrics
        .session_dropped
        .fetch_add(drops.total, Ordering::Relaxed);
    metrics
        .queue_full_dropped
        .fetch_add(drops.queue_full, Ordering::Relaxed);
    metrics
        .queue_expired
        .fetch_add(drops.expired, Ordering::Relaxed);
    if drops.queue_full > 0 {
        log_queue_bound(client, "oldest dropped: queue full", drops.queue_full);
    }
}

/// When a queue-bound message was last logged (ms on the monotonic clock), and how many were
/// left out since: at most one line a second for the whole broker, however many clients
/// overflow.
static QUEUE_LOG_AT: AtomicU64 = AtomicU64::new(0);
static QUEUE_LOG_SKIPPED: AtomicU64 = AtomicU64::new(0);
const QUEUE_LOG_EVERY_MS: u64 = 1_000;

/// Logs that `client`'s queue bound cost `count` messages, rate-limited.
fn log_queue_bound(client: &str, what: &'static str, count: u64) {
    let now = monotonic_ms();
    let last = QUEUE_LOG_AT.load(Ordering::Relaxed);
    let due = now.saturating_sub(last) >= QUEUE_LOG_EVERY_MS || last == 0;
    if due
        && QUEUE_LOG_AT
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let skipped = QUEUE_LOG_SKIPPED.swap(0, Ordering::Relaxed);
        tracing::warn!(%client, count, skipped, "offline queue bound: {what} (see /metrics queue_*; `skipped`: like lines left out in the last second)");
    } else {
        QUEUE_LOG_SKIPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Hands deliveries that waited outside a session (a handover's buffer, the inbox of a
/// connection that is closing) to the session, in order. What the session drops is reported
/// in its events, like any other drop.
pub(crate) fn replay(session: &mut Session, deliveries: impl IntoIterator<Item = Delivery>) {
    let now = monotonic_ms();
    for delivery in deliveries {
        let _ = delivery.hand_to(session, now);
    }
}

/// Waits (at most `waits.backpressure` in all) until every blocked delivery is in its inbox,
/// for callers with nothing else to serve meanwhile (the embedding API, wills, the RocketMQ
/// inflow). A QoS 0 delivery waits at most `waits.qos0`, then is dropped and counted.
/// `false` when the limit passed first.
pub(crate) async fn settle(
    registry: &Registry,
    metrics: &Metrics,
    blocked: Vec<Blocked>,
    waits: Waits,
) -> bool {
    let (qos0, mut blocked): (Vec<Blocked>, Vec<Blocked>) =
        blocked.into_iter().partition(|b| b.delivery.is_qos0());
    for b in qos0 {
        wait_qos0(registry, metrics, b, waits.qos0).await;
    }
    if blocked.is_empty() {
        return true;
    }
    metrics.backpressure_waits.fetch_add(1, Ordering::Relaxed);
    let wait = async {
        while let Some(Blocked {
            client,
            inbox,
            delivery,
        }) = blocked.pop()
        {
            match inbox.reserve_owned().await {
                Ok(permit) => {
                    permit.send(delivery);
                    metrics.messages_delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    if let Some(again) = offer(registry, metrics, &client, delivery, monotonic_ms())
                    {
                        blocked.push(again);
                    }
                }
            }
        }
    };
    tokio::time::timeout(waits.backpressure, wait).await.is_ok()
}

/// Waits up to `limit` for room for a QoS 0 delivery; drops it (counted) after that. `false`
/// when it was dropped because the receiver stayed full.
async fn wait_qos0(
    registry: &Registry,
    metrics: &Metrics,
    blocked: Blocked,
    limit: Duration,
) -> bool {
    let Blocked {
        client,
        inbox,
        delivery,
    } = blocked;
    match tokio::time::timeout(limit, inbox.reserve_owned()).await {
        Ok(Ok(permit)) => {
            permit.send(delivery);
            metrics.messages_delivered.fetch_add(1, Ordering::Relaxed);
            true
        }
        // The receiver closed meanwhile: its session is in the registry now; a QoS 0 message
        // is not queued for it anyway, so try once more without waiting.
        Ok(Err(_)) => {
            if offer(registry, metrics, &client, delivery, monotonic_ms()).is_some() {
                metrics.qos0_dropped.fetch_add(1, Ordering::Relaxed);
            }
            true
        }
        Err(_) => {
            metrics.qos0_dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}
