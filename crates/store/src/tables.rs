//! The store's logic, written once over [`ReadTables`] / [`Tables`], which the in-memory and
//! the redb backends implement. Both stores therefore follow exactly the same rules.
//!
//! Layout (the redb tables have the same names):
//! - `messages`: id -> body, stored once;
//! - `refs`: (message id, client id, holder) -> (): who still needs a body. A holder below
//!   [`INFLIGHT_HOLDER`] is a queue sequence number, above it an in-flight packet id. A body
//!   with no refs left is deleted at the end of the transaction that dropped the last one, so
//!   the refs table doubles as the reference count;
//! - `expiry`: (published_at_ms, message id) -> (), the sweep's index;
//! - queue entries: (client id, seq) -> slot, with per-client counters (length, bytes). The
//!   sequence numbers come from one store-wide counter, so they increase in every queue and
//!   are never reused. The redb backend keeps the entries in one log keyed by that sequence
//!   (`queue_log`: every commit appends to one hot B-tree leaf, however many queues it
//!   touches) and each client's sequence numbers and counters in memory, rebuilt on open;
//! - `blobs`: (kind, key) -> JSON of session records (without their queue) and registries
//!   (groups, tokens, device credentials, custom identities, permissions, the blacklist);
//! - `retained`: topic -> body.

use std::collections::BTreeSet;
use std::sync::Arc;

use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;
use mqgate_codec::{ByteStr, QoS};
use mqgate_session::{
    InFlightStage, Message, MessageId, PageEntry, QueuePage, QueueRead, QueuedRef, SessionRecord,
};
use serde::de::DeserializeOwned;

use crate::garbage::Garbage;
use crate::{Op, QueueStats, QueuedEntry, StoreError, StoreLimits, StoreStats, StoredSession};

type Result<T> = std::result::Result<T, StoreError>;

/// Holders at or above this are in-flight packet ids (`INFLIGHT_HOLDER | id`), below it queue
/// sequence numbers, which never get near 2^63.
pub(crate) const INFLIGHT_HOLDER: u64 = 1 << 63;
/// Queue entries handled per table scan, so no scan loads a whole queue at once.
const SCAN_BATCH: usize = 256;

/// One queue entry as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) message: MessageId,
    pub(crate) qos: QoS,
    pub(crate) size: u64,
    /// A shared subscription's copy.
    pub(crate) shared: bool,
}

/// Per-queue counters, so limits are checked without scanning the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct QueueMeta {
    pub(crate) len: u64,
    pub(crate) bytes: u64,
}

/// What a blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum BlobKind {
    Session = 0,
    Group = 1,
    Token = 2,
    Device = 3,
    CustomIdentity = 4,
    CustomPermission = 5,
    ConnectBlack = 6,
    Will = 7,
}

impl BlobKind {
    pub(crate) fn table(self) -> &'static str {
        match self {
            BlobKind::Session => "sessions",
            BlobKind::Group => "groups",
            BlobKind::Token => "tokens",
            BlobKind::Device => "device credentials",
            BlobKind::CustomIdentity => "custom identities",
            BlobKind::CustomPermission => "custom permissions",
            BlobKind::ConnectBlack => "connect blacklist",
            BlobKind::Will => "delayed wills",
        }
    }
}

/// Reads every backend offers.
pub(crate) trait ReadTables {
    fn message(&self, id: MessageId) -> Result<Option<Arc<Message>>>;
    fn has_message(&self, id: MessageId) -> Result<bool>;
    fn has_refs(&self, id: MessageId) -> Result<bool>;
    /// (client id, seq) of the queue entries referring to `id`, in key order: by client
    /// id, and one client's by ascending seq (oldest entry first).
    fn queue_refs(&self, id: MessageId) -> Result<Vec<(String, u64)>>;
    /// Expiry entries published at or before `cutoff`, oldest first, at most `max`.
    fn due(&self, cutoff: u64, max: usize) -> Result<Vec<(u64, MessageId)>>;
    fn meta(&self, client: &str) -> Result<QueueMeta>;
    /// What of a client's queue is in flight (see [`Op::InFlight`]); zero for none.
    fn in_flight(&self, client: &str) -> QueueMeta;
    /// Entries with seq >= `from`, in order, at most `max`.
    fn slots(&self, client: &str, from: u64, max: usize) -> Result<Vec<(u64, Slot)>>;
    /// The sequence number of a client's queue entry at position `at` (0: the oldest).
    fn seq_at(&self, client: &str, at: usize) -> Result<Option<u64>>;
    fn blob(&self, kind: BlobKind, key: &str) -> Result<Option<Vec<u8>>>;
    fn blobs(&self, kind: BlobKind) -> Result<Vec<Vec<u8>>>;
    fn retained(&self) -> Result<Vec<Arc<Message>>>;
    /// Counts bodies waiting for deletion as gone.
    fn stats(&self) -> Result<StoreStats>;
    /// Whether `id`'s body is unreferenced and waits for deletion.
    fn is_garbage(&self, id: MessageId) -> bool;
}

