//! [`MemoryStore`]: the store's tables in `BTreeMap`s behind one lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mqgate_session::{Message, MessageId};
use parking_lot::RwLock;

use crate::garbage::Garbage;
use crate::tables::{impl_store, BlobKind, QueueMeta, ReadTables, Slot, Tables, INFLIGHT_HOLDER};
use crate::{StoreError, StoreLimits, StoreStats};

type Result<T> = std::result::Result<T, StoreError>;

/// A [`Store`](crate::Store) in memory: for tests and ephemeral brokers. Nothing survives
/// the process; every operation succeeds unless its ops are invalid.
///
/// ```
/// use mqgate_store::{MemoryStore, Store};
/// let store = MemoryStore::new();
/// assert!(store.load_sessions()?.is_empty());
/// # Ok::<(), mqgate_store::StoreError>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    limits: StoreLimits,
    tables: RwLock<MemoryTables>,
}

impl MemoryStore {
    /// An empty store with the default [`StoreLimits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with the given limits.
    pub fn with_limits(limits: StoreLimits) -> Self {
        MemoryStore {
            limits,
            tables: RwLock::default(),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&dyn ReadTables) -> Result<T>) -> Result<T> {
        f(&*self.tables.read())
    }

    /// Ops are validated before anything is written and the memory tables never fail, so
    /// a batch cannot stop half-way.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Tables) -> Result<T>) -> Result<T> {
        let mut tables = self.tables.write();
        let out = f(&mut *tables);
        // Bodies are deleted with their last reference here (the default policy), so the
        // set is empty between transactions whatever happened.
        tables.garbage.commit();
        out
    }

    /// Nothing here waits for a disk: [`write`](Self::write).
    fn write_lazily<T>(&self, f: impl FnOnce(&mut dyn Tables) -> Result<T>) -> Result<T> {
        self.write(f)
    }
}

impl_store!(MemoryStore);

#[derive(Debug, Default)]
struct MemoryTables {
    messages: BTreeMap<MessageId, Arc<Message>>,
    refs: BTreeSet<(MessageId, String, u64)>,
    expiry: BTreeSet<(u64, MessageId)>,
    queues: BTreeMap<(String, u64), Slot>,
    meta: BTreeMap<String, QueueMeta>,
    in_flight: BTreeMap<String, QueueMeta>,
    blobs: BTreeMap<(BlobKind, String), Vec<u8>>,
    retained: BTreeMap<String, Arc<Message>>,
    next_seq: u64,
    garbage: Garbage,
}

impl MemoryTables {
    fn refs_of(&self, id: MessageId) -> impl Iterator<Item = &(MessageId, String, u64)> {
        self.refs
            .range((id, String::new(), 0)..)
            .take_while(move |(m, _, _)| *m == id)
    }
}

impl ReadTables for MemoryTables {
    fn message(&self, id: MessageId) -> Result<Option<Arc<Message>>> {
        Ok(self.messages.get(&id).cloned())
    }
    fn has_message(&self, id: MessageId) -> Result<bool> {
        Ok(self.messages.contains_key(&id))
    }
    fn has_refs(&self, id: MessageId) -> Result<bool> {
        Ok(self.refs_of(id).next().is_some())
    }
    fn queue_refs(&self, id: MessageId) -> Result<Vec<(String, u64)>> {
        Ok(self
            .refs_of(id)
            .filter(|(_, _, holder)| *holder < INFLIGHT_HOLDER)
            .map(|(_, client, seq)| (client.clone(), *seq))
            .collect())
    }
    fn due(&self, cutoff: u64, max: usize) -> Result<Vec<(u64, MessageId)>> {
        Ok(self
            .expiry
            .iter()
            .take_while(|(at, _)| *at <= cutoff)
            .take(max)
            .copied()
            .collect())
    }
    fn in_flight(&self, client: &str) -> QueueMeta {
        self.in_flight.get(client).copied().unwrap_or_default()
    }
    fn meta(&self, client: &str) -> Result<QueueMeta> {
        Ok(self.meta.get(client).copied().unwrap_or_default())
    }
    fn slots(&self, client: &str, from: u64, max: usize) -> Result<Vec<(u64, Slot)>> {
        Ok(self
            .queues
            .range((client.to_owned(), from)..)
            .take_while(|((c, _), _)| c == client)
            .take(max)
            .map(|((_, seq), slot)| (*seq, *slot))
            .collect())
    }
    fn seq_at(&self, client: &str, at: usize) -> Result<Option<u64>> {
        Ok(self
            .queues
            .range((client.to_owned(), 0)..)
            .take_while(|((c, _), _)| c == client)
            .nth(at)
            .map(|((_, seq), _)| *seq))
    }
    fn blob(&self, kind: BlobKind, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.blobs.get(&(kind, key.to_owned())).cloned())
    }
    fn blobs(&self, kind: BlobKind) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .blobs
            .range((kind, String::new())..)
            .take_while(|((k, _), _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect())
    }
    fn retained(&self) -> Result<Vec<Arc<Message>>> {
        Ok(self.retained.values().cloned().collect())
    }
    fn stats(&self) -> Result<StoreStats> {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let sessions = self.blobs.keys().filter(|(k, _)| *k == BlobKind::Session);
        Ok(StoreStats {
            messages: count(self.messages.len().saturating_sub(self.garbage.len())),
            queued: count(self.queues.len()),
            sessions: count(sessions.count()),
            retained: count(self.retained.len()),
        })
    }
    fn is_garbage(&self, id: MessageId) -> bool {
        self.garbage.contains(id)
    }
}

