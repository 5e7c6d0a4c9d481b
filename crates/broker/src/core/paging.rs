//! [`Paging`]: one memory budget for the queued messages that sessions read back from the
//! store, however many sessions drain their backlogs at once.
//!
//! Each session holds at most its window of queued messages (`[session] queue_window`) plus
//! its in-flight window; ten thousand devices reconnecting to deep backlogs at once would
//! hold all of that together. Here the sessions with messages left in the store share
//! `[session] backlog_memory_bytes`. Before each page read a session claims what it may hold
//! once the page is in (queued in memory and in flight together, in messages of the average
//! size read so far): an equal share of the budget, no more than the others' claims leave
//! free, and always at least one message, so every session moves. Its claim is renewed at
//! each read and given back once nothing of its queue is left in the store and it holds
//! none of what it read (nothing queued in memory, nothing in flight), or its connection
//! ends. A session reads its next page as its client's acknowledgements free
//! room, so all sessions drain at once, at the pace of their acknowledgements, within the
//! budget (and one message per session beyond it, at worst).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use mqgate_session::{QueuePage, QueueRead, Session};

/// The size assumed for a queued message before any page was read.
const FIRST_GUESS_BYTES: u64 = 1024;

/// The budget, the sessions sharing it and their claims, and the average size of what
/// pages returned.
#[derive(Debug)]
pub(crate) struct Paging {
    budget: u64,
    draining: AtomicUsize,
    /// Messages claimed by all sessions sharing the budget.
    claimed: AtomicUsize,
    entries: AtomicU64,
    bytes: AtomicU64,
}