/// Writes, inside one transaction.
pub(crate) trait Tables: ReadTables {
    fn insert_message(&mut self, message: &Arc<Message>) -> Result<()>;
    /// Removes a body, returning its `published_at_ms` if it was there.
    fn remove_message(&mut self, id: MessageId) -> Result<Option<u64>>;
    fn add_ref(&mut self, id: MessageId, client: &str, holder: u64) -> Result<()>;
    fn remove_ref(&mut self, id: MessageId, client: &str, holder: u64) -> Result<()>;
    fn add_expiry(&mut self, at: u64, id: MessageId) -> Result<()>;
    fn remove_expiry(&mut self, at: u64, id: MessageId) -> Result<()>;
    fn set_meta(&mut self, client: &str, meta: Option<QueueMeta>) -> Result<()>;
    /// Sets what of a client's queue is in flight (zero forgets it). In memory only, and
    /// not undone with a failed transaction: it tells how the session stands, whatever the
    /// store does.
    fn set_in_flight(&mut self, client: &str, held: QueueMeta);
    /// The next queue sequence number, store-wide: larger than every one handed out before.
    fn alloc_seq(&mut self) -> Result<u64>;
    fn push_slot(&mut self, client: &str, seq: u64, slot: Slot) -> Result<()>;
    fn take_slot(&mut self, client: &str, seq: u64) -> Result<Option<Slot>>;
    fn put_blob(&mut self, kind: BlobKind, key: &str, value: Vec<u8>) -> Result<()>;
    fn remove_blob(&mut self, kind: BlobKind, key: &str) -> Result<()>;
    fn set_retained(&mut self, message: &Arc<Message>) -> Result<()>;
    fn clear_retained(&mut self, topic: &str) -> Result<()>;
    /// The unreferenced bodies, changed with this transaction.
    fn garbage(&mut self) -> &mut Garbage;
}

/// Checks what can be checked before writing anything, so that a failed batch leaves no
/// trace even in a backend without rollback.
fn validate(ops: &[Op]) -> Result<()> {
    for op in ops {
        if let Op::SaveSession { record, messages } = op {
            for entry in &record.inflight {
                let supplied = messages.iter().any(|m| m.id == entry.message);
                if entry.stage == InFlightStage::Published && !supplied {
                    return Err(StoreError::MissingMessage {
                        client_id: record.client_id.to_string(),
                        message: entry.message.0,
                    });
                }
            }
        }
    }
    Ok(())
}

/// What one transaction changed and still has to finish: bodies that may have lost their
/// last reference, and queue counters, read once and written back once per transaction
/// (`None`: the queue was removed).
#[derive(Default)]
struct Pending {
    touched: BTreeSet<MessageId>,
    metas: HashMap<String, Option<QueueMeta>>,
}

impl Pending {
    fn meta(&mut self, t: &dyn Tables, client: &str) -> Result<&mut QueueMeta> {
        // entry_ref: no String allocated for the (common) hit.
        let slot = match self.metas.entry_ref(client) {
            EntryRef::Occupied(e) => e.into_mut(),
            EntryRef::Vacant(e) => e.insert(Some(t.meta(client)?)),
        };
        Ok(slot.get_or_insert_with(QueueMeta::default))
    }

    fn finish(self, t: &mut dyn Tables) -> Result<()> {
        for (client, meta) in self.metas {
            t.set_meta(&client, meta)?;
        }
        // The bodies no queue or session refers to any more are garbage, deleted by the
        // garbage's policy: now, or later with their neighbours.
        for id in self.touched {
            if !t.has_refs(id)? {
                t.garbage().add(id);
            }
        }
        delete_garbage(t, false)
    }
}

