//! [`RedbStore`]: the store's tables in one redb file, one transaction per `apply`.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mqgate_codec::QoS;
use mqgate_session::{Message, MessageId};
use parking_lot::RwLock;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};

use crate::codec::{decode_message, encode_message, published_at_ms};
use crate::garbage::GarbagePolicy;
use crate::queue_index::{IndexTxn, QueueIndex};
use crate::tables::{impl_store, BlobKind, QueueMeta, ReadTables, Slot, Tables, INFLIGHT_HOLDER};
use crate::{StoreError, StoreLimits, StoreStats};

type Result<T> = std::result::Result<T, StoreError>;

/// The file [`RedbStore::open`] uses inside a data directory.
pub const DEFAULT_FILE_NAME: &str = "mqgate.redb";
/// The on-disk format this build writes, and the only one it reads. Version 2 keeps queue
/// entries in one log keyed by a store-wide sequence number (version 1 had one B-tree range
/// per client, so a commit appending to many queues wrote a page per queue).
pub const FORMAT_VERSION: u64 = 2;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const MESSAGES: TableDefinition<u128, &[u8]> = TableDefinition::new("messages");
const REFS: TableDefinition<(u128, &str, u64), ()> = TableDefinition::new("refs");
const EXPIRY: TableDefinition<(u64, u128), ()> = TableDefinition::new("expiry");
/// seq -> (client id, message id, QoS with [`SHARED_COPY`], size): every queue's entries, in
/// append order.
const QUEUE_LOG: TableDefinition<u64, (&str, u128, u8, u64)> = TableDefinition::new("queue_log");
const BLOBS: TableDefinition<(u8, &str), &[u8]> = TableDefinition::new("blobs");
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
const VERSION_KEY: &str = "format_version";
/// Set in a queue log entry's QoS byte for a shared subscription's copy (entries written
/// before the mark was kept have it clear: plain copies).
const SHARED_COPY: u8 = 0x80;
/// The next queue sequence number, so none is reused even after every queue emptied.
const NEXT_SEQ_KEY: &str = "next_seq";

/// A durable [`Store`](crate::Store) in one redb file: every [`apply`](crate::Store::apply)
/// is a transaction committed with an fsync before it returns, so a crash (even SIGKILL or
/// power loss) loses nothing `apply` acknowledged.
///
/// ```
/// use mqgate_store::{RedbStore, Store, StoreLimits};
/// let dir = tempfile::tempdir().unwrap();
/// let store = RedbStore::open(dir.path(), StoreLimits::default())?;
/// assert!(dir.path().join("mqgate.redb").exists());
/// assert!(store.load_sessions()?.is_empty());
/// # Ok::<(), mqgate_store::StoreError>(())
/// ```
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    limits: StoreLimits,
    options: RedbOptions,
    /// Each client's entries of the queue log. Writers hold it exclusively for the whole
    /// transaction, readers shared, so a reader never sees the index of an uncommitted write.
    index: RwLock<QueueIndex>,
    compaction: Option<Compaction>,
}

/// How [`RedbStore::open_with`] runs the redb file: its page cache and its crash recovery.
///
/// ```
/// use mqgate_store::{RedbOptions, RedbStore, StoreLimits};
/// let dir = tempfile::tempdir().unwrap();
/// let options = RedbOptions { cache_bytes: 16 << 20, ..RedbOptions::default() };
/// let store = RedbStore::open_with(dir.path(), StoreLimits::default(), options)?;
/// assert_eq!(store.options().cache_bytes, 16 << 20);
/// # Ok::<(), mqgate_store::StoreError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedbOptions {
    /// Memory redb keeps as its page cache, in bytes (default [`DEFAULT_CACHE_BYTES`]).
    /// Pages read or written go through it, so it is the store's share of the process's
    /// memory however large the file grows; what it does not hold the kernel's page cache
    /// usually does.
    pub cache_bytes: usize,
    /// Every commit also writes redb's allocator state and commits in two phases, so
    /// opening the file after a crash takes a moment instead of a walk of the whole file
    /// (which reads every page: about as long as reading the file). On by default.
    pub quick_repair: bool,
    /// Files up to this size are checked at open for being mostly free space, and compacted
    /// if so (default [`DEFAULT_COMPACT_CHECK_MAX_BYTES`]). The check reads every page of
    /// the file (redb counts its pages by walking its trees): on a 17 GB file it took most
    /// of a 20 s start. Larger files are opened without it.
    pub compact_check_max_bytes: u64,
    /// Bodies no queue or session refers to any more that wait before any is deleted
    /// (default [`DEFAULT_DEFERRED_DELETES`]). Past that, the oldest are deleted a chunk at
    /// a time (at most 4 096 per commit), and a chunk more with every expiry sweep, so that
    /// a draining backlog empties whole pages of the file instead of rewriting one page per
    /// message; the rest are deleted when the store closes. 0 deletes each body in the
    /// commit that drops its last reference. After a crash, the bodies that were waiting
    /// stay in the file until the expiry sweep removes them at the end of their retention;
    /// nothing reads them.
    pub deferred_deletes: usize,
}