impl Paging {
    /// A budget of `budget` bytes.
    pub(crate) fn new(budget: usize) -> Arc<Self> {
        Arc::new(Paging {
            budget: u64::try_from(budget).unwrap_or(u64::MAX),
            draining: AtomicUsize::new(0),
            claimed: AtomicUsize::new(0),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    /// The budget in messages of the average size read so far.
    fn budget_messages(&self) -> usize {
        let average = match self.entries.load(Ordering::Relaxed) {
            0 => FIRST_GUESS_BYTES,
            n => (self.bytes.load(Ordering::Relaxed) / n).max(1),
        };
        usize::try_from(self.budget / average).unwrap_or(usize::MAX)
    }

    /// Claims, for the session holding `mark` (which joins the sessions sharing the budget
    /// if it had not), what it may hold once its next page is in: queued in memory and in
    /// flight together, in messages. Its equal share, within what the other sessions'
    /// claims leave free, and at least one.
    pub(crate) fn claim(self: &Arc<Self>, mark: &mut Option<Draining>) -> usize {
        let mark = mark.get_or_insert_with(|| {
            self.draining.fetch_add(1, Ordering::Relaxed);
            Draining {
                paging: self.clone(),
                claim: 0,
            }
        });
        let budget = self.budget_messages();
        let sessions = self.draining.load(Ordering::Relaxed).max(1);
        let others = self
            .claimed
            .load(Ordering::Relaxed)
            .saturating_sub(mark.claim);
        let claim = (budget / sessions)
            .min(budget.saturating_sub(others))
            .max(1);
        if claim >= mark.claim {
            self.claimed
                .fetch_add(claim - mark.claim, Ordering::Relaxed);
        } else {
            self.claimed
                .fetch_sub(mark.claim - claim, Ordering::Relaxed);
        }
        mark.claim = claim;
        claim
    }

    /// The page read `session` asks for, within its claim: a session with messages left in
    /// the store joins the sessions sharing the budget (`mark`) and claims its share; one
    /// with none left keeps its claim until it holds nothing it read (nothing queued in
    /// memory, nothing in flight), then gives it back.
    pub(crate) fn poll_read(
        self: &Arc<Self>,
        session: &mut Session,
        mark: &mut Option<Draining>,
    ) -> Option<QueueRead> {
        if !session.is_queue_in_store() {
            return None;
        }
        let held = session.queued_in_memory().0;
        if session.queued_len() <= held {
            if held == 0 && session.inflight_len() == 0 {
                *mark = None;
            }
            return None;
        }
        let max_held = self.claim(mark);
        session.poll_queue_read_within(max_held)
    }

    /// Takes note of a page read: the average message size follows what pages return.
    pub(crate) fn paged(&self, page: &QueuePage) {
        let bytes: usize = page.entries.iter().map(|e| e.message.size()).sum();
        let count = u64::try_from(page.entries.len()).unwrap_or(u64::MAX);
        self.entries.fetch_add(count, Ordering::Relaxed);
        self.bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Sessions sharing the budget now, and the messages they claimed.
    #[cfg(test)]
    pub(crate) fn shared(&self) -> (usize, usize) {
        (
            self.draining.load(Ordering::Relaxed),
            self.claimed.load(Ordering::Relaxed),
        )
    }
}

/// A session's place among those sharing the budget, with its claim; both are given back
/// when it is dropped (nothing of the session's queue is left in the store or in its
/// memory, or its connection ended).
#[derive(Debug)]
pub(crate) struct Draining {
    paging: Arc<Paging>,
    claim: usize,
}

impl Drop for Draining {
    fn drop(&mut self) {
        self.paging.draining.fetch_sub(1, Ordering::Relaxed);
        self.paging.claimed.fetch_sub(self.claim, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mqgate_codec::{ByteStr, QoS};
    use mqgate_session::{Message, MessageId, PageEntry};

    fn page(entries: usize, payload: usize, more: bool) -> QueuePage {
        let entries = (0..entries)
            .map(|i| PageEntry {
                seq: i as u64,
                message: Arc::new(Message::new(
                    MessageId(i as u128),
                    ByteStr::from_static("t"),
                    Bytes::from(vec![0; payload]),
                    QoS::AtLeastOnce,
                    0,
                )),
                qos: QoS::AtLeastOnce,
                shared: false,
            })
            .collect();
        QueuePage {
            entries,
            more,
            epoch: 0,
        }
    }

    #[test]
    fn sessions_share_the_budget_within_their_claims() {
        // 1 MiB; 1 KiB assumed before any page: 1024 messages.
        let paging = Paging::new(1 << 20);
        let mut marks: Vec<Option<Draining>> = (0..4).map(|_| None).collect();
        // The first to ask gets the whole budget (it is alone), the next what is left of
        // it (at least one), until the first claims again at its next read.
        assert_eq!(paging.claim(&mut marks[0]), 1024);
        assert_eq!(
            paging.claim(&mut marks[1]),
            1,
            "nothing left beyond one message"
        );
        assert_eq!(paging.claim(&mut marks[0]), 512, "two share it now");
        assert_eq!(paging.claim(&mut marks[1]), 512);
        assert_eq!(paging.shared(), (2, 1024));
        for mark in &mut marks[2..] {
            paging.claim(mark);
        }
        assert_eq!(paging.claim(&mut marks[0]), 256);
        assert_eq!(paging.claim(&mut marks[1]), 256);
        // 2047 bytes of payload + the 1-byte topic: the budget is 512 messages of 2 KiB now.
        paging.paged(&page(8, 2047, true));
        assert_eq!(
            paging.claim(&mut marks[2]),
            1,
            "the others' claims cover the budget"
        );
        assert_eq!(paging.claim(&mut marks[0]), 128);
        assert_eq!(paging.claim(&mut marks[1]), 128);
        assert_eq!(paging.claim(&mut marks[2]), 128);
        // A session that is done, or whose connection ended, gives its claim back.
        marks.truncate(1);
        assert_eq!(paging.shared(), (1, 128));
        assert_eq!(paging.claim(&mut marks[0]), 512);
        marks.clear();
        assert_eq!(paging.shared(), (0, 0));
        // However many share it, each may hold one message.
        let tiny = Paging::new(10);
        let mut mark = None;
        assert_eq!(tiny.claim(&mut mark), 1);
    }
}
