//! # The store's rules, in prose
//!
//! ## What is durable, and when
//!
//! SPEC: "A message the broker has acknowledged for a persistent session is durable: it
//! survives a broker crash and restart (an embedded store is the default; no server to
//! install)." The store's side of that promise is [`Store::apply`](crate::Store::apply):
//! when it returns `Ok`, every [`Op`](crate::Op) in the slice is on disk ([`RedbStore`](crate::RedbStore)
//! commits with an fsync). The broker therefore sends the PUBACK (QoS 1) or PUBREC (QoS 2)
//! of a message bound for an offline persistent session only after the `apply` holding its
//! `Enqueue` returned.
//!
//! ## Group commit
//!
//! One fsync per message would cap throughput at the disk's sync rate. `apply` takes a slice
//! so a single writer can gather the ops of every connection that is waiting, commit them
//! together, and release all their acknowledgements at once. Latency grows by at most one
//! commit; throughput grows with the batch.
//!
//! ## Stored once, referenced many times
//!
//! A message enqueued for many sessions is one body plus one small reference per queue
//! (and per in-flight slot of a saved session). When the last reference goes, by `Ack`,
//! by a limit, by the sweep or by `RemoveSession`, the body is deleted in the same
//! transaction.
//!
//! ## Limits
//!
//! SPEC: "Limits are explicit and configurable: messages kept per client, bytes kept,
//! retention time." [`StoreLimits`](crate::StoreLimits) mirrors the session's
//! [`SessionConfig`](mqgate_session::SessionConfig) (defaults: 1000 messages, 16 MiB,
//! 3 days). A full queue drops its oldest entries to make room, the session's default
//! `DropOldest` policy; a broker that refuses instead does so before enqueueing. Expired
//! messages are removed by [`Store::sweep_expired`](crate::Store::sweep_expired) in batches
//! of a bounded size, so the sweep never holds the writer for long. An expired message still
//! in flight to a client keeps its body until that flight ends: the session needs it to
//! resend.
//!
//! ## Moving into flight
//!
//! [`Op::Dequeue`](crate::Op::Dequeue) removes one message's entry from a queue wherever it
//! is: the broker sends it with the `SaveSession` that records the message in flight, so
//! the message is never both queued and in flight in the store.
//!
//! ## Sessions and their queues
//!
//! A saved session record holds subscriptions, in-flight messages (by id) and the inbound
//! QoS 2 packet ids awaiting PUBREL, so a resumed client never receives a QoS 2 message
//! twice. Its `queue` field is not saved with it: the queue is the store's own, appended
//! to and acknowledged op by op, and filled back in by `load_sessions`.
//! [`restore_sessions`](crate::restore_sessions) turns the records back into sessions.
//!
//! ## Queues on disk: one log, an index in memory
//!
//! A group commit typically appends to hundreds of different queues. Kept as one B-tree
//! range per queue, that dirties (and rewrites, copy-on-write) about one leaf page per
//! message once the queues are deep, so throughput fell with depth (in the broker's durable
//! benchmark, 62 k messages/s at 100 per queue but 38.5 k at 500). So
//! [`RedbStore`](crate::RedbStore) keeps every queue entry in one `queue_log` table keyed by
//! a store-wide sequence number: `seq -> (client id, message id, QoS, size)`. Appends always
//! land at the end of the log, so a commit writes a handful of pages however many queues it
//! touches; bodies (`messages`), their references (`refs`, keyed by message id first) and
//! the expiry index are append-mostly too.
//!
//! What the log cannot answer cheaply, a client's entries in order and its length and bytes,
//! is an index in memory: per client its sequence numbers (8 bytes an entry) and counters.
//! It is rebuilt by one scan of the log when the store opens (about a second per million
//! queued messages) and changed inside each write transaction through an undo log, so a
//! transaction that fails leaves it exactly as the file is. Writers hold it exclusively for
//! the transaction, readers shared, so no reader sees the index of an uncommitted write.
//! The next sequence number is stored too, so no number is reused even after every queue
//! emptied. Acknowledging an entry deletes it from the log wherever it is; those deletions
//! are spread over the log, but they happen while a client drains, not on the publishing
//! path that the group commit serves. [`MemoryStore`](crate::MemoryStore) follows the same
//! rules with the same shared code, sequence numbers included.
//!
//! ## The file never grows without bound
//!
//! redb reuses the pages a commit frees, but never gives them back to the file system. When
//! a store opens and more than half of its file (and at least 1 MiB) is free space, it
//! compacts the file first ([`RedbStore::compaction`](crate::RedbStore::compaction) says
//! what it did). Compacting takes time in proportion to the data kept, which is then less
//! than the space freed; a broker that starts after its queues drained gets its disk back.
//!
//! ## Format and damage
//!
//! The redb file records a format version (2: the queue log; 1 kept a range per queue). A
//! newer version than this build knows fails to open with
//! [`StoreError::NewerFormat`](crate::StoreError::NewerFormat), an older one with
//! [`StoreError::OlderFormat`](crate::StoreError::OlderFormat) (there is no migration: drain
//! the old store with the mqgate that wrote it, or move the file away); a file that is not a
//! readable store fails with [`StoreError::Open`](crate::StoreError::Open), naming the file.
//! None of them ever falls back to an empty store: the broker refuses to start and the
//! operator decides.