/// Deletes the bodies the garbage's policy says are due (a chunk whatever waits, if
/// `force`), lowest id first, with their expiry entries.
fn delete_garbage(t: &mut dyn Tables, force: bool) -> Result<()> {
    for id in t.garbage().take_due(force) {
        // The set never holds a referenced body; checked all the same, as deleting one
        // would lose a message.
        if !t.has_refs(id)? {
            if let Some(at) = t.remove_message(id)? {
                t.remove_expiry(at, id)?;
            }
        }
    }
    Ok(())
}

/// Deletes every body waiting for deletion.
pub(crate) fn delete_all_garbage(t: &mut dyn Tables) -> Result<()> {
    while t.garbage().len() > 0 {
        delete_garbage(t, true)?;
    }
    Ok(())
}

/// Applies a batch of ops; the caller commits.
pub(crate) fn apply(t: &mut dyn Tables, ops: &[Op], limits: &StoreLimits) -> Result<()> {
    validate(ops)?;
    let mut pending = Pending::default();
    for op in ops {
        match op {
            Op::Enqueue {
                client_id,
                message,
                qos,
                shared,
            } => {
                let copy = (*qos, *shared);
                enqueue(t, client_id, message, copy, limits, &mut pending)?
            }
            Op::Ack {
                client_id,
                through_seq,
            } => remove_slots(t, client_id, *through_seq, &mut pending)?,
            Op::Dequeue {
                client_id,
                message,
                shared,
            } => dequeue(t, client_id, *message, *shared, &mut pending)?,
            Op::InFlight {
                client_id,
                messages,
                bytes,
            } => t.set_in_flight(
                client_id,
                QueueMeta {
                    len: *messages,
                    bytes: *bytes,
                },
            ),
            Op::SaveSession { record, messages } => {
                let added = update_inflight_refs(t, record, &mut pending)?;
                for message in messages {
                    // `added` is sorted: by message id first.
                    if added
                        .binary_search_by(|(id, _)| id.cmp(&message.id))
                        .is_ok()
                    {
                        store_body(t, message)?;
                    }
                }
                for &(id, holder) in &added {
                    t.add_ref(id, &record.client_id, holder)?;
                }
                let stored = SessionRecord {
                    queue: Vec::new(),
                    ..record.clone()
                };
                t.put_blob(BlobKind::Session, &record.client_id, to_json(&stored)?)?;
            }
            Op::RemoveSession(client_id) => {
                t.set_in_flight(client_id, QueueMeta::default());
                release_inflight(t, client_id, &mut pending)?;
                t.remove_blob(BlobKind::Session, client_id)?;
                remove_slots(t, client_id, u64::MAX, &mut pending)?;
                pending.metas.insert(client_id.to_string(), None);
            }
            Op::SetRetained(message) => t.set_retained(message)?,
            Op::ClearRetained(topic) => t.clear_retained(topic)?,
            Op::PutGroup(g) => t.put_blob(BlobKind::Group, &g.group_id, to_json(g)?)?,
            Op::RemoveGroup(id) => t.remove_blob(BlobKind::Group, id)?,
            Op::PutToken(r) => t.put_blob(BlobKind::Token, &r.token, to_json(r)?)?,
            Op::RemoveToken(token) => t.remove_blob(BlobKind::Token, token)?,
            Op::PutDeviceCredential(c) => {
                t.put_blob(BlobKind::Device, &c.client_id, to_json(c)?)?
            }
            Op::RemoveDeviceCredential(id) => t.remove_blob(BlobKind::Device, id)?,
            Op::PutCustomIdentity(i) => t.put_blob(
                BlobKind::CustomIdentity,
                &i.key().to_store_key(),
                to_json(i)?,
            )?,
            Op::RemoveCustomIdentity(key) => t.remove_blob(BlobKind::CustomIdentity, key)?,
            Op::PutCustomPermission(p) => t.put_blob(
                BlobKind::CustomPermission,
                &p.key().to_store_key(),
                to_json(p)?,
            )?,
            Op::RemoveCustomPermission(key) => t.remove_blob(BlobKind::CustomPermission, key)?,
            Op::PutConnectBlack(b) => {
                t.put_blob(BlobKind::ConnectBlack, &b.client_id, to_json(b)?)?
            }
            Op::RemoveConnectBlack(id) => t.remove_blob(BlobKind::ConnectBlack, id)?,
            Op::PutWill(will) => t.put_blob(BlobKind::Will, &will.client_id, to_json(will)?)?,
            Op::RemoveWill { client_id, id } => {
                if let Some(json) = t.blob(BlobKind::Will, client_id)? {
                    let stored: crate::StoredWill = from_json(BlobKind::Will, &json)?;
                    if stored.id == *id {
                        t.remove_blob(BlobKind::Will, client_id)?;
                    }
                }
            }
        }
    }
    pending.finish(t)
}