/// [`RedbOptions::cache_bytes`]' default: 64 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;
/// [`RedbOptions::deferred_deletes`]' default: 32 768 bodies (32 MiB of 1 KiB messages).
pub const DEFAULT_DEFERRED_DELETES: usize = 32_768;
/// [`RedbOptions::compact_check_max_bytes`]' default: 1 GiB.
pub const DEFAULT_COMPACT_CHECK_MAX_BYTES: u64 = 1 << 30;

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            cache_bytes: DEFAULT_CACHE_BYTES,
            quick_repair: true,
            compact_check_max_bytes: DEFAULT_COMPACT_CHECK_MAX_BYTES,
            deferred_deletes: DEFAULT_DEFERRED_DELETES,
        }
    }
}

/// What [`RedbStore::open`] did when it found the file mostly free space and compacted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// File size before, in bytes.
    pub before: u64,
    /// File size after, in bytes.
    pub after: u64,
}

/// Compaction at open starts when at least this much of the file is free space...
const COMPACT_MIN_FREE: u64 = 1 << 20;
/// ...and that free space is more than this fraction (1/n) of the file.
const COMPACT_FREE_SHARE: u64 = 2;

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (or creates) [`DEFAULT_FILE_NAME`] in `data_dir`, creating the directory.
    ///
    /// # Errors
    /// As [`open_file`](Self::open_file); also [`StoreError::Open`] if the directory cannot
    /// be created.
    pub fn open(data_dir: impl AsRef<Path>, limits: StoreLimits) -> Result<Self> {
        Self::open_with(data_dir, limits, RedbOptions::default())
    }

    /// [`open`](Self::open) with the given [`RedbOptions`].
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(
        data_dir: impl AsRef<Path>,
        limits: StoreLimits,
        options: RedbOptions,
    ) -> Result<Self> {
        let dir = data_dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| open_error(dir, e))?;
        Self::open_file_with(dir.join(DEFAULT_FILE_NAME), limits, options)
    }

    /// Opens (or creates) the store file at `path`. A missing or empty file becomes a new
    /// store; anything else must be a store of this format version. Opening reads the queue
    /// log once to rebuild each client's index (about a second per million queued messages),
    /// and compacts the file first when more than half of it (and at least 1 MiB) is free
    /// space: redb reuses freed pages but never shrinks its file by itself. Compaction takes
    /// time in proportion to the data kept, which is then less than the free space. Only
    /// files up to [`RedbOptions::compact_check_max_bytes`] (1 GiB) are checked: the check
    /// reads the whole file.
    ///
    /// # Errors
    /// [`StoreError::Open`] (naming the file) if it is unreadable or not a store,
    /// [`StoreError::NewerFormat`] if a newer mqgate wrote it, [`StoreError::OlderFormat`]
    /// if an older one did.
    pub fn open_file(path: impl Into<PathBuf>, limits: StoreLimits) -> Result<Self> {
        Self::open_file_with(path, limits, RedbOptions::default())
    }

    /// [`open_file`](Self::open_file) with the given [`RedbOptions`].
    ///
    /// # Errors
    /// As [`open_file`](Self::open_file).
    pub fn open_file_with(
        path: impl Into<PathBuf>,
        limits: StoreLimits,
        options: RedbOptions,
    ) -> Result<Self> {
        let path = path.into();
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(&path)
            .map_err(|e| open_error(&path, e))?;
        let mut store = RedbStore {
            db,
            path,
            limits,
            options,
            index: RwLock::default(),
            compaction: None,
        };
        store.check_format()?;
        store.compaction = store.compact_if_sparse()?;
        store.rebuild_index()?;
        Ok(store)
    }

    /// The ids of every body in the file, those waiting for deletion included.
    #[cfg(test)]
    pub(crate) fn raw_message_ids(&self) -> Vec<u128> {
        let txn = self.db.begin_read().unwrap();
        let table = txn.open_table(MESSAGES).unwrap();
        table
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect()
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options this store was opened with.
    pub fn options(&self) -> RedbOptions {
        self.options
    }

    /// The compaction [`open`](Self::open) did, if the file was mostly free space.
    pub fn compaction(&self) -> Option<Compaction> {
        self.compaction
    }

    /// Checks the format version, writing it (and creating every table) in a new file.
    fn check_format(&self) -> Result<()> {
        let open = |e: &dyn Display| open_error(&self.path, e);
        let mut txn = self.db.begin_write().map_err(|e| open(&e))?;
        // Every commit, this one too, leaves the file quick to open after a crash.
        txn.set_quick_repair(self.options.quick_repair);
        let had_tables = txn.list_tables().map_err(|e| open(&e))?.count() > 0;
        {
            let mut meta = txn.open_table(META).map_err(|e| open(&e))?;
            let found = meta
                .get(VERSION_KEY)
                .map_err(|e| open(&e))?
                .map(|v| v.value());
            match found {
                Some(found) if found > FORMAT_VERSION => {
                    return Err(StoreError::NewerFormat {
                        path: self.path.clone(),
                        found,
                        supported: FORMAT_VERSION,
                    })
                }
                Some(found) if found < FORMAT_VERSION => {
                    return Err(StoreError::OlderFormat {
                        path: self.path.clone(),
                        found,
                        supported: FORMAT_VERSION,
                    })
                }
                Some(_) => {}
                None if had_tables => return Err(open(&"tables but no format version")),
                None => {
                    meta.insert(VERSION_KEY, FORMAT_VERSION)
                        .map_err(|e| open(&e))?;
                }
            }
        }
        // Creating every table up front lets readers open them without a writer.
        let mut index = QueueIndex::default();
        open_write_tables(&txn, &mut IndexTxn::new(&mut index)).map_err(|e| open(&e))?;
        txn.commit().map_err(|e| open(&e))
    }

    /// Reads the queue log into the per-client index.
    fn rebuild_index(&self) -> Result<()> {
        let open = |e: &dyn Display| open_error(&self.path, e);
        let txn = self.db.begin_read().map_err(|e| open(&e))?;
        let mut index = QueueIndex::new(GarbagePolicy::keeping(self.options.deferred_deletes));
        let stored_next = txn.open_table(META).map_err(|e| open(&e))?;
        if let Some(next) = stored_next.get(NEXT_SEQ_KEY).map_err(|e| open(&e))? {
            index.reserve_below(next.value());
        }
        let log = txn.open_table(QUEUE_LOG).map_err(|e| open(&e))?;
        for entry in log.iter().map_err(|e| open(&e))? {
            let (seq, value) = entry.map_err(|e| open(&e))?;
            let (client, _, _, size) = value.value();
            index.load(client, seq.value(), size);
        }
        *self.index.write() = index;
        Ok(())
    }

    /// Compacts the file when most of it is free space; `None` when it was not worth it.
    fn compact_if_sparse(&mut self) -> Result<Option<Compaction>> {
        let open = |path: &Path, e: &dyn Display| open_error(path, e);
        let before = file_len(&self.path)?;
        if before > self.options.compact_check_max_bytes {
            return Ok(None);
        }
        let txn = self.db.begin_write().map_err(|e| open(&self.path, &e))?;
        let stats = txn.stats().map_err(|e| open(&self.path, &e))?;
        txn.abort().map_err(|e| open(&self.path, &e))?;
        let used = stats
            .allocated_pages()
            .saturating_mul(u64::try_from(stats.page_size()).unwrap_or(u64::MAX));
        let free = before.saturating_sub(used);
        if free < COMPACT_MIN_FREE || free.saturating_mul(COMPACT_FREE_SHARE) < before {
            return Ok(None);
        }
        self.db.compact().map_err(|e| open(&self.path, &e))?;
        Ok(Some(Compaction {
            before,
            after: file_len(&self.path)?,
        }))
    }

    fn read<T>(&self, f: impl FnOnce(&dyn ReadTables) -> Result<T>) -> Result<T> {
        let index = self.index.read();
        let txn = self.db.begin_read().map_err(io)?;
        let tables = open_tables!(txn, &*index);
        f(&tables)
    }

    /// One transaction: committed (durably) if `f` succeeds, rolled back, index included,
    /// if anything fails.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Tables) -> Result<T>) -> Result<T> {
        self.write_with(Durability::Immediate, f)
    }

    /// [`write`](Self::write) committed without an fsync: durable with the next
    /// [`write`](Self::write), undone by a crash before it.
    fn write_lazily<T>(&self, f: impl FnOnce(&mut dyn Tables) -> Result<T>) -> Result<T> {
        self.write_with(Durability::None, f)
    }

    fn write_with<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut dyn Tables) -> Result<T>,
    ) -> Result<T> {
        let mut index = self.index.write();
        let mut index_txn = IndexTxn::new(&mut index);
        let mut txn = self.db.begin_write().map_err(io)?;
        txn.set_quick_repair(self.options.quick_repair);
        txn.set_durability(durability).map_err(io)?;
        let out = f(&mut open_write_tables(&txn, &mut index_txn)?)?;
        if let Some(next) = index_txn.next_seq_to_store() {
            let mut meta = txn.open_table(META).map_err(io)?;
            meta.insert(NEXT_SEQ_KEY, next).map_err(io)?;
        }
        txn.commit().map_err(io)?;
        // Only now: an error above dropped `index_txn`, which undid its changes.
        index_txn.commit();
        Ok(out)
    }
}

