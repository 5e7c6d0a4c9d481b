//! [`RedbStore`]: the store's tables in one redb file, one transaction per `apply`.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mqgate_codec::QoS;
use mqgate_session::{Message, MessageId};
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};

use crate::codec::{decode_message, encode_message};
use crate::tables::{impl_store, BlobKind, QueueMeta, ReadTables, Slot, Tables, INFLIGHT_HOLDER};
use crate::{StoreError, StoreLimits, StoreStats};

type Result<T> = std::result::Result<T, StoreError>;

/// The file [`RedbStore::open`] uses inside a data directory.
pub const DEFAULT_FILE_NAME: &str = "mqgate.redb";
/// The on-disk format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const MESSAGES: TableDefinition<u128, &[u8]> = TableDefinition::new("messages");
const REFS: TableDefinition<(u128, &str, u64), ()> = TableDefinition::new("refs");
const EXPIRY: TableDefinition<(u64, u128), ()> = TableDefinition::new("expiry");
const QUEUES: TableDefinition<(&str, u64), (u128, u8, u64)> = TableDefinition::new("queues");
const QUEUE_META: TableDefinition<&str, (u64, u64, u64)> = TableDefinition::new("queue_meta");
const BLOBS: TableDefinition<(u8, &str), &[u8]> = TableDefinition::new("blobs");
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
const VERSION_KEY: &str = "format_version";

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
}

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
        let dir = data_dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| open_error(dir, e))?;
        Self::open_file(dir.join(DEFAULT_FILE_NAME), limits)
    }

    /// Opens (or creates) the store file at `path`. A missing or empty file becomes a new
    /// store; anything else must be a store this version can read.
    ///
    /// # Errors
    /// [`StoreError::Open`] (naming the file) if it is unreadable or not a store,
    /// [`StoreError::NewerFormat`] if a newer mqgate wrote it.
    pub fn open_file(path: impl Into<PathBuf>, limits: StoreLimits) -> Result<Self> {
        let path = path.into();
        let db = Database::create(&path).map_err(|e| open_error(&path, e))?;
        let store = RedbStore { db, path, limits };
        store.check_format()?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the format version, writing it (and creating every table) in a new file.
    fn check_format(&self) -> Result<()> {
        let open = |e: &dyn Display| open_error(&self.path, e);
        let txn = self.db.begin_write().map_err(|e| open(&e))?;
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
                Some(_) => {}
                None if had_tables => return Err(open(&"tables but no format version")),
                None => {
                    meta.insert(VERSION_KEY, FORMAT_VERSION)
                        .map_err(|e| open(&e))?;
                }
            }
        }
        // Creating every table up front lets readers open them without a writer.
        open_write_tables(&txn).map_err(|e| open(&e))?;
        txn.commit().map_err(|e| open(&e))
    }

    fn read<T>(&self, f: impl FnOnce(&dyn ReadTables) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_read().map_err(io)?;
        let tables = open_tables!(txn);
        f(&tables)
    }

    /// One transaction: committed (durably) if `f` succeeds, rolled back if anything fails.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Tables) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_write().map_err(io)?;
        let out = f(&mut open_write_tables(&txn)?)?;
        txn.commit().map_err(io)?;
        Ok(out)
    }
}

impl_store!(RedbStore);

/// Read and write transactions open their tables with the same calls on different types.
macro_rules! open_tables {
    ($txn:expr) => {
        RedbTables {
            messages: $txn.open_table(MESSAGES).map_err(io)?,
            refs: $txn.open_table(REFS).map_err(io)?,
            expiry: $txn.open_table(EXPIRY).map_err(io)?,
            queues: $txn.open_table(QUEUES).map_err(io)?,
            queue_meta: $txn.open_table(QUEUE_META).map_err(io)?,
            blobs: $txn.open_table(BLOBS).map_err(io)?,
            retained: $txn.open_table(RETAINED).map_err(io)?,
        }
    };
}
use open_tables;

type WriteTables<'t> = RedbTables<
    Table<'t, u128, &'static [u8]>,
    Table<'t, (u128, &'static str, u64), ()>,
    Table<'t, (u64, u128), ()>,
    Table<'t, (&'static str, u64), (u128, u8, u64)>,
    Table<'t, &'static str, (u64, u64, u64)>,
    Table<'t, (u8, &'static str), &'static [u8]>,
    Table<'t, &'static str, &'static [u8]>,
>;

fn open_write_tables(txn: &redb::WriteTransaction) -> Result<WriteTables<'_>> {
    Ok(open_tables!(txn))
}

/// The tables, read-only or writable: reads are written once for both.
struct RedbTables<M, R, E, Q, QM, B, RT> {
    messages: M,
    refs: R,
    expiry: E,
    queues: Q,
    queue_meta: QM,
    blobs: B,
    retained: RT,
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

fn slot_from(table: &'static str, (message, qos, size): (u128, u8, u64)) -> Result<Slot> {
    Ok(Slot {
        message: MessageId(message),
        qos: QoS::from_u8(qos).ok_or_else(|| StoreError::corrupt(table, "QoS is not 0, 1 or 2"))?,
        size,
    })
}

impl<M, R, E, Q, QM, B, RT> ReadTables for RedbTables<M, R, E, Q, QM, B, RT>
where
    M: ReadableTable<u128, &'static [u8]>,
    R: ReadableTable<(u128, &'static str, u64), ()>,
    E: ReadableTable<(u64, u128), ()>,
    Q: ReadableTable<(&'static str, u64), (u128, u8, u64)>,
    QM: ReadableTable<&'static str, (u64, u64, u64)>,
    B: ReadableTable<(u8, &'static str), &'static [u8]>,
    RT: ReadableTable<&'static str, &'static [u8]>,
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
        Ok(match self.queue_meta.get(client).map_err(io)? {
            Some(v) => {
                let (next_seq, len, bytes) = v.value();
                QueueMeta {
                    next_seq,
                    len,
                    bytes,
                }
            }
            None => QueueMeta::default(),
        })
    }
    fn slots(&self, client: &str, from: u64, max: usize) -> Result<Vec<(u64, Slot)>> {
        let range = self.queues.range((client, from)..=(client, u64::MAX));
        let mut out = Vec::new();
        for entry in range.map_err(io)?.take(max) {
            let (key, value) = entry.map_err(io)?;
            out.push((key.value().1, slot_from("queues", value.value())?));
        }
        Ok(out)
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
        Ok(StoreStats {
            messages: self.messages.len().map_err(io)?,
            queued: self.queues.len().map_err(io)?,
            sessions: u64::try_from(sessions.count()).unwrap_or(u64::MAX),
            retained: self.retained.len().map_err(io)?,
        })
    }
}

impl Tables for WriteTables<'_> {
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
        Ok(Some(decode_message(old.value())?.published_at_ms))
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
        match meta {
            Some(m) => self.queue_meta.insert(client, (m.next_seq, m.len, m.bytes)),
            None => self.queue_meta.remove(client),
        }
        .map_err(io)?;
        Ok(())
    }
    fn push_slot(&mut self, client: &str, seq: u64, slot: Slot) -> Result<()> {
        let value = (slot.message.0, slot.qos as u8, slot.size);
        self.queues.insert((client, seq), value).map_err(io)?;
        Ok(())
    }
    fn take_slot(&mut self, client: &str, seq: u64) -> Result<Option<Slot>> {
        match self.queues.remove((client, seq)).map_err(io)? {
            Some(old) => slot_from("queues", old.value()).map(Some),
            None => Ok(None),
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
}