fn enqueue(
    t: &mut dyn Tables,
    client: &ByteStr,
    message: &Arc<Message>,
    (qos, shared): (QoS, bool),
    limits: &StoreLimits,
    pending: &mut Pending,
) -> Result<()> {
    // Not marked touched: the ref added below keeps the body; a limit that drops the entry
    // again marks it then.
    store_body(t, message)?;
    let size = u64::try_from(message.size()).unwrap_or(u64::MAX);
    let seq = t.alloc_seq()?;
    let meta = pending.meta(t, client)?;
    meta.len = meta.len.saturating_add(1);
    meta.bytes = meta.bytes.saturating_add(size);
    let bounds = limits.queue_bounds_of(client.as_str());
    // The entries in flight are the oldest; they neither count nor go.
    let held = t.in_flight(client);
    let queued = |meta: &QueueMeta| {
        bounds.holds(
            meta.len.saturating_sub(held.len),
            meta.bytes.saturating_sub(held.bytes),
        )
    };
    let over = !queued(meta);
    let slot = Slot {
        message: message.id,
        qos,
        size,
        shared,
    };
    t.push_slot(client, seq, slot)?;
    t.add_ref(message.id, client, seq)?;
    if over {
        // Drop-oldest, like the session's default policy: the newest message is the one the
        // publisher was just told is safe.
        let skip = usize::try_from(held.len).unwrap_or(usize::MAX);
        loop {
            let meta = pending.meta(t, client)?;
            if queued(meta) {
                break;
            }
            let Some(oldest) = t.seq_at(client, skip)? else {
                break;
            };
            remove_slot(t, client, oldest, pending)?;
        }
    }
    Ok(())
}

/// Removes the oldest entry of `message` in `client`'s queue that is the copy `shared` says
/// (a plain and a shared copy of one message are two entries); none such, no change.
fn dequeue(
    t: &mut dyn Tables,
    client: &str,
    message: MessageId,
    shared: bool,
    pending: &mut Pending,
) -> Result<()> {
    // Key order: this client's entries come oldest first.
    for (owner, seq) in t.queue_refs(message)? {
        if owner != client {
            continue;
        }
        let at_seq = t.slots(client, seq, 1)?;
        if at_seq
            .first()
            .is_some_and(|(s, slot)| *s == seq && slot.shared == shared)
        {
            return remove_slot(t, client, seq, pending);
        }
    }
    Ok(())
}

/// Stores a body unless it is already there (a fan-out stores it once); the caller adds a
/// reference to it, so a body waiting for deletion is kept.
fn store_body(t: &mut dyn Tables, message: &Arc<Message>) -> Result<()> {
    if t.has_message(message.id)? {
        t.garbage().revive(message.id);
    } else {
        t.insert_message(message)?;
        t.add_expiry(message.published_at_ms, message.id)?;
    }
    Ok(())
}

/// Removes a client's queue entries with seq <= `through`, oldest first, a batch at a time.
fn remove_slots(
    t: &mut dyn Tables,
    client: &str,
    through: u64,
    pending: &mut Pending,
) -> Result<()> {
    loop {
        let batch = t.slots(client, 0, SCAN_BATCH)?;
        if batch.is_empty() {
            return Ok(());
        }
        for (seq, _) in batch {
            if seq > through {
                return Ok(());
            }
            remove_slot(t, client, seq, pending)?;
        }
    }
}

