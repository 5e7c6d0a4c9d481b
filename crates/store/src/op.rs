//! [`Op`]: every mutation a store accepts, and the small types its reads return.

use std::sync::Arc;

use mqgate_auth::{
    ConnectBlack, CustomIdentity, CustomPermission, DeviceCredential, GroupRecord, TokenRecord,
};
use mqgate_codec::{ByteStr, QoS};
use mqgate_session::{Message, MessageId, QueueBounds, SessionConfig, SessionRecord};

/// One mutation. A slice of them goes to [`Store::apply`](crate::Store::apply) and commits
/// as one transaction: all or nothing.
#[derive(Debug, Clone)]
pub enum Op {
    /// Appends a message to a client's offline queue, at the end. The message body is stored
    /// once however many queues refer to it, and removed when the last one lets go. If the
    /// queue then exceeds the store's [`StoreLimits`], its oldest entries are dropped.
    Enqueue {
        /// The queue's client id.
        client_id: ByteStr,
        /// The message; share one `Arc` between the ops of a fan-out.
        message: Arc<Message>,
        /// The QoS it will be delivered at.
        qos: QoS,
        /// A shared subscription picked the client for this copy (see
        /// [`Session::handle_shared_delivery`](mqgate_session::Session::handle_shared_delivery));
        /// kept with the entry, so a plain and a shared copy of one message are two entries.
        shared: bool,
    },
    /// Removes every entry of the client's queue up to and including sequence number
    /// `through_seq` (from [`QueuedEntry::seq`]): they were delivered or moved in flight.
    Ack {
        /// The queue's client id.
        client_id: ByteStr,
        /// The last sequence number removed.
        through_seq: u64,
    },
    /// Removes the oldest entry of `message` with the mark `shared` from a client's queue,
    /// wherever it is in the queue (the session moved it in flight, or a client acknowledged
    /// out of order). No such entry, no change: the op is idempotent.
    Dequeue {
        /// The queue's client id.
        client_id: ByteStr,
        /// The message whose entry goes.
        message: mqgate_session::MessageId,
        /// Which copy: a shared subscription's, or a plain one.
        shared: bool,
    },
    /// How much of a client's queue is in flight: QoS 1 messages its session sent from the
    /// queue that stay in it until they are acknowledged (and leave it with a
    /// [`Dequeue`](Op::Dequeue)). They are the queue's oldest entries; they do not count
    /// against its [`StoreLimits`], and trimming a full queue skips them. Replaces the
    /// figures sent before. Kept in memory only: after a restart nothing is in flight, and
    /// those messages are queued again.
    InFlight {
        /// The queue's client id.
        client_id: ByteStr,
        /// Entries in flight.
        messages: u64,
        /// Their bytes (topic + payload).
        bytes: u64,
    },
    /// Saves a persistent session: subscriptions, in-flight and awaiting-PUBREL state,
    /// packet id counter. `record.queue` is NOT stored: the offline queue is the store's own
    /// (kept by `Enqueue` and `Ack`), and [`Store::load_sessions`](crate::Store::load_sessions)
    /// fills it in.
    SaveSession {
        /// The session's state, messages by id.
        record: SessionRecord,
        /// The bodies of its in-flight messages that are not yet released (every
        /// `InFlightStage::Published` entry); the op fails with
        /// [`StoreError::MissingMessage`](crate::StoreError::MissingMessage) if one is missing.
        messages: Vec<Arc<Message>>,
    },
    /// Forgets a session and its queue (cleanSession=1, or the session expired).
    RemoveSession(ByteStr),
    /// Sets the retained message of `message.topic`.
    SetRetained(Arc<Message>),
    /// Clears the retained message of a topic (a retained PUBLISH with an empty payload).
    ClearRetained(ByteStr),
    /// Registers or replaces a group.
    PutGroup(GroupRecord),
    /// Removes a group by id.
    RemoveGroup(String),
    /// Stores or replaces a token record.
    PutToken(TokenRecord),
    /// Forgets a token.
    RemoveToken(String),
    /// Stores or replaces the device credential of `client_id`.
    PutDeviceCredential(DeviceCredential),
    /// Removes the device credential of a client id.
    RemoveDeviceCredential(String),
    /// Stores or replaces a custom identity (keyed by
    /// [`IdentityKey::to_store_key`](mqgate_auth::IdentityKey::to_store_key)).
    PutCustomIdentity(CustomIdentity),
    /// Removes a custom identity by its store key.
    RemoveCustomIdentity(String),
    /// Stores or replaces a custom permission (keyed by
    /// [`PermissionKey::to_store_key`](mqgate_auth::PermissionKey::to_store_key)).
    PutCustomPermission(CustomPermission),
    /// Removes a custom permission by its store key.
    RemoveCustomPermission(String),
    /// Puts a client id on the connect blacklist.
    PutConnectBlack(ConnectBlack),
    /// Takes a client id off the connect blacklist.
    RemoveConnectBlack(String),
    /// Stores the MQTT 5 will of a client that waits for its Will Delay Interval, replacing
    /// the client's earlier one.
    PutWill(StoredWill),
    /// Forgets the waiting will of `client_id` if it is still the one with `id` (a newer one
    /// of the same client stays): it was published, or its session resumed.
    RemoveWill {
        /// The client that left it.
        client_id: String,
        /// [`StoredWill::id`] of the will to forget.
        id: MessageId,
    },
}

