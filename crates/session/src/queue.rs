//! The bounded queue of messages waiting for a connection, the window or the pacing.

use std::collections::VecDeque;

use crate::thin::{Events, Thin};
use std::sync::Arc;

use mqgate_codec::QoS;

use crate::{DeliveryOutcome, DropReason, Event, FullPolicy, Message, SessionConfig};

/// A message waiting to be sent, with the QoS it will be sent at.
#[derive(Debug, Clone)]
pub(crate) struct QueuedMessage {
    pub(crate) message: Arc<Message>,
    pub(crate) qos: QoS,
}

/// FIFO of [`QueuedMessage`]s with message, byte and age limits.
///
/// Every message that leaves it without being sent is reported as [`Event::Dropped`], so the
/// broker's counters and the message trace see each one.
#[derive(Debug, Default)]
pub(crate) struct OfflineQueue {
    entries: Thin<VecDeque<QueuedMessage>>,
    bytes: usize,
}

impl OfflineQueue {
    /// Frees the buffer while nothing is in it.
    pub(crate) fn release_idle_memory(&mut self) {
        self.entries.release_if_empty();
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.entries.iter()
    }

    /// Appends `entry`, applying the limits of `config`.
    pub(crate) fn push(
        &mut self,
        entry: QueuedMessage,
        config: &SessionConfig,
        now: u64,
        events: &mut Events,
    ) -> DeliveryOutcome {
        let size = entry.message.size();
        let bounds = config.queue_bounds();
        // Larger than a whole queue may be: it never fits, whatever is evicted.
        if !bounds.holds(0, u64::try_from(size).unwrap_or(u64::MAX)) {
            return DeliveryOutcome::Dropped(DropReason::TooLarge);
        }
        // Expired messages at the front go first, so they are not reported as evicted.
        self.drop_expired_front(config.message_ttl_ms, now, events);
        while !bounds.has_room(self.entries.len(), self.bytes, size) {
            if config.full_policy == FullPolicy::RefuseNew {
                return DeliveryOutcome::Refused;
            }
            match self.pop_front() {
                Some(old) => events.push_back(Event::Dropped {
                    message: old.message.id,
                    reason: DropReason::QueueFull,
                }),
                // Nothing left to evict: a limit of 0 messages.
                None => return DeliveryOutcome::Refused,
            }
        }
        self.bytes = self.bytes.saturating_add(size);
        self.entries.push_back(entry);
        DeliveryOutcome::Queued
    }

    /// Puts back a message that could not be sent after all, keeping its place; no limit
    /// applies, since it was within them a moment ago.
    pub(crate) fn push_front(&mut self, entry: QueuedMessage) {
        self.bytes = self.bytes.saturating_add(entry.message.size());
        self.entries.push_front(entry);
    }

    /// The oldest message that has not expired; expired ones on the way are dropped.
    pub(crate) fn pop_live(
        &mut self,
        ttl_ms: u64,
        now: u64,
        events: &mut Events,
    ) -> Option<QueuedMessage> {
        self.drop_expired_front(ttl_ms, now, events);
        self.pop_front()
    }

    /// Drops every expired message, wherever it is (messages are not always queued in
    /// publication order, so expired ones can hide behind younger ones).
    pub(crate) fn drop_expired(&mut self, ttl_ms: u64, now: u64, events: &mut Events) {
        let mut freed = 0usize;
        self.entries.retain(|q| {
            let expired = q.message.is_expired(now, ttl_ms);
            if expired {
                freed = freed.saturating_add(q.message.size());
                events.push_back(Event::Dropped {
                    message: q.message.id,
                    reason: DropReason::Expired,
                });
            }
            !expired
        });
        self.bytes = self.bytes.saturating_sub(freed);
    }

    /// Empties the queue, reporting every message with `reason`.
    pub(crate) fn clear(&mut self, reason: DropReason, events: &mut Events) {
        self.bytes = 0;
        // An empty queue (a new clean session's, at every CONNECT) makes no boxes to find
        // nothing in: `drain` and `extend` would make both.
        if self.entries.is_empty() {
            return;
        }
        events.extend(self.entries.take_all().map(|q| Event::Dropped {
            message: q.message.id,
            reason,
        }));
    }

    fn drop_expired_front(&mut self, ttl_ms: u64, now: u64, events: &mut Events) {
        while self
            .entries
            .front()
            .is_some_and(|q| q.message.is_expired(now, ttl_ms))
        {
            if let Some(old) = self.pop_front() {
                events.push_back(Event::Dropped {
                    message: old.message.id,
                    reason: DropReason::Expired,
                });
            }
        }
    }

