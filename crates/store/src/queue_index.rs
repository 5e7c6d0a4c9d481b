//! [`QueueIndex`]: which entries of the redb store's queue log belong to which client, held
//! in memory and rebuilt from the log when the store opens.
//!
//! The log is keyed by a store-wide sequence number, so a commit appending to a thousand
//! queues writes one hot B-tree leaf instead of one leaf per queue. What the log cannot
//! answer cheaply, "the entries of client `c` from seq `s` on", is this index: per client its
//! sequence numbers in order (4 bytes an entry: see `Seqs`) and its counters. A write
//! transaction changes it through an [`IndexTxn`], which remembers how to undo every change,
//! so a transaction that fails leaves the index exactly as it was.

use std::collections::VecDeque;

use hashbrown::HashMap;

use crate::garbage::{Garbage, GarbagePolicy};
use crate::tables::QueueMeta;

/// One client's queue: its sequence numbers, ascending, and its counters.
#[derive(Debug, Default)]
struct ClientQueue {
    seqs: Seqs,
    meta: QueueMeta,
}

/// A client's sequence numbers, ascending: 4 bytes each while they lie within 2^32 of a
/// base (every queue but one that keeps an entry while four billion others pass), 8 bytes
/// otherwise. A million queued messages cost 4 MB of index instead of 8.
#[derive(Debug, Clone)]
enum Seqs {
    Narrow { base: u64, offsets: VecDeque<u32> },
    Wide(VecDeque<u64>),
}

impl Default for Seqs {
    fn default() -> Self {
        Seqs::Narrow {
            base: 0,
            offsets: VecDeque::new(),
        }
    }
}