fn remove_slot(t: &mut dyn Tables, client: &str, seq: u64, pending: &mut Pending) -> Result<()> {
    if let Some(slot) = t.take_slot(client, seq)? {
        t.remove_ref(slot.message, client, seq)?;
        pending.touched.insert(slot.message);
        let meta = pending.meta(t, client)?;
        meta.len = meta.len.saturating_sub(1);
        meta.bytes = meta.bytes.saturating_sub(slot.size);
    }
    Ok(())
}

/// Drops the in-flight refs of the client's saved record, if any.
/// The in-flight refs a session's stored record holds: (message, holder) of each entry
/// still waiting for its PUBACK or PUBREC (only those need their body).
fn inflight_refs(record: &SessionRecord) -> impl Iterator<Item = (MessageId, u64)> + '_ {
    record
        .inflight
        .iter()
        .filter(|e| e.stage == InFlightStage::Published)
        .map(|e| (e.message, INFLIGHT_HOLDER | u64::from(e.packet_id.get())))
}

/// Brings the in-flight refs from the stored record's to `record`'s: removes those that
/// left (their bodies are checked at the end of the transaction) and returns those that
/// are new, for the caller to add once their bodies are stored. An entry in flight in both
/// keeps its ref untouched, so a save costs the changes, not the whole window.
fn update_inflight_refs(
    t: &mut dyn Tables,
    record: &SessionRecord,
    pending: &mut Pending,
) -> Result<Vec<(MessageId, u64)>> {
    let old: BTreeSet<(MessageId, u64)> = match t.blob(BlobKind::Session, &record.client_id)? {
        Some(json) => {
            inflight_refs(&from_json::<SessionRecord>(BlobKind::Session, &json)?).collect()
        }
        None => BTreeSet::new(),
    };
    let new: BTreeSet<(MessageId, u64)> = inflight_refs(record).collect();
    for &(id, holder) in old.difference(&new) {
        t.remove_ref(id, &record.client_id, holder)?;
        pending.touched.insert(id);
    }
    Ok(new.difference(&old).copied().collect())
}

fn release_inflight(t: &mut dyn Tables, client: &str, pending: &mut Pending) -> Result<()> {
    let Some(json) = t.blob(BlobKind::Session, client)? else {
        return Ok(());
    };
    let old: SessionRecord = from_json(BlobKind::Session, &json)?;
    for entry in old.inflight {
        let holder = INFLIGHT_HOLDER | u64::from(entry.packet_id.get());
        t.remove_ref(entry.message, client, holder)?;
        pending.touched.insert(entry.message);
    }
    Ok(())
}

/// Removes the queue entries of messages published at or before `now - ttl`, at most `max`
/// messages; bodies still in flight somewhere stay until released.
pub(crate) fn sweep(
    t: &mut dyn Tables,
    now_ms: u64,
    limits: &StoreLimits,
    max: usize,
) -> Result<usize> {
    // However little waits: a broker that went idle gets its space back a chunk per sweep.
    delete_garbage(t, true)?;
    let Some(cutoff) = now_ms.checked_sub(limits.message_ttl_ms) else {
        return Ok(0);
    };
    let due = t.due(cutoff, max)?;
    let mut pending = Pending::default();
    for &(at, id) in &due {
        for (client, seq) in t.queue_refs(id)? {
            remove_slot(t, &client, seq, &mut pending)?;
        }
        t.remove_expiry(at, id)?;
        pending.touched.insert(id);
    }
    pending.finish(t)?;
    Ok(due.len())
}

/// Every saved session, its queue filled in from the store's queue.
pub(crate) fn load_sessions(t: &dyn ReadTables) -> Result<Vec<SessionRecord>> {
    let mut sessions = Vec::new();
    for json in t.blobs(BlobKind::Session)? {
        let mut record: SessionRecord = from_json(BlobKind::Session, &json)?;
        record.queue = all_slots(t, &record.client_id)?
            .into_iter()
            .map(|(_, slot)| QueuedRef {
                message: slot.message,
                qos: slot.qos,
                shared: slot.shared,
            })
            .collect();
        sessions.push(record);
    }
    Ok(sessions)
}

