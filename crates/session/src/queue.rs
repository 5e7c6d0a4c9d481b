//! The bounded queue of messages waiting for a connection, the window or the pacing.
//!
//! Held whole in memory, or (a persistent session whose driver keeps the queue in a store,
//! see [`Session::keep_queue_in_store`](crate::Session::keep_queue_in_store)) as a window:
//! the entries it will send next, in memory, and counters for the rest, which stays in the
//! store until a page of it is read back ([`Spill`]).

use std::collections::VecDeque;

use crate::thin::{Events, Thin};
use std::sync::Arc;

use mqgate_codec::QoS;

use crate::backlog::{QueuePage, QueueRead};
use crate::{DeliveryOutcome, DropReason, Event, FullPolicy, Message, MessageId, SessionConfig};

/// Most arrivals remembered while a page is being read (see [`Spill::recent`]); past it the
/// counters are kept as they are and the next page tells.
const RECENT_MAX: usize = 4096;

/// Fewest messages taken from pages that a store-backed queue remembers (see
/// [`Spill::paged`]); it remembers four windows' worth when that is more.
const PAGED_MIN: usize = 256;

/// The part of a store-backed queue that is not in memory: counters, where to read next, and
/// the read in progress.
#[derive(Debug)]
pub(crate) struct Spill {
    /// Most entries held in memory.
    window: usize,
    /// Entries behind the held ones, only in the store.
    len: usize,
    /// Their bytes (topic + payload). Exact while entries arrive and are read; an entry
    /// dropped from the store side without being read (drop-oldest while nothing is held)
    /// counts the average size of those not held.
    bytes: usize,
    /// The store sequence number of the last entry read back: everything up to it is held,
    /// in flight or gone.
    cursor: Option<u64>,
    /// A read was asked for and its page has not come back.
    reading: bool,
    /// Bumped whenever the queue is emptied, so a page read before is not taken.
    epoch: u64,
    /// Arrivals not held since the read was asked for: a page with nothing after it leaves
    /// exactly those not in it outside memory.
    recent: Vec<(MessageId, usize)>,
    /// More arrivals than [`RECENT_MAX`] came during the read.
    recent_overflow: bool,
    /// The client is away: nothing is held in memory, every arrival stays in the store.
    parked: bool,
    /// The last messages taken from pages, oldest first, and the lowest and highest of their
    /// ids. A message's delivery can reach the session after a page already returned its
    /// stored entry (the driver appends to the store before it hands the delivery over, and
    /// a page read in between sees the entry): that late copy is the same message, not a
    /// new one, and is dropped ([`Queue::take_paged`]).
    paged: VecDeque<MessageId>,
    paged_range: Option<(MessageId, MessageId)>,
}

impl Spill {
    fn new(window: usize) -> Self {
        Spill {
            window: window.max(1),
            len: 0,
            bytes: 0,
            cursor: None,
            reading: false,
            epoch: 0,
            recent: Vec::new(),
            recent_overflow: false,
            parked: false,
            paged: VecDeque::new(),
            paged_range: None,
        }
    }

    fn remember_paged(&mut self, id: MessageId) {
        let cap = self.window.saturating_mul(4).max(PAGED_MIN);
        if self.paged.len() >= cap {
            self.paged.pop_front();
            self.paged_range = None;
        }
        self.paged.push_back(id);
        match &mut self.paged_range {
            Some((low, high)) => {
                *low = (*low).min(id);
                *high = (*high).max(id);
            }
            None => self.paged_range = range_of(&self.paged),
        }
    }

    /// Whether `id` was taken from a page (and forgets it: a message has one late copy).
    fn take_paged(&mut self, id: MessageId) -> bool {
        // Ids grow with time, so a new message is outside the range: no search.
        let Some((low, high)) = self.paged_range else {
            return false;
        };
        if id < low || id > high {
            return false;
        }
        let Some(at) = self.paged.iter().position(|p| *p == id) else {
            return false;
        };
        self.paged.remove(at);
        self.paged_range = range_of(&self.paged);
        true
    }
}

fn range_of(ids: &VecDeque<MessageId>) -> Option<(MessageId, MessageId)> {
    let low = ids.iter().min()?;
    let high = ids.iter().max()?;
    Some((*low, *high))
}

/// A message waiting to be sent, with the QoS it will be sent at.
#[derive(Debug, Clone)]
pub(crate) struct QueuedMessage {
    pub(crate) message: Arc<Message>,
    pub(crate) qos: QoS,
    /// A shared subscription picked this session for this copy (see
    /// [`Session::handle_shared_delivery`](crate::Session::handle_shared_delivery)).
    pub(crate) shared: bool,
}

