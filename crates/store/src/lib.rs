//! # mqgate-store
//!
//! What an MQTT broker must not forget across a crash: persistent sessions (subscriptions,
//! in-flight and awaiting-PUBREL state), per-client offline queues, retained messages, and
//! the registries the API manages (groups, tokens, device credentials, and the custom
//! authentication identities, permissions and connect blacklist).
//!
//! ## The contract
//!
//! ```text
//!   connection tasks ──ops──▶ writer (batches) ──apply(&[Op])──▶ Store ──Ok──▶ PUBACK / PUBREC
//!   start-up ◀── load_session_heads / load_retained / load_groups ... ── Store
//!   connection ◀── read_page (a window of an offline queue, off the async runtime) ── Store
//!   timer ──sweep_expired(now_ms, max)──▶ Store
//! ```
//!
//! - Every mutation is an [`Op`]; [`Store::apply`] commits a whole slice of them as one
//!   transaction, all or nothing. That is the group commit: the broker collects the writes
//!   of many connections and applies them together, so a durable store pays one fsync per
//!   batch, not per message. Once `apply` returns `Ok`, everything in it survives a crash:
//!   only then may the broker send the PUBACK (or PUBREC) of a message it enqueued.
//! - A message enqueued for many clients is stored once; each queue holds a reference, and
//!   the body goes when the last reference does.
//! - Queue limits ([`StoreLimits`], from the session's [`mqgate_session::SessionConfig`])
//!   are applied on every append (oldest dropped first) and by [`Store::sweep_expired`],
//!   which removes expired messages in bounded batches. Time is an argument: the store never
//!   reads a clock.
//! - Methods take `&self` and block: the broker calls them from a dedicated writer thread
//!   or `spawn_blocking`, never from an async task directly.
//! - Two implementations pass one test suite: [`MemoryStore`] (tests, ephemeral brokers)
//!   and [`RedbStore`] (the default: one redb file in a data directory, crash-safe
//!   transactions, a format version, and a clear error naming the file when it cannot be read).
//!
//! ```
//! use std::sync::Arc;
//! use mqgate_codec::{ByteStr, QoS};
//! use mqgate_session::{Message, MessageId};
//! use mqgate_store::{MemoryStore, Op, Store};
//!
//! let store = MemoryStore::new();
//! let message = Arc::new(Message::new(
//!     MessageId(1),
//!     ByteStr::from_static("shop/price"),
//!     bytes::Bytes::from_static(b"9.99"),
//!     QoS::AtLeastOnce,
//!     0,
//! ));
//! // One message for two offline clients: one transaction, one stored body.
//! let ops: Vec<Op> = ["GID_a@@@1", "GID_a@@@2"]
//!     .into_iter()
//!     .map(|client| Op::Enqueue {
//!         client_id: ByteStr::try_from(client).unwrap(),
//!         message: Arc::clone(&message),
//!         qos: QoS::AtLeastOnce,
//!         shared: false,
//!     })
//!     .collect();
//! store.apply(&ops)?; // now the PUBACK may go out
//! assert_eq!(store.stats()?.messages, 1);
//! let queued = store.read_queue("GID_a@@@2", 0, 10)?;
//! assert_eq!(queued[0].message, message);
//! store.apply(&[Op::Ack { client_id: ByteStr::from_static("GID_a@@@2"), through_seq: queued[0].seq }])?;
//! # Ok::<(), mqgate_store::StoreError>(())
//! ```
//!
#![doc = include_str!("rules.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;

use mqgate_auth::{
    ConnectBlack, CustomIdentity, CustomPermission, DeviceCredential, GroupRecord, TokenRecord,
};
use mqgate_session::{
    Message, MessageId, QueueCounters, QueuePage, QueueRead, Session, SessionConfig, SessionRecord,
};

pub mod codec;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod garbage;
mod memory;
mod op;
mod queue_index;
mod redb_store;
mod registry;
mod tables;

// The README's example runs as a doctest, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod restart_tests;
#[cfg(test)]
mod suite;

pub use error::StoreError;
pub use memory::MemoryStore;
pub use op::{Op, QueueStats, QueuedEntry, StoreLimits, StoreStats, StoredSession, StoredWill};
pub use redb_store::{
    Compaction, RedbOptions, RedbStore, DEFAULT_CACHE_BYTES, DEFAULT_COMPACT_CHECK_MAX_BYTES,
    DEFAULT_DEFERRED_DELETES, DEFAULT_FILE_NAME, FORMAT_VERSION,
};
pub use registry::DurableRegistry;

/// Durable broker state. See the [crate documentation](crate) for the contract.
///
/// Implementations synchronise internally; every method may block on I/O.
pub trait Store: Send + Sync {
    /// Applies `ops` in order as one transaction. On `Ok` all of them are durable (as durable
    /// as the implementation is: [`MemoryStore`] lives only as long as the process); on `Err`
    /// none of them happened.
    ///
    /// # Errors
    /// [`StoreError::MissingMessage`] for a session saved without an in-flight body, I/O or
    /// corruption errors from the backend.
    fn apply(&self, ops: &[Op]) -> Result<(), StoreError>;

    /// [`apply`](Self::apply), except that the backend may commit without waiting for the
    /// disk: the transaction is visible at once, but a crash before a later
    /// [`apply`](Self::apply) commits (which makes it durable too) may undo it. For writes
    /// whose loss only repeats work, such as the removal of acknowledged QoS 1 messages from
    /// a queue. By default it is [`apply`](Self::apply).
    ///
    /// ```
    /// use mqgate_store::{MemoryStore, Op, Store};
    /// use mqgate_codec::ByteStr;
    /// let store = MemoryStore::new();
    /// let in_flight = Op::InFlight { client_id: ByteStr::from_static("c"), messages: 0, bytes: 0 };
    /// store.apply_lazily(&[in_flight])?;
    /// # Ok::<(), mqgate_store::StoreError>(())
    /// ```
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    fn apply_lazily(&self, ops: &[Op]) -> Result<(), StoreError> {
        self.apply(ops)
    }