    fn pop_front(&mut self) -> Option<QueuedMessage> {
        let entry = self.entries.pop_front()?;
        self.bytes = self.bytes.saturating_sub(entry.message.size());
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageId;
    use bytes::Bytes;
    use mqgate_codec::ByteStr;

    fn entry(id: u128, payload_len: usize, published_at_ms: u64) -> QueuedMessage {
        QueuedMessage {
            message: Arc::new(Message::new(
                MessageId(id),
                ByteStr::from_static("t"),
                Bytes::from(vec![0u8; payload_len]),
                QoS::AtLeastOnce,
                published_at_ms,
            )),
            qos: QoS::AtLeastOnce,
        }
    }

    fn ids(q: &OfflineQueue) -> Vec<u128> {
        q.iter().map(|e| e.message.id.0).collect()
    }

    fn dropped(events: &VecDeque<Event>) -> Vec<(u128, DropReason)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Dropped { message, reason } => Some((message.0, *reason)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn clearing_reports_every_message_and_an_empty_queue_makes_no_boxes() {
        let mut q = OfflineQueue::default();
        let mut events = Events::default();
        q.clear(DropReason::SessionDiscarded, &mut events);
        assert!(!events.is_boxed(), "nothing to report, nothing allocated");
        assert!(!q.entries.is_boxed());
        let config = SessionConfig::default();
        for id in 0..2 {
            let outcome = q.push(entry(id, 4, 0), &config, 0, &mut events);
            assert_eq!(outcome, DeliveryOutcome::Queued);
        }
        q.clear(DropReason::SessionDiscarded, &mut events);
        assert_eq!(
            dropped(&events),
            [
                (0, DropReason::SessionDiscarded),
                (1, DropReason::SessionDiscarded)
            ]
        );
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    /// (policy, max messages, max bytes, payload sizes pushed, expected outcomes, kept ids, dropped)
    #[test]
    fn limits_and_policies() {
        use DeliveryOutcome::*;
        type Row = (
            FullPolicy,
            usize,
            usize,
            &'static [usize],
            &'static [DeliveryOutcome],
            &'static [u128],
            &'static [(u128, DropReason)],
        );
        #[rustfmt::skip]
        let table: &[Row] = &[
            (FullPolicy::DropOldest, 2, 1000, &[1, 1, 1], &[Queued, Queued, Queued], &[1, 2], &[(0, DropReason::QueueFull)]),
            (FullPolicy::RefuseNew, 2, 1000, &[1, 1, 1], &[Queued, Queued, Refused], &[0, 1], &[]),
            // Byte limit: topic "t" counts 1, so each message of 4 counts 5.
            (FullPolicy::DropOldest, 10, 10, &[4, 4, 4], &[Queued, Queued, Queued], &[1, 2], &[(0, DropReason::QueueFull)]),
            (FullPolicy::RefuseNew, 10, 10, &[4, 4, 4], &[Queued, Queued, Refused], &[0, 1], &[]),
            // One message bigger than the byte limit: dropped whatever the policy.
            (FullPolicy::DropOldest, 10, 10, &[1, 20], &[Queued, Dropped(DropReason::TooLarge)], &[0], &[]),
            (FullPolicy::RefuseNew, 10, 10, &[1, 20], &[Queued, Dropped(DropReason::TooLarge)], &[0], &[]),
            // A limit of 0 messages queues nothing.
            (FullPolicy::DropOldest, 0, 10, &[1], &[Refused], &[], &[]),
        ];
        for (row, (policy, max_msgs, max_bytes, sizes, outcomes, kept, drops)) in
            table.iter().enumerate()
        {
            let config = SessionConfig {
                max_queued_messages: *max_msgs,
                max_queued_bytes: *max_bytes,
                full_policy: *policy,
                ..SessionConfig::default()
            };
            let mut q = OfflineQueue::default();
            let mut events = Events::default();
            let got: Vec<_> = sizes
                .iter()
                .enumerate()
                .map(|(i, len)| q.push(entry(i as u128, *len, 0), &config, 0, &mut events))
                .collect();
            assert_eq!(&got[..], *outcomes, "row {row}");
            assert_eq!(ids(&q), *kept, "row {row}");
            assert_eq!(dropped(&events), *drops, "row {row}");
            assert!(q.len() <= *max_msgs && q.bytes() <= *max_bytes, "row {row}");
        }
    }

    /// A queue holding messages (id, published at) of 3 payload bytes, pushed at `now`.
    fn queue_of(messages: &[(u128, u64)], now: u64) -> (OfflineQueue, Events) {
        let mut q = OfflineQueue::default();
        let mut events = Events::default();
        for (id, at) in messages {
            let outcome = q.push(
                entry(*id, 3, *at),
                &SessionConfig::default(),
                now,
                &mut events,
            );
            assert_eq!(outcome, DeliveryOutcome::Queued);
        }
        (q, events)
    }

    #[test]
    fn expired_messages_are_dropped_on_dequeue_and_counted_out() {
        let (mut q, mut events) = queue_of(&[(1, 0), (2, 50), (3, 100)], 100);
        assert_eq!(q.bytes(), 12);
        let next = q.pop_live(100, 140, &mut events).map(|e| e.message.id.0);
        assert_eq!(next, Some(2));
        assert_eq!(dropped(&events), [(1, DropReason::Expired)]);
        assert_eq!(q.bytes(), 4);
    }

    #[test]
    fn expired_messages_behind_younger_ones_are_found() {
        let (mut q, mut events) = queue_of(&[(1, 100), (2, 0), (3, 100)], 100);
        q.drop_expired(100, 150, &mut events);
        assert_eq!(ids(&q), [1, 3]);
        assert_eq!(dropped(&events), [(2, DropReason::Expired)]);
        assert_eq!(q.bytes(), 8);
    }
}