impl Seqs {
    fn len(&self) -> usize {
        match self {
            Seqs::Narrow { offsets, .. } => offsets.len(),
            Seqs::Wide(seqs) => seqs.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position of the first sequence number `>= from`.
    fn partition_point(&self, from: u64) -> usize {
        match self {
            Seqs::Narrow { base, offsets } => match from.checked_sub(*base) {
                None => 0,
                Some(offset) => match u32::try_from(offset) {
                    Ok(offset) => offsets.partition_point(|&o| o < offset),
                    Err(_) => offsets.len(),
                },
            },
            Seqs::Wide(seqs) => seqs.partition_point(|&s| s < from),
        }
    }

    /// Where `seq` is, if it is here.
    fn position(&self, seq: u64) -> Option<usize> {
        let at = self.partition_point(seq);
        (self.get(at) == Some(seq)).then_some(at)
    }

    fn get(&self, at: usize) -> Option<u64> {
        match self {
            Seqs::Narrow { base, offsets } => offsets.get(at).map(|&o| base + u64::from(o)),
            Seqs::Wide(seqs) => seqs.get(at).copied(),
        }
    }

    /// Up to `max` sequence numbers from position `start` on.
    fn starting_at(&self, start: usize, max: usize) -> Vec<u64> {
        match self {
            Seqs::Narrow { base, offsets } => offsets
                .range(start.min(offsets.len())..)
                .take(max)
                .map(|&o| base + u64::from(o))
                .collect(),
            Seqs::Wide(seqs) => seqs
                .range(start.min(seqs.len())..)
                .take(max)
                .copied()
                .collect(),
        }
    }

    /// Inserts `seq` at position `at` (which keeps the order); an empty queue takes it as
    /// its base, one whose base is too far from it widens.
    fn insert(&mut self, at: usize, seq: u64) {
        if let Seqs::Narrow { base, offsets } = self {
            if offsets.is_empty() {
                *base = seq;
            }
            let narrow = seq.checked_sub(*base).and_then(|o| u32::try_from(o).ok());
            if let Some(offset) = narrow {
                offsets.insert(at.min(offsets.len()), offset);
                return;
            }
            let wide = offsets.iter().map(|&o| *base + u64::from(o)).collect();
            *self = Seqs::Wide(wide);
        }
        if let Seqs::Wide(seqs) = self {
            seqs.insert(at.min(seqs.len()), seq);
        }
    }

    /// Appends `seq`, larger than every one here.
    fn push_back(&mut self, seq: u64) {
        self.insert(self.len(), seq);
    }

    fn pop_back(&mut self) {
        match self {
            Seqs::Narrow { offsets, .. } => {
                offsets.pop_back();
            }
            Seqs::Wide(seqs) => {
                seqs.pop_back();
            }
        }
    }

    fn remove(&mut self, at: usize) {
        match self {
            Seqs::Narrow { offsets, .. } => {
                offsets.remove(at);
            }
            Seqs::Wide(seqs) => {
                seqs.remove(at);
            }
        }
    }

    #[cfg(test)]
    fn to_vec(&self) -> Vec<u64> {
        self.starting_at(0, usize::MAX)
    }

    #[cfg(test)]
    fn is_wide(&self) -> bool {
        matches!(self, Seqs::Wide(_))
    }
}

/// Per-client view of the queue log, the next sequence number to hand out, and the bodies
/// waiting for deletion (deferred: see [`Garbage`]).
#[derive(Debug)]
pub(crate) struct QueueIndex {
    queues: HashMap<Box<str>, ClientQueue>,
    /// What of each queue is in flight (see `Op::InFlight`): not undone with a failed
    /// transaction, not rebuilt at open (nothing is in flight then).
    in_flight: HashMap<Box<str>, QueueMeta>,
    next_seq: u64,
    pub(crate) garbage: Garbage,
}

impl Default for QueueIndex {
    fn default() -> Self {
        QueueIndex::new(GarbagePolicy::IMMEDIATE)
    }
}

impl QueueIndex {
    /// An empty index whose bodies are deleted by `policy`.
    pub(crate) fn new(policy: GarbagePolicy) -> Self {
        QueueIndex {
            queues: HashMap::new(),
            in_flight: HashMap::new(),
            next_seq: 0,
            garbage: Garbage::new(policy),
        }
    }

    /// Adds one log entry while rebuilding: entries come in log order (ascending `seq`).
    pub(crate) fn load(&mut self, client: &str, seq: u64, size: u64) {
        let queue = self.queues.entry_ref(client).or_default();
        queue.seqs.push_back(seq);
        queue.meta.len = queue.meta.len.saturating_add(1);
        queue.meta.bytes = queue.meta.bytes.saturating_add(size);
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
    }

    /// Makes sure no sequence number below `next` is handed out (the stored counter).
    pub(crate) fn reserve_below(&mut self, next: u64) {
        self.next_seq = self.next_seq.max(next);
    }

    /// The next sequence number to hand out.
    #[cfg(test)]
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The counters of a client's queue (zero for none).
    pub(crate) fn meta(&self, client: &str) -> QueueMeta {
        self.queues.get(client).map(|q| q.meta).unwrap_or_default()
    }

    /// What of a client's queue is in flight (zero for none).
    pub(crate) fn in_flight(&self, client: &str) -> QueueMeta {
        self.in_flight.get(client).copied().unwrap_or_default()
    }

    /// Up to `max` of a client's sequence numbers `>= from`, ascending.
    pub(crate) fn seqs(&self, client: &str, from: u64, max: usize) -> Vec<u64> {
        let Some(queue) = self.queues.get(client) else {
            return Vec::new();
        };
        let start = queue.seqs.partition_point(from);
        queue.seqs.starting_at(start, max)
    }

    /// A client's sequence number at position `at` (0: the oldest).
    pub(crate) fn seq_at(&self, client: &str, at: usize) -> Option<u64> {
        self.queues.get(client)?.seqs.get(at)
    }

    /// Clients with a queue entry or counters.
    #[cfg(test)]
    pub(crate) fn clients(&self) -> usize {
        self.queues.len()
    }
}

/// A change to undo if the transaction fails.
#[derive(Debug)]
enum Undo {
    /// A sequence number was appended to this client's queue.
    Pushed(Box<str>),
    /// `seq` was removed from this client's queue at this position.
    Taken(Box<str>, usize, u64),
    /// The counters were set; these were there before (`None`: no queue).
    Meta(Box<str>, Option<QueueMeta>),
}

/// The index as one write transaction changes it: [`commit`](Self::commit) keeps the
/// changes, [`rollback`](Self::rollback) (or dropping it) undoes them.
#[derive(Debug)]
pub(crate) struct IndexTxn<'a> {
    index: &'a mut QueueIndex,
    undo: Vec<Undo>,
    first_seq: u64,
    committed: bool,
}

impl<'a> IndexTxn<'a> {
    pub(crate) fn new(index: &'a mut QueueIndex) -> Self {
        let first_seq = index.next_seq;
        IndexTxn {
            index,
            undo: Vec::new(),
            first_seq,
            committed: false,
        }
    }

