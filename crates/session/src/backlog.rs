//! A queue kept in the driver's store: the session holds a window of it and asks for pages.
//!
//! ```text
//!   keep_queue_in_store(window) ─┐          ┌─▶ poll_queue_read() -> QueueRead   (read the store
//!   refill(QueuePage, now) ──────┼─▶ Session┤                                     off the runtime)
//!   queue_read_failed() ─────────┘          └─▶ queued_in_memory()               (memory accounting)
//! ```
//!
//! The store holds every queued entry (the driver appends each delivery it makes durable,
//! before handing it to the session); the session holds the entries it will send next, at
//! most `window` of them while its client is online and none while it is away, and counters
//! for the whole queue, so the queue's limits (messages,
//! bytes, age, full policy) keep their meaning over all of it. When the window runs low while
//! the store holds more and the client is online, [`Session::poll_queue_read`] asks for the
//! next page: the entries after the last sequence number it read, skipping the messages it
//! holds. The driver reads them wherever reading does not block its connections and hands
//! them back with [`Session::refill`].

use std::sync::Arc;

use mqgate_codec::QoS;

use crate::{Message, MessageId, Session};

/// A page of a store-backed queue the session asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRead {
    /// Read the entries after this store sequence number; `None`: from the queue's start.
    pub after_seq: Option<u64>,
    /// Messages the session holds already (in its window or in flight): leave them out.
    /// Each as (message, shared mark): a shared subscription's copy and a plain copy of one
    /// message are two entries (see [`PageEntry::shared`]).
    pub skip: Vec<(MessageId, bool)>,
    /// Most entries to return.
    pub max: usize,
    /// Hand it back in [`QueuePage::epoch`]: a page read before the queue was emptied (the
    /// session was discarded meanwhile) is ignored.
    pub epoch: u64,
}

/// One entry of a page: a queued message, its store sequence number and its delivery QoS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageEntry {
    /// Its position in the store's queue: increasing, never reused.
    pub seq: u64,
    /// The message.
    pub message: Arc<Message>,
    /// The QoS it will be delivered at.
    pub qos: QoS,
    /// A shared subscription picked the session for this copy (see
    /// [`Session::handle_shared_delivery`]).
    pub shared: bool,
}

/// The answer to a [`QueueRead`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueuePage {
    /// Entries in queue order, at most [`QueueRead::max`], none of [`QueueRead::skip`].
    pub entries: Vec<PageEntry>,
    /// The store held more entries after these when it was read.
    pub more: bool,
    /// [`QueueRead::epoch`] of the read.
    pub epoch: u64,
}

/// Length and bytes of a stored queue, as the store counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounters {
    /// Entries.
    pub messages: u64,
    /// Topic plus payload bytes.
    pub bytes: u64,
}

impl Session {
    /// Keeps this persistent session's queue in the driver's store, holding at most `window`
    /// entries (at least 1) in memory while the client is online and none while it is away; see the [module](crate::backlog) rules. The driver
    /// must append every QoS 1 and 2 delivery to the store before handing it to the session,
    /// remove an entry once the session moved it in flight, and answer
    /// [`poll_queue_read`](Self::poll_queue_read). Calling it again changes the window. A
    /// CONNECT with cleanSession = 1 brings the queue back in memory.
    pub fn keep_queue_in_store(&mut self, window: usize) {
        self.queue.keep_in_store(window);
    }

    /// Whether the queue beyond a window lives in the driver's store.
    pub fn is_queue_in_store(&self) -> bool {
        self.queue.is_store_backed()
    }

    /// The page of the stored queue to read next, when the client is online, the window runs
    /// low (half empty) and the store holds more. One read at a time: the next is asked for
    /// once this one's page came back ([`refill`](Self::refill)) or failed
    /// ([`queue_read_failed`](Self::queue_read_failed)) or the connection was lost (a page
    /// read for a lost connection is ignored).
    pub fn poll_queue_read(&mut self) -> Option<QueueRead> {
        self.poll_queue_read_within(usize::MAX)
    }

    /// [`poll_queue_read`](Self::poll_queue_read), holding at most `max_held` messages
    /// (queued in memory and in flight together) once the page is in: no read while the
    /// session holds that many, and a page no larger than the rest. How a driver bounds the
    /// memory of many sessions draining backlogs at once: the next read is asked for as
    /// acknowledgements free room. At least one message may always be held.
    ///
    /// ```
    /// use mqgate_codec::ByteStr;
    /// use mqgate_session::{Session, SessionConfig};
    /// let mut session = Session::new(ByteStr::from_static("GID_a@@@1"), SessionConfig::default());
    /// // A session that keeps nothing in a store never asks for a read.
    /// assert!(session.poll_queue_read_within(8).is_none());
    /// ```
    pub fn poll_queue_read_within(&mut self, max_held: usize) -> Option<QueueRead> {
        if !self.is_online() {
            return None;
        }
        let inflight = self.inflight.iter().filter(|e| e.message.is_some());
        let skip = inflight.map(|e| (e.message_id, e.shared));
        self.queue.next_read(skip, max_held.max(1))
    }

    /// The read of [`poll_queue_read`](Self::poll_queue_read) failed: it will be asked for
    /// again.
    pub fn queue_read_failed(&mut self) {
        self.queue.read_failed();
    }

    /// Takes a page read from the store (an answer to
    /// [`poll_queue_read`](Self::poll_queue_read)) and releases what the window and the
    /// pacing allow. Entries the session holds already are left out.
    pub fn refill(&mut self, page: QueuePage, now: u64) {
        let inflight = &self.inflight;
        let taken = self.queue.refill(page, |id, shared| {
            inflight
                .iter()
                .any(|e| e.message_id == id && e.shared == shared && e.message.is_some())
        });
        if taken {
            self.queue
                .drop_expired(self.config.message_ttl_ms, now, &mut self.events);
            self.release_queued(now);
        }
    }

    /// Messages and bytes (topic + payload) of the queue held in memory: all of it for a
    /// queue kept in memory, at most the window for one kept in the store.
    pub fn queued_in_memory(&self) -> (usize, usize) {
        (self.queue.held_len(), self.queue.held_bytes())
    }

    /// Rebuilds an offline, persistent session whose queue stays in the store: `record`'s
    /// own `queue` is ignored, `queued` are the stored queue's counters, and nothing of it is
    /// read until the client is online and asks ([`poll_queue_read`](Self::poll_queue_read)).
    /// `lookup` finds the bodies of the messages in flight.
    ///
    /// # Errors
    /// See [`RestoreError`](crate::RestoreError).
    pub fn restore_store_backed(
        mut record: crate::SessionRecord,
        lookup: impl FnMut(MessageId) -> Option<Arc<Message>>,
        config: crate::SessionConfig,
        window: usize,
        queued: QueueCounters,
        now: u64,
    ) -> Result<Session, crate::RestoreError> {
        record.queue.clear();
        let mut session = Session::restore_with(record, lookup, config, now)?;
        session.keep_queue_in_store(window);
        session.queue.park();
        let wide = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        session
            .queue
            .add_unread(wide(queued.messages), wide(queued.bytes));
        Ok(session)
    }
}