/// FIFO of [`QueuedMessage`]s with message, byte and age limits.
///
/// Every message that leaves it without being sent is reported as [`Event::Dropped`], so the
/// broker's counters and the message trace see each one.
#[derive(Debug, Default)]
pub(crate) struct OfflineQueue {
    /// The entries in memory: the whole queue, or the head of a store-backed one.
    entries: Thin<VecDeque<QueuedMessage>>,
    /// Bytes of `entries`.
    bytes: usize,
    /// `Some` for a store-backed queue (boxed: most sessions have none).
    spill: Option<Box<Spill>>,
}

impl OfflineQueue {
    /// Frees the buffer while nothing is in it.
    pub(crate) fn release_idle_memory(&mut self) {
        self.entries.release_if_empty();
    }

    /// Entries in the whole queue, in memory or not.
    pub(crate) fn len(&self) -> usize {
        self.entries
            .len()
            .saturating_add(self.spill.as_ref().map_or(0, |s| s.len))
    }

    /// Bytes of the whole queue, in memory or not.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
            .saturating_add(self.spill.as_ref().map_or(0, |s| s.bytes))
    }

    /// Entries held in memory.
    pub(crate) fn held_len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held in memory.
    pub(crate) fn held_bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue beyond a window lives in the driver's store.
    pub(crate) fn is_store_backed(&self) -> bool {
        self.spill.is_some()
    }

    /// From now on, at most `window` entries are held in memory; the rest stay in the store.
    /// Calling it again changes the window.
    pub(crate) fn keep_in_store(&mut self, window: usize) {
        match &mut self.spill {
            Some(spill) => spill.window = window.max(1),
            None => self.spill = Some(Box::new(Spill::new(window))),
        }
    }

    /// The client went away: what the window holds goes back to the store (it is there
    /// already; only the counters keep it), so an offline session holds no queued message,
    /// and arrivals stay in the store until [`unpark`](Self::unpark). The next read starts
    /// at the queue's head, since entries read before are no longer held.
    pub(crate) fn park(&mut self) {
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        spill.parked = true;
        spill.reading = false;
        if self.entries.is_empty() {
            return;
        }
        spill.len = spill.len.saturating_add(self.entries.len());
        spill.bytes = spill.bytes.saturating_add(self.bytes);
        spill.cursor = None;
        self.bytes = 0;
        self.entries.take_all().for_each(drop);
    }

    /// The client is back: the window fills again (from the store's pages).
    pub(crate) fn unpark(&mut self) {
        if let Some(spill) = self.spill.as_mut() {
            spill.parked = false;
        }
    }

    /// Back to a queue held whole in memory (a clean session's): only once it is empty.
    pub(crate) fn keep_in_memory(&mut self) {
        if self.is_empty() {
            self.spill = None;
        }
    }

    /// The read to ask the store for, if the window runs low and the store holds more;
    /// `skip` lists the messages the session holds elsewhere (in flight).
    /// `max_held` bounds what the session holds once the page is in (held here and in
    /// flight): no read while it holds that many, and a page no larger than the rest.
    pub(crate) fn next_read(
        &mut self,
        skip: impl Iterator<Item = (MessageId, bool)>,
        max_held: usize,
    ) -> Option<QueueRead> {
        let held = self.entries.len();
        let spill = self.spill.as_mut()?;
        if spill.reading || spill.len == 0 || held > spill.window / 2 {
            return None;
        }
        let skip: Vec<(MessageId, bool)> = self
            .entries
            .iter()
            .map(|q| (q.message.id, q.shared))
            .chain(skip)
            .collect();
        let room = max_held.saturating_sub(skip.len());
        if room == 0 {
            return None;
        }
        spill.reading = true;
        spill.recent.clear();
        spill.recent_overflow = false;
        Some(QueueRead {
            after_seq: spill.cursor,
            skip,
            max: (spill.window - held).min(room),
            epoch: spill.epoch,
        })
    }

    /// Whether `id` is a message this queue took from a page, delivered to it again (see
    /// [`Spill::paged`]); it is forgotten then.
    pub(crate) fn take_paged(&mut self, id: MessageId) -> bool {
        self.spill.as_mut().is_some_and(|s| s.take_paged(id))
    }

    /// The read asked for could not be made: it may be asked for again.
    pub(crate) fn read_failed(&mut self) {
        if let Some(spill) = &mut self.spill {
            spill.reading = false;
        }
    }

    /// Takes a page read from the store: its entries join the window in order, but those the
    /// session holds already (`held_elsewhere`: in flight) or in memory, by message and
    /// copy (a shared subscription's copy and a plain one are two entries). A page from
    /// before the queue was emptied is ignored. Returns whether it was taken.
    pub(crate) fn refill(
        &mut self,
        page: QueuePage,
        held_elsewhere: impl Fn(MessageId, bool) -> bool,
    ) -> bool {
        let Some(spill) = self.spill.as_mut() else {
            return false;
        };
        if page.epoch != spill.epoch || !spill.reading {
            return false;
        }
        spill.reading = false;
        for entry in page.entries {
            spill.cursor = Some(spill.cursor.map_or(entry.seq, |c| c.max(entry.seq)));
            let (id, shared) = (entry.message.id, entry.shared);
            let held = |q: &QueuedMessage| q.message.id == id && q.shared == shared;
            if held_elsewhere(id, shared) || self.entries.iter().any(held) {
                continue;
            }
            let size = entry.message.size();
            // An entry the counters do not know (they drifted below the store's) is held
            // all the same: it is a message the client is owed.
            if spill.len > 0 {
                spill.len -= 1;
                spill.bytes = spill.bytes.saturating_sub(size);
            }
            match spill.recent.iter().position(|(r, _)| *r == id) {
                Some(at) => {
                    spill.recent.swap_remove(at);
                }
                // Not an arrival seen during the read: its delivery may still be on its way.
                None => spill.remember_paged(id),
            }
            self.bytes = self.bytes.saturating_add(size);
            self.entries.push_back(QueuedMessage {
                message: entry.message,
                qos: entry.qos,
                shared,
            });
        }
        if !page.more && !spill.recent_overflow {
            // The store held nothing more when it was read: outside memory are only the
            // arrivals that came while it was read and were not in the page.
            spill.len = spill.recent.len();
            spill.bytes = spill.recent.iter().map(|(_, size)| size).sum();
        }
        spill.recent.clear();
        spill.recent_overflow = false;
        true
    }

    /// Counts one entry out of the part not held (the store drops its oldest by the same
    /// rule). `false` when nothing is outside memory.
    fn evict_unread(&mut self) -> bool {
        let Some(spill) = self.spill.as_mut().filter(|s| s.len > 0) else {
            return false;
        };
        // The oldest entry not held goes: one that was already outside memory when the read
        // was asked for, or else the oldest arrival since, whose size is known.
        let recent_oldest =
            (spill.reading && spill.len <= spill.recent.len() && !spill.recent.is_empty())
                .then(|| spill.recent.remove(0).1);
        let size = match recent_oldest {
            Some(size) => size,
            None if spill.len == 1 => spill.bytes,
            None => spill.bytes / spill.len,
        };
        spill.len -= 1;
        spill.bytes = spill.bytes.saturating_sub(size);
        true
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
        while !bounds.has_room(self.len(), self.bytes(), size) {
            if config.full_policy == FullPolicy::RefuseNew {
                return DeliveryOutcome::Refused;
            }
            match self.pop_front() {
                Some(old) => events.push_back(Event::Dropped {
                    message: old.message.id,
                    reason: DropReason::QueueFull,
                }),
                None if self.evict_unread() => events.push_back(Event::DroppedUnread {
                    reason: DropReason::QueueFull,
                }),
                // Nothing left to evict: a limit of 0 messages.
                None => return DeliveryOutcome::Refused,
            }
        }
        let held = self.entries.len();
        match self.spill.as_mut() {
            // Behind entries that are only in the store, or past the window: counted, left
            // in the store (its `Enqueue` put it there), read back in its turn.
            Some(spill)
                if spill.parked || spill.len > 0 || spill.reading || held >= spill.window =>
            {
                spill.len = spill.len.saturating_add(1);
                spill.bytes = spill.bytes.saturating_add(size);
                if spill.reading {
                    if spill.recent.len() < RECENT_MAX {
                        spill.recent.push((entry.message.id, size));
                    } else {
                        spill.recent_overflow = true;
                    }
                }
            }
            _ => {
                self.bytes = self.bytes.saturating_add(size);
                self.entries.push_back(entry);
            }
        }
        DeliveryOutcome::Queued
    }

    /// Counts entries that are in the store but not in memory (a session restored from its
    /// store's counters).
    pub(crate) fn add_unread(&mut self, len: usize, bytes: usize) {
        if let Some(spill) = self.spill.as_mut() {
            spill.len = spill.len.saturating_add(len);
            spill.bytes = spill.bytes.saturating_add(bytes);
        }
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
    /// Entries not in memory are only counted out: the driver removes them from its store
    /// with the session.
    pub(crate) fn clear(&mut self, reason: DropReason, events: &mut Events) {
        self.bytes = 0;
        if let Some(spill) = self.spill.as_mut() {
            spill.len = 0;
            spill.bytes = 0;
            spill.reading = false;
            spill.epoch = spill.epoch.wrapping_add(1);
            spill.recent.clear();
        }
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
            shared: false,
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
