//! [`Garbage`]: message bodies no queue or session refers to any more, deleted later and in
//! id order instead of one by one as their last reference goes.
//!
//! A client draining its backlog acknowledges messages that were published among thousands
//! of other clients' messages, so deleting each body at its acknowledgement rewrites one
//! page of the message table per message, all over the file. Ids are handed out in
//! publication order, so the oldest garbage is dense: deleting the lowest ids a chunk at a
//! time empties whole pages instead (an emptied page is freed, not rewritten).
//!
//! The set lives in memory beside the queue index and follows its transactions: a
//! transaction that fails leaves it as it was. What a crash loses of it are bodies without
//! a reference: nothing reads them, and the expiry sweep deletes them when their time is
//! up, as it deletes every body then.

use std::collections::BTreeSet;

use mqgate_session::MessageId;

/// How many unreferenced bodies a store keeps before it deletes any, and how many it
/// deletes in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GarbagePolicy {
    /// Deletion starts when more than this many wait.
    pub(crate) keep: usize,
    /// Most bodies deleted by one transaction.
    pub(crate) chunk: usize,
}

impl GarbagePolicy {
    /// Every body is deleted in the transaction that dropped its last reference.
    pub(crate) const IMMEDIATE: GarbagePolicy = GarbagePolicy {
        keep: 0,
        chunk: usize::MAX,
    };

    /// Up to `keep` bodies wait; past that, the oldest go a chunk (at most 4 096, at most
    /// `keep`) at a time. 0: [`IMMEDIATE`](Self::IMMEDIATE).
    pub(crate) fn keeping(keep: usize) -> Self {
        if keep == 0 {
            return GarbagePolicy::IMMEDIATE;
        }
        GarbagePolicy {
            keep,
            chunk: keep.min(4_096),
        }
    }
}

/// A change to undo if the transaction fails.
#[derive(Debug, Clone, Copy)]
enum Change {
    Added(MessageId),
    Removed(MessageId),
}

/// The unreferenced bodies, and this transaction's changes to the set.
///
/// The set never holds the id of a body that has a reference: a body gains one only after
/// [`revive`](Self::revive) (the store's single path to a new reference stores or finds the
/// body first).
#[derive(Debug)]
pub(crate) struct Garbage {
    ids: BTreeSet<MessageId>,
    changes: Vec<Change>,
    policy: GarbagePolicy,
}

impl Garbage {
    pub(crate) fn new(policy: GarbagePolicy) -> Self {
        Garbage {
            ids: BTreeSet::new(),
            changes: Vec::new(),
            policy,
        }
    }

    /// Bodies waiting for deletion.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether `id`'s body waits for deletion.
    pub(crate) fn contains(&self, id: MessageId) -> bool {
        self.ids.contains(&id)
    }

    /// `id`'s body lost its last reference.
    pub(crate) fn add(&mut self, id: MessageId) {
        if self.ids.insert(id) {
            self.changes.push(Change::Added(id));
        }
    }

    /// `id`'s body is about to get a reference again.
    pub(crate) fn revive(&mut self, id: MessageId) {
        if self.ids.remove(&id) {
            self.changes.push(Change::Removed(id));
        }
    }

    /// The ids to delete now, lowest first: a chunk once more than the policy keeps are
    /// waiting, or a chunk whatever waits when `force` is set. They leave the set.
    pub(crate) fn take_due(&mut self, force: bool) -> Vec<MessageId> {
        if !force && self.ids.len() <= self.policy.keep {
            return Vec::new();
        }
        let mut due = Vec::new();
        while due.len() < self.policy.chunk {
            let Some(id) = self.ids.pop_first() else {
                break;
            };
            self.changes.push(Change::Removed(id));
            due.push(id);
        }
        due
    }

    /// The transaction committed: its changes stay.
    pub(crate) fn commit(&mut self) {
        self.changes.clear();
    }

    /// The transaction failed: its changes are undone, newest first.
    pub(crate) fn rollback(&mut self) {
        while let Some(change) = self.changes.pop() {
            match change {
                Change::Added(id) => {
                    self.ids.remove(&id);
                }
                Change::Removed(id) => {
                    self.ids.insert(id);
                }
            }
        }
    }
}

impl Default for Garbage {
    fn default() -> Self {
        Garbage::new(GarbagePolicy::IMMEDIATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(garbage: &Garbage) -> Vec<u128> {
        garbage.ids.iter().map(|id| id.0).collect()
    }

    #[test]
    fn the_lowest_ids_go_first_a_chunk_at_a_time_once_more_than_kept_wait() {
        let mut garbage = Garbage::new(GarbagePolicy { keep: 3, chunk: 2 });
        for id in [5, 1, 4, 2] {
            garbage.add(MessageId(id));
        }
        assert_eq!(garbage.take_due(false), [MessageId(1), MessageId(2)]);
        assert!(garbage.take_due(false).is_empty(), "2 left, 3 kept");
        assert_eq!(garbage.take_due(true), [MessageId(4), MessageId(5)]);
        assert!(garbage.take_due(true).is_empty());
        garbage.commit();
        assert_eq!(garbage.len(), 0);
    }

    #[test]
    fn a_failed_transaction_leaves_the_set_as_it_was() {
        let mut garbage = Garbage::new(GarbagePolicy { keep: 0, chunk: 1 });
        garbage.add(MessageId(7));
        garbage.add(MessageId(9));
        garbage.commit();
        garbage.add(MessageId(8));
        garbage.revive(MessageId(9));
        garbage.revive(MessageId(3));
        assert_eq!(garbage.take_due(false), [MessageId(7)]);
        assert_eq!(ids(&garbage), [8]);
        garbage.rollback();
        assert_eq!(ids(&garbage), [7, 9]);
    }
}