    /// Removes the queue entries of messages older than the store's TTL at `now_ms`,
    /// handling at most `max` messages in one transaction so that a large backlog never
    /// stalls other writers. Returns how many messages it handled: call again while that
    /// equals `max`.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn sweep_expired(&self, now_ms: u64, max: usize) -> Result<usize, StoreError>;

    /// Deletes every message body that waits for deletion (nothing refers to it any more:
    /// see [`RedbOptions::deferred_deletes`]), so a store that stops leaves none behind. A
    /// broker calls it as it shuts down; a store that deletes bodies with their last
    /// reference has nothing to do (the default).
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn delete_unreferenced(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Every saved session, with `queue` filled from the client's offline queue, oldest first.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn load_sessions(&self) -> Result<Vec<SessionRecord>, StoreError>;

    /// Every saved session without reading its queue: the record, the queue's counters and
    /// the in-flight bodies. Start-up with it takes time in proportion to the sessions, not
    /// to the bytes queued.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn load_session_heads(&self) -> Result<Vec<StoredSession>, StoreError>;

    /// One page of a client's queue, as a session keeping its queue in the store asks for it
    /// ([`Session::poll_queue_read`]): up to `read.max` entries after `read.after_seq`, in
    /// order, leaving out the messages of `read.skip`.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn read_page(&self, client_id: &str, read: &QueueRead) -> Result<QueuePage, StoreError>;

    /// A stored message body, if some queue or session still refers to it.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn get_message(&self, id: MessageId) -> Result<Option<Arc<Message>>, StoreError>;

    /// Up to `max` entries of a client's offline queue with `seq >= from_seq`, in order.
    /// Pass the last entry's `seq + 1` to continue.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn read_queue(
        &self,
        client_id: &str,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<QueuedEntry>, StoreError>;

    /// Length and bytes of a client's offline queue.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn queue_stats(&self, client_id: &str) -> Result<QueueStats, StoreError>;

    /// Every retained message, in no particular order.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn load_retained(&self) -> Result<Vec<Arc<Message>>, StoreError>;

    /// Every group, in no particular order.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn load_groups(&self) -> Result<Vec<GroupRecord>, StoreError>;

    /// Every token record, in no particular order.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn load_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Every device credential, in no particular order.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn load_device_credentials(&self) -> Result<Vec<DeviceCredential>, StoreError>;

    /// Every custom identity, in no particular order.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn load_custom_identities(&self) -> Result<Vec<CustomIdentity>, StoreError>;

    /// Every custom permission, in no particular order.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn load_custom_permissions(&self) -> Result<Vec<CustomPermission>, StoreError>;

    /// Every client id on the connect blacklist, in no particular order.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn load_connect_blacklist(&self) -> Result<Vec<ConnectBlack>, StoreError>;

    /// Every MQTT 5 will waiting for its delay, in no particular order.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn load_wills(&self) -> Result<Vec<StoredWill>, StoreError>;

    /// Counts of what the store holds.
    ///
    /// # Errors
    /// I/O or corruption errors from the backend.
    fn stats(&self) -> Result<StoreStats, StoreError>;
}

/// Rebuilds every saved session as an offline, persistent [`Session`] whose queue stays in
/// the store ([`Session::restore_store_backed`]): nothing queued is read, only the records,
/// the queues' counters and the in-flight bodies; each session holds at most `window` queued
/// messages in memory once its client is back. A session whose record does not restore is
/// returned as its error, so the broker can log it and go on with the others.
///
/// # Errors
/// Errors of [`Store::load_session_heads`].
pub fn restore_sessions_in_store(
    store: &dyn Store,
    config: SessionConfig,
    window: usize,
    now: u64,
) -> Result<Vec<RestoredSession>, StoreError> {
    let sessions = store.load_session_heads()?;
    Ok(sessions
        .into_iter()
        .map(|stored| {
            let StoredSession {
                record,
                queue,
                inflight,
            } = stored;
            let queued = QueueCounters {
                messages: queue.messages,
                bytes: queue.bytes,
            };
            Session::restore_store_backed(
                record,
                |id| inflight.iter().find(|m| m.id == id).cloned(),
                config,
                window,
                queued,
                now,
            )
        })
        .collect())
}

/// The outcome of [`restore_sessions`] for one saved session.
pub type RestoredSession = Result<Session, mqgate_session::RestoreError>;

/// Rebuilds every saved session as an offline, persistent [`Session`] holding its whole
/// queue in memory, its messages looked up in the store (for an ephemeral broker or a tool;
/// a broker keeping queues on disk starts with [`restore_sessions_in_store`]); `now` applies the queue's limits and age as
/// [`Session::restore_with`] does. A session whose record does not restore is returned as
/// its error, so the broker can log it and go on with the others.
///
/// # Errors
/// Errors of [`Store::load_sessions`] and [`Store::get_message`].
pub fn restore_sessions(
    store: &dyn Store,
    config: SessionConfig,
    now: u64,
) -> Result<Vec<RestoredSession>, StoreError> {
    let mut restored = Vec::new();
    for record in store.load_sessions()? {
        let mut messages = std::collections::HashMap::new();
        for id in record.message_ids() {
            if let Some(message) = store.get_message(id)? {
                messages.insert(id, message);
            }
        }
        restored.push(Session::restore_with(
            record,
            |id| messages.get(&id).cloned(),
            config,
            now,
        ));
    }
    Ok(restored)
}