fn file_len(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| open_error(path, e))
}

impl_store!(RedbStore);

impl Drop for RedbStore {
    /// Deletes the bodies still waiting for deletion, so a store that closes leaves none
    /// behind (one that crashes leaves them to the expiry sweep).
    fn drop(&mut self) {
        if self.index.read().garbage.len() > 0 {
            // Nothing to report to: a failure leaves them to the expiry sweep too.
            let _ = crate::Store::delete_unreferenced(self);
        }
    }
}

/// Read and write transactions open their tables with the same calls on different types.
macro_rules! open_tables {
    ($txn:expr, $index:expr) => {
        RedbTables {
            messages: $txn.open_table(MESSAGES).map_err(io)?,
            refs: $txn.open_table(REFS).map_err(io)?,
            expiry: $txn.open_table(EXPIRY).map_err(io)?,
            log: $txn.open_table(QUEUE_LOG).map_err(io)?,
            blobs: $txn.open_table(BLOBS).map_err(io)?,
            retained: $txn.open_table(RETAINED).map_err(io)?,
            index: $index,
        }
    };
}
use open_tables;

type LogValue = (&'static str, u128, u8, u64);

type WriteTables<'t, 'i> = RedbTables<
    Table<'t, u128, &'static [u8]>,
    Table<'t, (u128, &'static str, u64), ()>,
    Table<'t, (u64, u128), ()>,
    Table<'t, u64, LogValue>,
    Table<'t, (u8, &'static str), &'static [u8]>,
    Table<'t, &'static str, &'static [u8]>,
    &'t mut IndexTxn<'i>,