    /// The index as this transaction sees it.
    pub(crate) fn view(&self) -> &QueueIndex {
        self.index
    }

    /// Hands out the next sequence number.
    pub(crate) fn alloc_seq(&mut self) -> u64 {
        let seq = self.index.next_seq;
        self.index.next_seq = seq.saturating_add(1);
        seq
    }

    /// The counter to store if this transaction handed out sequence numbers.
    pub(crate) fn next_seq_to_store(&self) -> Option<u64> {
        (self.index.next_seq != self.first_seq).then_some(self.index.next_seq)
    }

    /// Appends `seq`, which must come from [`alloc_seq`](Self::alloc_seq) (so it is the
    /// largest), to a client's queue.
    pub(crate) fn push(&mut self, client: &str, seq: u64) {
        let queue = self.index.queues.entry_ref(client).or_default();
        queue.seqs.push_back(seq);
        self.undo.push(Undo::Pushed(client.into()));
    }

    /// Removes `seq` from a client's queue; `false` if it was not there.
    pub(crate) fn take(&mut self, client: &str, seq: u64) -> bool {
        let Some(queue) = self.index.queues.get_mut(client) else {
            return false;
        };
        let Some(at) = queue.seqs.position(seq) else {
            return false;
        };
        queue.seqs.remove(at);
        self.undo.push(Undo::Taken(client.into(), at, seq));
        true
    }

    /// Sets a client's counters; `None` forgets an emptied queue.
    pub(crate) fn set_meta(&mut self, client: &str, meta: Option<QueueMeta>) {
        let old = self.index.queues.get(client).map(|q| q.meta);
        match meta {
            Some(meta) => self.index.queues.entry_ref(client).or_default().meta = meta,
            None => {
                if let Some(queue) = self.index.queues.get_mut(client) {
                    queue.meta = QueueMeta::default();
                    if queue.seqs.is_empty() {
                        self.index.queues.remove(client);
                    }
                }
            }
        }
        self.undo.push(Undo::Meta(client.into(), old));
    }

    /// Sets what of a client's queue is in flight (zero forgets it); kept even if the
    /// transaction fails.
    pub(crate) fn set_in_flight(&mut self, client: &str, held: QueueMeta) {
        if held == QueueMeta::default() {
            self.index.in_flight.remove(client);
        } else {
            *self.index.in_flight.entry_ref(client).or_default() = held;
        }
    }

    /// The bodies waiting for deletion, changed with this transaction.
    pub(crate) fn garbage(&mut self) -> &mut Garbage {
        &mut self.index.garbage
    }

    /// Keeps the changes: the transaction committed.
    pub(crate) fn commit(mut self) {
        self.index.garbage.commit();
        self.committed = true;
    }

    /// Undoes every change, newest first (what dropping it uncommitted does).
    #[cfg(test)]
    pub(crate) fn rollback(self) {
        drop(self);
    }

    fn undo_all(&mut self) {
        self.index.garbage.rollback();
        let queues = &mut self.index.queues;
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Pushed(client) => {
                    if let Some(queue) = queues.get_mut(&client) {
                        queue.seqs.pop_back();
                    }
                }
                Undo::Taken(client, at, seq) => {
                    let queue = queues.entry(client).or_default();
                    queue.seqs.insert(at, seq);
                }
                Undo::Meta(client, old) => match old {
                    Some(meta) => queues.entry(client).or_default().meta = meta,
                    None => {
                        if let Some(queue) = queues.get_mut(&client) {
                            queue.meta = QueueMeta::default();
                        }
                    }
                },
            }
        }
        // Queues this transaction created and emptied again.
        queues.retain(|_, q| !q.seqs.is_empty() || q.meta != QueueMeta::default());
        self.index.next_seq = self.first_seq;
    }
}

