//! Write-through of durable state: the group-commit writer, and what a persistent session
//! saves and when.
//!
//! ```text
//!   connection tasks ── submit(ops) -> Ticket ──▶ pending (one Vec, one short lock)
//!                                                    │ the writer thread takes all of it
//!                                                    ▼
//!                                    Store::apply(&[Op])   (one transaction, one fsync)
//!                                                    │
//!   wait(ticket).await ◀── done: watch<last ticket committed> ──┘
//! ```
//!
//! - One submission's ops are never split between transactions, and submissions commit in
//!   the order they were made. The writer takes everything waiting at once, so under load a
//!   commit carries the ops of many connections: throughput grows with the batch instead of
//!   being one fsync per message.
//! - A publisher submits the `Enqueue`s of a QoS 1 or 2 message for every persistent
//!   receiver *before* handing the message to any of them (see `Router::route`): whatever
//!   a receiver later submits about that message (its `Dequeue` when the message goes in
//!   flight) is therefore ordered after the enqueue. It sends the PUBACK or PUBREC only
//!   after [`Persist::wait`] returned `Ok`.
//! - A persistent session saves its record (subscriptions, in-flight packet ids, inbound
//!   QoS 2 ids awaiting PUBREL) whenever it changed, and waits for that commit before
//!   writing to its client ([`Saved::sync`]): a QoS 2 PUBLISH goes out only with its packet
//!   id on disk, so a resumed client gets it again with the same id and never as a new
//!   message; a SUBACK only once the subscription is durable; a PUBCOMP only once the id
//!   left the awaiting set.
//! - Non-persistent traffic submits nothing and waits for nothing.
//! - A batch the store refuses is retried submission by submission, so one bad op fails
//!   only its own submitter (its connection closes without the acknowledgement), never the
//!   others; every failure is logged and counted in `store_errors`.

mod session;
mod writer;

pub(crate) use session::{committed, enqueue_op, enqueue_retained, PendingAcks, Saved};
pub(crate) use writer::{Persist, StoreFailed, Ticket};