>;

fn open_write_tables<'t, 'i>(
    txn: &'t redb::WriteTransaction,
    index: &'t mut IndexTxn<'i>,
) -> Result<WriteTables<'t, 'i>> {
    Ok(open_tables!(txn, index))
}

/// The tables, read-only or writable, and the queue index: reads are written once for both.
struct RedbTables<M, R, E, L, B, RT, I> {
    messages: M,
    refs: R,
    expiry: E,
    log: L,
    blobs: B,
    retained: RT,
    index: I,
}

/// The queue index as a read sees it, or as a write transaction is changing it.
trait IndexView {
    fn view(&self) -> &QueueIndex;
}

impl IndexView for &QueueIndex {
    fn view(&self) -> &QueueIndex {
        self
    }
}

impl IndexView for &mut IndexTxn<'_> {
    fn view(&self) -> &QueueIndex {
        IndexTxn::view(self)
    }
}

fn io(e: impl Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn open_error(path: &Path, e: impl Display) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// A log entry as a slot, checked: it must belong to `client`.
fn slot_from(
    client: &str,
    seq: u64,
    (owner, message, qos, size): (&str, u128, u8, u64),
) -> Result<Slot> {
    if owner != client {
        return Err(StoreError::corrupt(
            "queue_log",
            format_args!("entry {seq} belongs to {owner}, not {client}"),
        ));
    }
    Ok(Slot {
        message: MessageId(message),
        qos: QoS::from_u8(qos & !SHARED_COPY)
            .ok_or_else(|| StoreError::corrupt("queue_log", "QoS is not 0, 1 or 2"))?,
        size,
        shared: qos & SHARED_COPY != 0,
    })
}

impl<M, R, E, L, B, RT, I> ReadTables for RedbTables<M, R, E, L, B, RT, I>
where
    M: ReadableTable<u128, &'static [u8]>,
    R: ReadableTable<(u128, &'static str, u64), ()>,
    E: ReadableTable<(u64, u128), ()>,
    L: ReadableTable<u64, LogValue>,
    B: ReadableTable<(u8, &'static str), &'static [u8]>,
    RT: ReadableTable<&'static str, &'static [u8]>,
    I: IndexView,
{
    fn message(&self, id: MessageId) -> Result<Option<Arc<Message>>> {
        match self.messages.get(id.0).map_err(io)? {
            Some(bytes) => Ok(Some(Arc::new(decode_message(bytes.value())?))),
            None => Ok(None),
        }
    }
    fn has_message(&self, id: MessageId) -> Result<bool> {
        Ok(self.messages.get(id.0).map_err(io)?.is_some())
    }
    fn has_refs(&self, id: MessageId) -> Result<bool> {
        let mut range = self.refs.range((id.0, "", 0)..).map_err(io)?;
        match range.next() {
            Some(entry) => Ok(entry.map_err(io)?.0.value().0 == id.0),
            None => Ok(false),
        }
    }
    fn queue_refs(&self, id: MessageId) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for entry in self.refs.range((id.0, "", 0)..).map_err(io)? {
            let (key, _) = entry.map_err(io)?;
            let (message, client, holder) = key.value();
            if message != id.0 {
                break;
            }
            if holder < INFLIGHT_HOLDER {
                out.push((client.to_owned(), holder));
            }
        }
        Ok(out)
    }
    fn due(&self, cutoff: u64, max: usize) -> Result<Vec<(u64, MessageId)>> {
        let mut out = Vec::new();
        for entry in self
            .expiry
            .range(..=(cutoff, u128::MAX))
            .map_err(io)?
            .take(max)
        {
            let (at, id) = entry.map_err(io)?.0.value();
            out.push((at, MessageId(id)));
        }
        Ok(out)
    }
    fn meta(&self, client: &str) -> Result<QueueMeta> {
        Ok(self.index.view().meta(client))
    }
    fn in_flight(&self, client: &str) -> QueueMeta {
        self.index.view().in_flight(client)
    }
    fn slots(&self, client: &str, from: u64, max: usize) -> Result<Vec<(u64, Slot)>> {
        let seqs = self.index.view().seqs(client, from, max);
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let value = self.log.get(seq).map_err(io)?.ok_or_else(|| {
                StoreError::corrupt(
                    "queue_log",
                    format_args!("entry {seq} of {client} is missing"),
                )
            })?;
            out.push((seq, slot_from(client, seq, value.value())?));
        }
        Ok(out)
    }
    fn seq_at(&self, client: &str, at: usize) -> Result<Option<u64>> {
        Ok(self.index.view().seq_at(client, at))
    }
    fn blob(&self, kind: BlobKind, key: &str) -> Result<Option<Vec<u8>>> {
        let value = self.blobs.get((kind as u8, key)).map_err(io)?;
        Ok(value.map(|v| v.value().to_vec()))
    }
    fn blobs(&self, kind: BlobKind) -> Result<Vec<Vec<u8>>> {
        let kind = kind as u8;
        let mut out = Vec::new();
        for entry in self.blobs.range((kind, "")..).map_err(io)? {
            let (key, value) = entry.map_err(io)?;
            if key.value().0 != kind {
                break;
            }
            out.push(value.value().to_vec());
        }
        Ok(out)
    }
    fn retained(&self) -> Result<Vec<Arc<Message>>> {
        let mut out = Vec::new();
        for entry in self.retained.iter().map_err(io)? {
            out.push(Arc::new(decode_message(entry.map_err(io)?.1.value())?));
        }
        Ok(out)
    }
    fn stats(&self) -> Result<StoreStats> {
        let session = BlobKind::Session as u8;
        let sessions = self
            .blobs
            .range((session, "")..(session + 1, ""))
            .map_err(io)?;
        let garbage = u64::try_from(self.index.view().garbage.len()).unwrap_or(u64::MAX);
        Ok(StoreStats {
            messages: self.messages.len().map_err(io)?.saturating_sub(garbage),
            queued: self.log.len().map_err(io)?,
            sessions: u64::try_from(sessions.count()).unwrap_or(u64::MAX),
            retained: self.retained.len().map_err(io)?,
        })
    }
    fn is_garbage(&self, id: MessageId) -> bool {
        self.index.view().garbage.contains(id)
    }
}

impl Tables for WriteTables<'_, '_> {
    fn insert_message(&mut self, message: &Arc<Message>) -> Result<()> {
        let bytes = encode_message(message);
        self.messages
            .insert(message.id.0, bytes.as_slice())
            .map_err(io)?;
        Ok(())
    }
    fn remove_message(&mut self, id: MessageId) -> Result<Option<u64>> {
        let Some(old) = self.messages.remove(id.0).map_err(io)? else {
            return Ok(None);
        };
        // Only the timestamp: the payload is not copied out of a page about to be freed.
        Ok(Some(published_at_ms(old.value())?))
    }
    fn add_ref(&mut self, id: MessageId, client: &str, holder: u64) -> Result<()> {
        self.refs.insert((id.0, client, holder), ()).map_err(io)?;
        Ok(())
    }
    fn remove_ref(&mut self, id: MessageId, client: &str, holder: u64) -> Result<()> {
        self.refs.remove((id.0, client, holder)).map_err(io)?;
        Ok(())
    }
    fn add_expiry(&mut self, at: u64, id: MessageId) -> Result<()> {
        self.expiry.insert((at, id.0), ()).map_err(io)?;
        Ok(())
    }
    fn remove_expiry(&mut self, at: u64, id: MessageId) -> Result<()> {
        self.expiry.remove((at, id.0)).map_err(io)?;
        Ok(())
    }
    fn set_meta(&mut self, client: &str, meta: Option<QueueMeta>) -> Result<()> {
        self.index.set_meta(client, meta);
        Ok(())
    }
    fn set_in_flight(&mut self, client: &str, held: QueueMeta) {
        self.index.set_in_flight(client, held);
    }
    fn alloc_seq(&mut self) -> Result<u64> {
        Ok(self.index.alloc_seq())
    }
    fn push_slot(&mut self, client: &str, seq: u64, slot: Slot) -> Result<()> {
        let qos = slot.qos as u8 | if slot.shared { SHARED_COPY } else { 0 };
        let value = (client, slot.message.0, qos, slot.size);
        self.log.insert(seq, value).map_err(io)?;
        self.index.push(client, seq);
        Ok(())
    }
    fn take_slot(&mut self, client: &str, seq: u64) -> Result<Option<Slot>> {
        if !self.index.take(client, seq) {
            return Ok(None);
        }
        match self.log.remove(seq).map_err(io)? {
            Some(old) => slot_from(client, seq, old.value()).map(Some),
            None => Err(StoreError::corrupt(
                "queue_log",
                format_args!("entry {seq} of {client} is missing"),
            )),
        }
    }
    fn put_blob(&mut self, kind: BlobKind, key: &str, value: Vec<u8>) -> Result<()> {
        self.blobs
            .insert((kind as u8, key), value.as_slice())
            .map_err(io)?;
        Ok(())
    }
    fn remove_blob(&mut self, kind: BlobKind, key: &str) -> Result<()> {
        self.blobs.remove((kind as u8, key)).map_err(io)?;
        Ok(())
    }
    fn set_retained(&mut self, message: &Arc<Message>) -> Result<()> {
        let bytes = encode_message(message);
        self.retained
            .insert(&*message.topic, bytes.as_slice())
            .map_err(io)?;
        Ok(())
    }
    fn clear_retained(&mut self, topic: &str) -> Result<()> {
        self.retained.remove(topic).map_err(io)?;
        Ok(())
    }
    fn garbage(&mut self) -> &mut crate::garbage::Garbage {
        self.index.garbage()
    }
}
