//! Write-through of durable state: the group-commit writer, what a persistent session saves
//! and when, and the restore at start-up.
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

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mqgate_store::restore_sessions;

use crate::clock::unix_time_ms;
use crate::shared::Shared;

pub(crate) use session::{committed, enqueue_op, enqueue_retained, PendingAcks, Saved};
pub(crate) use writer::{Persist, Ticket};

/// Most messages the expiry sweep handles per transaction.
const SWEEP_BATCH: usize = 1024;
/// Most sweep transactions per round, so one round never runs unbounded.
const SWEEP_ROUNDS: usize = 64;

/// Brings back what the store holds, before any listener opens: persistent sessions
/// (offline, in the registry) with their subscriptions (in the trie) and queues, and the
/// retained messages. A session whose record does not restore is logged and skipped.
///
/// # Errors
/// The store could not be read.
pub(crate) fn restore(shared: &Shared) -> Result<(), mqgate_store::StoreError> {
    let store = &shared.store;
    let router = &shared.router;
    let sessions = restore_sessions(store.as_ref(), shared.session_config, unix_time_ms())?;
    let (mut restored, mut skipped) = (0usize, 0usize);
    for session in sessions {
        match session {
            Ok(session) => {
                let client: Arc<str> = Arc::from(session.client_id().as_str());
                for subscription in session.subscriptions() {
                    if router
                        .subscribe(&client, &subscription.filter, subscription.qos)
                        .is_none()
                    {
                        tracing::warn!(%client, filter = %subscription.filter, "stored subscription not restored");
                    }
                }
                router.registry.insert_offline(client, Box::new(session));
                restored += 1;
            }
            Err(error) => {
                tracing::warn!(%error, "stored session not restored");
                skipped += 1;
            }
        }
    }
    let retained = store.load_retained()?;
    let retained_count = retained.len();
    for message in retained {
        router.restore_retained(message);
    }
    tracing::info!(
        sessions = restored,
        skipped,
        retained = retained_count,
        "durable state restored"
    );
    Ok(())
}

/// How often the sweep runs: a quarter of the message TTL, between 100 ms and a minute (so
/// an expired message stays on disk at most a quarter TTL longer, and a 3-day TTL costs one
/// small transaction a minute).
pub(crate) fn sweep_interval(message_ttl_ms: u64) -> Duration {
    Duration::from_millis((message_ttl_ms / 4).clamp(100, 60_000))
}

/// Expires old messages from the store every `every`, in bounded batches, until shutdown.
pub(crate) async fn sweep_loop(shared: Arc<Shared>, every: Duration) {
    let mut ticker = crate::shared::Ticker::new(&shared, every);
    while ticker.next().await {
        let store = shared.store.clone();
        let metrics = shared.metrics.clone();
        let swept = tokio::task::spawn_blocking(move || {
            let mut total = 0;
            for _ in 0..SWEEP_ROUNDS {
                match store.sweep_expired(unix_time_ms(), SWEEP_BATCH) {
                    Ok(n) => {
                        total += n;
                        if n < SWEEP_BATCH {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "expiry sweep failed");
                        metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            total
        })
        .await
        .unwrap_or(0);
        if swept > 0 {
            tracing::info!(messages = swept, "expired messages swept from the store");
        }
    }
}