/// An MQTT 5 will waiting for its Will Delay Interval, stored so that a restart publishes it
/// when it is due (or at once, when it fell due while the broker was down) instead of
/// losing it.
///
/// ```
/// use mqgate_session::MessageId;
/// use mqgate_store::{MemoryStore, Op, Store, StoreLimits, StoredWill};
/// let store = MemoryStore::with_limits(StoreLimits::default());
/// let will = StoredWill {
///     client_id: "GID_a@@@1".into(), id: MessageId(7), topic: "dev/gone".into(),
///     payload: bytes::Bytes::from_static(b"offline"), qos: 1, retain: false,
///     properties: bytes::Bytes::new(), expiry_s: None, due_at_ms: 1_000, not_for_origin: false,
/// };
/// store.apply(&[Op::PutWill(will.clone())])?;
/// assert_eq!(store.load_wills()?, [will]);
/// // Another will's id leaves it in place; its own removes it.
/// store.apply(&[Op::RemoveWill { client_id: "GID_a@@@1".into(), id: MessageId(8) }])?;
/// assert_eq!(store.load_wills()?.len(), 1);
/// store.apply(&[Op::RemoveWill { client_id: "GID_a@@@1".into(), id: MessageId(7) }])?;
/// assert!(store.load_wills()?.is_empty());
/// # Ok::<(), mqgate_store::StoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredWill {
    /// The client that left it (one waiting will per client).
    pub client_id: String,
    /// This will's identity, so a late removal cannot take a newer will of the client.
    pub id: MessageId,
    /// The will topic.
    pub topic: String,
    /// The will payload.
    pub payload: bytes::Bytes,
    /// The will QoS (0, 1 or 2).
    pub qos: u8,
    /// The will's RETAIN flag.
    pub retain: bool,
    /// Its MQTT 5 properties forwarded with the message, in their wire encoding.
    pub properties: bytes::Bytes,
    /// Its Message Expiry Interval in seconds, counted from when it is published.
    pub expiry_s: Option<u32>,
    /// When it is due (wall clock, ms since the epoch).
    pub due_at_ms: u64,
    /// The session that left it does not get it (every subscription of its that matches
    /// the topic has MQTT 5's No Local).
    #[serde(default)]
    pub not_for_origin: bool,
}

/// Queue limits a store applies on every append and in its expiry sweep; by default those
/// of [`SessionConfig::default`] (1000 messages, 16 MiB, 3 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most entries per queue; the oldest go first.
    pub max_queued_messages: u64,
    /// Most bytes (topic + payload) per queue; the oldest go first.
    pub max_queued_bytes: u64,
    /// Messages older than this (by `published_at_ms`) are removed by
    /// [`Store::sweep_expired`](crate::Store::sweep_expired).
    pub message_ttl_ms: u64,
    /// Other bounds for the queues of the client ids that start with a prefix (a broker's
    /// own queues, which may hold far more than a device's); `None`: every queue has the
    /// bounds above.
    pub prefixed: Option<(&'static str, QueueBounds)>,
}

impl From<&SessionConfig> for StoreLimits {
    fn from(config: &SessionConfig) -> Self {
        StoreLimits {
            max_queued_messages: config.max_queued_messages.try_into().unwrap_or(u64::MAX),
            max_queued_bytes: config.max_queued_bytes.try_into().unwrap_or(u64::MAX),
            message_ttl_ms: config.message_ttl_ms,
            prefixed: None,
        }
    }
}

impl StoreLimits {
    /// The bounds of one stored queue (the session crate's rule).
    pub fn queue_bounds(&self) -> QueueBounds {
        QueueBounds {
            max_messages: self.max_queued_messages,
            max_bytes: self.max_queued_bytes,
        }
    }

    /// The bounds of `client`'s stored queue: [`prefixed`](Self::prefixed)'s when its id
    /// starts with that prefix, [`queue_bounds`](Self::queue_bounds) otherwise.
    ///
    /// ```
    /// use mqgate_session::QueueBounds;
    /// use mqgate_store::StoreLimits;
    /// let wide = QueueBounds { max_messages: 1_000_000, max_bytes: 1 << 30 };
    /// let limits = StoreLimits { prefixed: Some(("$own/", wide)), ..StoreLimits::default() };
    /// assert_eq!(limits.queue_bounds_of("$own/orders"), wide);
    /// assert_eq!(limits.queue_bounds_of("GID_a@@@1"), limits.queue_bounds());
    /// ```
    pub fn queue_bounds_of(&self, client: &str) -> QueueBounds {
        match self.prefixed {
            Some((prefix, bounds)) if client.starts_with(prefix) => bounds,
            _ => self.queue_bounds(),
        }
    }
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits::from(&SessionConfig::default())
    }
}

/// One entry of an offline queue, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEntry {
    /// Its position in the queue: increasing, never reused for that client.
    pub seq: u64,
    /// The message.
    pub message: Arc<Message>,
    /// The QoS it will be delivered at.
    pub qos: QoS,
    /// A shared subscription's copy (see [`Op::Enqueue`]).
    pub shared: bool,
}

/// Size of one offline queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Entries.
    pub messages: u64,
    /// Topic plus payload bytes of those entries.
    pub bytes: u64,
}

/// A saved session as start-up needs it, without reading its queue: the record (its `queue`
/// empty), the queue's counters, and the bodies of the messages in flight (those a resume
/// sends again). See [`Store::load_session_heads`](crate::Store::load_session_heads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The record, `queue` left empty.
    pub record: SessionRecord,
    /// Length and bytes of the client's queue in the store.
    pub queue: QueueStats,
    /// Bodies of the in-flight messages not yet released, in the record's order.
    pub inflight: Vec<Arc<Message>>,
}

/// What a store holds, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Message bodies (each stored once, however many queues refer to it).
    pub messages: u64,
    /// Queue entries over all clients.
    pub queued: u64,
    /// Saved sessions.
    pub sessions: u64,
    /// Retained messages.
    pub retained: u64,
}