/// Every saved session with its queue's counters and its in-flight bodies, reading no queued
/// message: work in proportion to the sessions (and what they have in flight), not to what
/// their queues hold.
pub(crate) fn load_session_heads(t: &dyn ReadTables) -> Result<Vec<StoredSession>> {
    let mut sessions = Vec::new();
    for json in t.blobs(BlobKind::Session)? {
        let mut record: SessionRecord = from_json(BlobKind::Session, &json)?;
        record.queue.clear();
        let meta = t.meta(&record.client_id)?;
        let mut inflight = Vec::new();
        for entry in &record.inflight {
            if entry.stage == InFlightStage::Published {
                // A missing body is the session's restore error to report, not the store's.
                if let Some(message) = t.message(entry.message)? {
                    inflight.push(message);
                }
            }
        }
        sessions.push(StoredSession {
            record,
            queue: QueueStats {
                messages: meta.len,
                bytes: meta.bytes,
            },
            inflight,
        });
    }
    Ok(sessions)
}

/// One page of a client's queue: up to `read.max` entries after `read.after_seq`, leaving
/// out `read.skip`. Reads at most `max + skip.len() + 1` entries of the queue.
pub(crate) fn read_page(t: &dyn ReadTables, client: &str, read: &QueueRead) -> Result<QueuePage> {
    let mut page = QueuePage {
        entries: Vec::new(),
        more: false,
        epoch: read.epoch,
    };
    let mut from = read.after_seq.map_or(0, |seq| seq.saturating_add(1));
    loop {
        let want = read
            .max
            .saturating_sub(page.entries.len())
            .saturating_add(1)
            .min(SCAN_BATCH);
        let batch = t.slots(client, from, want)?;
        let Some(&(last, _)) = batch.last() else {
            return Ok(page);
        };
        for (seq, slot) in batch {
            if read.skip.contains(&(slot.message, slot.shared)) {
                continue;
            }
            if page.entries.len() >= read.max {
                page.more = true;
                return Ok(page);
            }
            let message = t.message(slot.message)?.ok_or_else(|| {
                StoreError::corrupt(
                    "queues",
                    format_args!("entry {seq} of {client} has no message"),
                )
            })?;
            page.entries.push(PageEntry {
                seq,
                message,
                qos: slot.qos,
                shared: slot.shared,
            });
        }
        from = last.saturating_add(1);
    }
}

fn all_slots(t: &dyn ReadTables, client: &str) -> Result<Vec<(u64, Slot)>> {
    t.slots(client, 0, usize::MAX)
}

/// Queue entries from `from_seq` on, with their bodies.
pub(crate) fn read_queue(
    t: &dyn ReadTables,
    client: &str,
    from_seq: u64,
    max: usize,
) -> Result<Vec<QueuedEntry>> {
    let mut entries = Vec::new();
    for (seq, slot) in t.slots(client, from_seq, max)? {
        let message = t.message(slot.message)?.ok_or_else(|| {
            StoreError::corrupt(
                "queues",
                format_args!("entry {seq} of {client} has no message"),
            )
        })?;
        entries.push(QueuedEntry {
            seq,
            message,
            qos: slot.qos,
            shared: slot.shared,
        });
    }
    Ok(entries)
}

pub(crate) fn queue_stats(t: &dyn ReadTables, client: &str) -> Result<QueueStats> {
    let meta = t.meta(client)?;
    Ok(QueueStats {
        messages: meta.len,
        bytes: meta.bytes,
    })
}

/// Every record of one registry kind.
pub(crate) fn load_records<T: DeserializeOwned>(
    t: &dyn ReadTables,
    kind: BlobKind,
) -> Result<Vec<T>> {
    t.blobs(kind)?
        .iter()
        .map(|json| from_json(kind, json))
        .collect()
}

fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Io(format!("cannot encode record: {e}")))
}

fn from_json<T: DeserializeOwned>(kind: BlobKind, json: &[u8]) -> Result<T> {
    serde_json::from_slice(json).map_err(|e| StoreError::corrupt(kind.table(), e))
}