impl Drop for IndexTxn<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.undo_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(index: &QueueIndex) -> Vec<(String, Vec<u64>, QueueMeta)> {
        let mut out: Vec<_> = index
            .queues
            .iter()
            .map(|(c, q)| (c.to_string(), q.seqs.to_vec(), q.meta))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn a_rolled_back_transaction_leaves_the_index_as_it_was() {
        let mut index = QueueIndex::default();
        for seq in 0..5 {
            index.load(if seq % 2 == 0 { "a" } else { "b" }, seq, 10);
        }
        let before = snapshot(&index);
        let mut txn = IndexTxn::new(&mut index);
        let seq = txn.alloc_seq();
        txn.push("a", seq);
        txn.push("new", txn.view().next_seq());
        assert!(txn.take("a", 2));
        assert!(!txn.take("a", 2), "already gone");
        assert!(txn.take("b", 1));
        txn.set_meta("a", Some(QueueMeta { len: 9, bytes: 9 }));
        txn.set_meta("new", Some(QueueMeta { len: 1, bytes: 1 }));
        assert!(txn.take("b", 3));
        txn.set_meta("b", None);
        assert_eq!(txn.view().seqs("a", 0, 10), [0, 4, 5]);
        assert_eq!(txn.next_seq_to_store(), Some(6));
        txn.rollback();
        assert_eq!(snapshot(&index), before);
        assert_eq!(index.next_seq(), 5);
        assert_eq!(index.clients(), 2);
    }

    /// The narrow form and the wide one hold the same numbers in the same order, through
    /// every operation, whatever the distances between them.
    #[test]
    fn narrow_and_wide_sequence_numbers_agree() {
        use proptest::prelude::*;
        let far = u64::from(u32::MAX);
        let gaps = prop_oneof![1u64..4, Just(far), Just(far + 1), 1u64..(far * 3)];
        let ops = proptest::collection::vec((gaps, 0usize..4, any::<usize>()), 1..60);
        let widened = std::cell::Cell::new(false);
        proptest!(|(ops in ops)| {
            let mut seqs = Seqs::default();
            let mut model: VecDeque<u64> = VecDeque::new();
            let mut next = 7u64;
            for (gap, op, pick) in ops {
                match op {
                    // Append, remove somewhere and maybe put back, or take the last.
                    0 | 1 => {
                        next = next.saturating_add(gap);
                        seqs.push_back(next);
                        model.push_back(next);
                    }
                    2 if !model.is_empty() => {
                        let at = pick % model.len();
                        let seq = model[at];
                        prop_assert_eq!(seqs.position(seq), Some(at));
                        seqs.remove(at);
                        model.remove(at);
                        prop_assert_eq!(seqs.position(seq), None);
                        if pick % 2 == 0 {
                            seqs.insert(at, seq);
                            model.insert(at, seq);
                        }
                    }
                    _ => {
                        seqs.pop_back();
                        model.pop_back();
                    }
                }
                widened.set(widened.get() || seqs.is_wide());
                prop_assert_eq!(seqs.to_vec(), Vec::from(model.clone()));
                let from = model.get(pick % model.len().max(1)).copied().unwrap_or(0);
                for probe in [from, from.saturating_add(1), from.saturating_add(far * 2)] {
                    prop_assert_eq!(
                        seqs.partition_point(probe),
                        model.partition_point(|&s| s < probe)
                    );
                }
            }
        });
        assert!(widened.get(), "the cases reach the wide form");
    }

    #[test]
    fn a_committed_transaction_keeps_its_changes() {
        let mut index = QueueIndex::default();
        index.load("a", 7, 1);
        index.reserve_below(3);
        assert_eq!(index.next_seq(), 8, "the log's last entry wins");
        index.reserve_below(20);
        let mut txn = IndexTxn::new(&mut index);
        let seq = txn.alloc_seq();
        txn.push("a", seq);
        assert!(txn.take("a", 7));
        txn.set_meta("a", Some(QueueMeta { len: 1, bytes: 4 }));
        txn.commit();
        assert_eq!(index.seqs("a", 0, 10), [20]);
        assert_eq!(index.seqs("a", 21, 10), Vec::<u64>::new());
        assert_eq!(index.meta("a"), QueueMeta { len: 1, bytes: 4 });
        assert_eq!(index.next_seq(), 21);
    }
}