impl Tables for MemoryTables {
    fn insert_message(&mut self, message: &Arc<Message>) -> Result<()> {
        self.messages.insert(message.id, Arc::clone(message));
        Ok(())
    }
    fn remove_message(&mut self, id: MessageId) -> Result<Option<u64>> {
        Ok(self.messages.remove(&id).map(|m| m.published_at_ms))
    }
    fn add_ref(&mut self, id: MessageId, client: &str, holder: u64) -> Result<()> {
        self.refs.insert((id, client.to_owned(), holder));
        Ok(())
    }
    fn remove_ref(&mut self, id: MessageId, client: &str, holder: u64) -> Result<()> {
        self.refs.remove(&(id, client.to_owned(), holder));
        Ok(())
    }
    fn add_expiry(&mut self, at: u64, id: MessageId) -> Result<()> {
        self.expiry.insert((at, id));
        Ok(())
    }
    fn remove_expiry(&mut self, at: u64, id: MessageId) -> Result<()> {
        self.expiry.remove(&(at, id));
        Ok(())
    }
    fn set_meta(&mut self, client: &str, meta: Option<QueueMeta>) -> Result<()> {
        match meta {
            Some(meta) => self.meta.insert(client.to_owned(), meta),
            None => self.meta.remove(client),
        };
        Ok(())
    }
    fn set_in_flight(&mut self, client: &str, held: QueueMeta) {
        if held == QueueMeta::default() {
            self.in_flight.remove(client);
        } else {
            self.in_flight.insert(client.to_owned(), held);
        }
    }
    fn alloc_seq(&mut self) -> Result<u64> {
        let seq = self.next_seq;
        self.next_seq = seq.saturating_add(1);
        Ok(seq)
    }
    fn push_slot(&mut self, client: &str, seq: u64, slot: Slot) -> Result<()> {
        self.queues.insert((client.to_owned(), seq), slot);
        Ok(())
    }
    fn take_slot(&mut self, client: &str, seq: u64) -> Result<Option<Slot>> {
        Ok(self.queues.remove(&(client.to_owned(), seq)))
    }
    fn put_blob(&mut self, kind: BlobKind, key: &str, value: Vec<u8>) -> Result<()> {
        self.blobs.insert((kind, key.to_owned()), value);
        Ok(())
    }
    fn remove_blob(&mut self, kind: BlobKind, key: &str) -> Result<()> {
        self.blobs.remove(&(kind, key.to_owned()));
        Ok(())
    }
    fn set_retained(&mut self, message: &Arc<Message>) -> Result<()> {
        let topic = message.topic.to_string();
        self.retained.insert(topic, Arc::clone(message));
        Ok(())
    }
    fn clear_retained(&mut self, topic: &str) -> Result<()> {
        self.retained.remove(topic);
        Ok(())
    }
    fn garbage(&mut self) -> &mut Garbage {
        &mut self.garbage
    }
}