/// Implements [`Store`](crate::Store) for a backend with `limits`, `read`, `write` (a
/// transaction that commits when the closure returns `Ok`) and `write_lazily` (the same,
/// committed without waiting for the disk where the backend can).
macro_rules! impl_store {
    ($backend:ty) => {
        impl $crate::Store for $backend {
            fn apply(&self, ops: &[$crate::Op]) -> std::result::Result<(), $crate::StoreError> {
                let limits = self.limits;
                self.write(|t| $crate::tables::apply(t, ops, &limits))
            }
            fn apply_lazily(&self, ops: &[$crate::Op]) -> std::result::Result<(), $crate::StoreError> {
                let limits = self.limits;
                self.write_lazily(|t| $crate::tables::apply(t, ops, &limits))
            }
            fn sweep_expired(&self, now_ms: u64, max: usize) -> std::result::Result<usize, $crate::StoreError> {
                let limits = self.limits;
                self.write(|t| $crate::tables::sweep(t, now_ms, &limits, max))
            }
            fn delete_unreferenced(&self) -> std::result::Result<(), $crate::StoreError> {
                self.write($crate::tables::delete_all_garbage)
            }
            fn load_sessions(&self) -> std::result::Result<Vec<mqgate_session::SessionRecord>, $crate::StoreError> {
                self.read($crate::tables::load_sessions)
            }
            fn load_session_heads(&self) -> std::result::Result<Vec<$crate::StoredSession>, $crate::StoreError> {
                self.read($crate::tables::load_session_heads)
            }
            fn read_page(
                &self,
                client_id: &str,
                read: &mqgate_session::QueueRead,
            ) -> std::result::Result<mqgate_session::QueuePage, $crate::StoreError> {
                self.read(|t| $crate::tables::read_page(t, client_id, read))
            }
            fn get_message(
                &self,
                id: mqgate_session::MessageId,
            ) -> std::result::Result<Option<std::sync::Arc<mqgate_session::Message>>, $crate::StoreError> {
                self.read(|t| if t.is_garbage(id) { Ok(None) } else { t.message(id) })
            }
            fn read_queue(
                &self,
                client_id: &str,
                from_seq: u64,
                max: usize,
            ) -> std::result::Result<Vec<$crate::QueuedEntry>, $crate::StoreError> {
                self.read(|t| $crate::tables::read_queue(t, client_id, from_seq, max))
            }
            fn queue_stats(&self, client_id: &str) -> std::result::Result<$crate::QueueStats, $crate::StoreError> {
                self.read(|t| $crate::tables::queue_stats(t, client_id))
            }
            fn load_retained(
                &self,
            ) -> std::result::Result<Vec<std::sync::Arc<mqgate_session::Message>>, $crate::StoreError> {
                self.read(|t| t.retained())
            }
            fn load_groups(&self) -> std::result::Result<Vec<mqgate_auth::GroupRecord>, $crate::StoreError> {
                self.read(|t| $crate::tables::load_records(t, $crate::tables::BlobKind::Group))
            }
            fn load_tokens(&self) -> std::result::Result<Vec<mqgate_auth::TokenRecord>, $crate::StoreError> {
                self.read(|t| $crate::tables::load_records(t, $crate::tables::BlobKind::Token))
            }
            fn load_device_credentials(
                &self,
            ) -> std::result::Result<Vec<mqgate_auth::DeviceCredential>, $crate::StoreError> {
                self.read(|t| $crate::tables::load_records(t, $crate::tables::BlobKind::Device))
            }
            fn load_custom_identities(
                &self,
            ) -> std::result::Result<Vec<mqgate_auth::CustomIdentity>, $crate::StoreError> {
                self.read(|t| $crate::tables::load_records(t, $crate::tables::BlobKind::CustomIdentity))
            }
            fn load_custom_permissions(
                &self,
            ) -> std::result::Result<Vec<mqgate_auth::CustomPermission>, $crate::StoreError> {
                self.read(|t| $crate::tables::load_records(t, $crate::tables::BlobKind::CustomPermission))
            }
            fn load_connect_blacklist(
                &self,
            ) -> std::result::Result<Vec<mqgate_auth::ConnectBlack>, $crate::StoreError> {
                self.read(|t| $crate::tables::load_records(t, $crate::tables::BlobKind::ConnectBlack))
            }
            fn load_wills(&self) -> std::result::Result<Vec<$crate::StoredWill>, $crate::StoreError> {
                self.read(|t| $crate::tables::load_records(t, $crate::tables::BlobKind::Will))
            }
            fn stats(&self) -> std::result::Result<$crate::StoreStats, $crate::StoreError> {
                self.read(|t| t.stats())
            }
        }
    };
}
pub(crate) use impl_store;
