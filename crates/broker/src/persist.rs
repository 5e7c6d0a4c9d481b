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

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mqgate_codec::{ByteStr, PacketId, QoS};
use mqgate_session::{InFlightStage, InboundToken, Message, Session, SessionRecord};
use mqgate_store::{restore_sessions, Op, Store};
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::clock::unix_time_ms;
use crate::close::CloseReason;
use crate::shared::Shared;
use crate::Metrics;

/// A submission's place in the commit order: it is durable once the writer's progress
/// reaches it.
pub(crate) type Ticket = u64;

/// Failed tickets remembered for their waiters; older failures are forgotten (their waiters
/// look within microseconds of the failure).
const FAILED_MEMORY: usize = 4096;
/// Most messages the expiry sweep handles per transaction.
const SWEEP_BATCH: usize = 1024;
/// Most sweep transactions per round, so one round never runs unbounded.
const SWEEP_ROUNDS: usize = 64;

/// Ops waiting for the writer.
#[derive(Default)]
struct Pending {
    ops: Vec<Op>,
    /// (end index in `ops`, ticket) of each submission, in order.
    bounds: Vec<(usize, Ticket)>,
    next: Ticket,
    closed: bool,
}

struct Inner {
    store: Arc<dyn Store>,
    pending: Mutex<Pending>,
    wake: Condvar,
    done: watch::Sender<Ticket>,
    failed: Mutex<VecDeque<Ticket>>,
    metrics: Arc<Metrics>,
}

/// The store could not commit a submission; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct StoreFailed(pub(crate) String);

/// The group-commit writer: a dedicated thread applying batches to the store.
pub(crate) struct Persist {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Persist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persist").finish_non_exhaustive()
    }
}

impl Persist {
    /// Starts the writer thread over `store`.
    pub(crate) fn start(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (done, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            store,
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            done,
            failed: Mutex::new(VecDeque::new()),
            metrics,
        });
        let writer = inner.clone();
        std::thread::Builder::new()
            .name("mqgate-store".into())
            .spawn(move || write_loop(&writer))?;
        Ok(Persist { inner })
    }

    /// Queues `ops` (drained) as one submission; `None` when there were none.
    pub(crate) fn submit(&self, ops: &mut Vec<Op>) -> Option<Ticket> {
        if ops.is_empty() {
            return None;
        }
        let mut pending = self.inner.pending.lock();
        pending.ops.append(ops);
        pending.next += 1;
        let ticket = pending.next;
        let end = pending.ops.len();
        pending.bounds.push((end, ticket));
        drop(pending);
        self.inner.wake.notify_one();
        Some(ticket)
    }

    /// Resolves once the submission of `ticket` committed.
    ///
    /// # Errors
    /// The store refused it, or the writer is gone.
    pub(crate) async fn wait(&self, ticket: Ticket) -> Result<(), StoreFailed> {
        let mut done = self.inner.done.subscribe();
        if done.wait_for(|d| *d >= ticket).await.is_err() {
            return Err(StoreFailed("the store writer stopped".into()));
        }
        self.check(ticket)
    }

    /// `Err` if the (finished) submission of `ticket` was refused.
    fn check(&self, ticket: Ticket) -> Result<(), StoreFailed> {
        if self.inner.failed.lock().contains(&ticket) {
            return Err(StoreFailed(format!("the store refused write {ticket}")));
        }
        Ok(())
    }

    /// The last ticket whose commit finished (successfully or not: [`wait`](Self::wait) says).
    pub(crate) fn done(&self) -> Ticket {
        *self.inner.done.borrow()
    }

    /// Waits (at most `limit`) until everything submitted so far committed.
    pub(crate) async fn flush(&self, limit: Duration) {
        let last = self.inner.pending.lock().next;
        if tokio::time::timeout(limit, self.wait(last)).await.is_err() {
            tracing::warn!("store writes still pending after {limit:?}");
        }
    }
}

impl Drop for Persist {
    fn drop(&mut self) {
        self.inner.pending.lock().closed = true;
        self.inner.wake.notify_one();
    }
}

/// The writer thread: takes everything pending, applies it as one transaction, publishes
/// the progress. Ends once closed and drained.
fn write_loop(inner: &Inner) {
    let mut ops = Vec::new();
    let mut bounds = Vec::new();
    loop {
        {
            let mut pending = inner.pending.lock();
            while pending.ops.is_empty() && !pending.closed {
                inner.wake.wait(&mut pending);
            }
            if pending.ops.is_empty() {
                return;
            }
            std::mem::swap(&mut pending.ops, &mut ops);
            std::mem::swap(&mut pending.bounds, &mut bounds);
        }
        if let Err(error) = inner.store.apply(&ops) {
            tracing::warn!(%error, ops = ops.len(), "store batch failed; retrying its submissions one by one");
            let mut start = 0;
            for &(end, ticket) in &bounds {
                let Some(part) = ops.get(start..end) else {
                    break;
                };
                if let Err(error) = inner.store.apply(part) {
                    tracing::error!(%error, ticket, "store write failed; its acknowledgements are not sent");
                    inner.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                    let mut failed = inner.failed.lock();
                    if failed.len() >= FAILED_MEMORY {
                        failed.pop_front();
                    }
                    failed.push_back(ticket);
                }
                start = end;
            }
        }
        inner.metrics.store_commits.fetch_add(1, Ordering::Relaxed);
        if let Some(&(_, last)) = bounds.last() {
            inner.done.send_replace(last);
        }
        ops.clear();
        bounds.clear();
    }
}

/// The `Enqueue` of one routed message for one receiver, if it must be durable: a QoS 1 or 2
/// delivery to a persistent session.
pub(crate) fn enqueue_op(client: &str, message: &Arc<Message>, granted: QoS) -> Option<Op> {
    let qos = message.qos.min(granted);
    if qos == QoS::AtMostOnce {
        return None;
    }
    let client_id = ByteStr::try_from(client).ok()?;
    Some(Op::Enqueue {
        client_id,
        message: message.clone(),
        qos,
    })
}

/// Makes the retained messages a new subscription of a persistent session receives as
/// durable as routed ones: enqueued in the store (and committed) before the session takes
/// them, so one that waits in the session's queue survives a crash too.
///
/// # Errors
/// [`CloseReason::Store`] when the store refused the write.
pub(crate) async fn enqueue_retained(
    shared: &Shared,
    session: &Session,
    retained: &[(Arc<Message>, QoS)],
) -> Result<(), CloseReason> {
    if !session.is_persistent() {
        return Ok(());
    }
    let client = session.client_id();
    let mut ops: Vec<Op> = retained
        .iter()
        .filter_map(|(message, granted)| enqueue_op(client, message, *granted))
        .collect();
    committed(shared, shared.router.persist.submit(&mut ops)).await
}

/// What a persistent session last saved, to save again only what changed.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    record: Option<Box<SessionRecord>>,
    /// Inbound QoS 2 ids saved as awaiting PUBREL before the session itself counts them so
    /// (their message is still being made safe): kept in every save until it does.
    routing: Vec<PacketId>,
}

impl Saved {
    /// Pushes the ops that save `session` if its persistent state changed since the last
    /// save (with `received`, an inbound QoS 2 packet id about to be acknowledged, counted as
    /// awaiting PUBREL already). Entries newly in flight leave the stored queue in the same
    /// transaction, so a restore never has a message both queued and in flight.
    pub(crate) fn ops(&mut self, session: &Session, received: Option<PacketId>, ops: &mut Vec<Op>) {
        if !session.is_persistent() {
            return;
        }
        let mut record = session.record_without_queue();
        self.routing
            .retain(|id| record.awaiting_pubrel.binary_search(id).is_err());
        self.routing.extend(received);
        for &id in &self.routing {
            if let Err(at) = record.awaiting_pubrel.binary_search(&id) {
                record.awaiting_pubrel.insert(at, id);
            }
        }
        if let Some(old) = &self.record {
            if old.subscriptions == record.subscriptions
                && old.inflight == record.inflight
                && old.awaiting_pubrel == record.awaiting_pubrel
            {
                return;
            }
        }
        for entry in &record.inflight {
            let new = self
                .record
                .as_ref()
                .is_none_or(|old| !old.inflight.iter().any(|o| o.message == entry.message));
            if new && entry.stage == InFlightStage::Published {
                ops.push(Op::Dequeue {
                    client_id: record.client_id.clone(),
                    message: entry.message,
                });
            }
        }
        ops.push(Op::SaveSession {
            record: record.clone(),
            messages: session.inflight_messages().cloned().collect(),
        });
        self.record = Some(Box::new(record));
    }

    /// Saves `session` if it changed and waits for the commit: call before writing to the
    /// client.
    ///
    /// # Errors
    /// [`CloseReason::Store`] when the store refused the write.
    pub(crate) async fn sync(
        &mut self,
        session: &Session,
        shared: &Shared,
    ) -> Result<(), CloseReason> {
        let mut ops = Vec::new();
        self.ops(session, None, &mut ops);
        committed(shared, shared.router.persist.submit(&mut ops)).await
    }
}

/// Inbound QoS 1 and 2 messages routed but not yet acknowledged because their store writes
/// have not committed, in the order they were routed (tickets never decrease). The
/// connection keeps reading and routing while commits are pending, so its next messages go
/// into the next commit instead of waiting for this one; each commit then acknowledges
/// everything it covered at once (commits are ordered: one covers all earlier tickets).
#[derive(Debug, Default)]
pub(crate) struct PendingAcks {
    waiting: VecDeque<(Ticket, InboundToken)>,
}

/// Most acknowledgements a connection holds back before it stops reading its socket: a
/// client that never waits for them cannot grow this without bound.
const MAX_PENDING_ACKS: usize = 4096;

impl PendingAcks {
    /// The message of `token` is routed; `ticket` is the commit it waits for, if any.
    /// Without one it is acknowledged at once (the session still sends acknowledgements in
    /// the order of the PUBLISHes).
    pub(crate) fn push(
        &mut self,
        token: Option<InboundToken>,
        ticket: Option<Ticket>,
        session: &mut Session,
    ) {
        let Some(token) = token else { return };
        // PUBACKs go out in the order the PUBLISHes came (MQTT-4.6.0-2): one that needs no
        // commit of its own still waits behind those that do.
        match ticket.or_else(|| self.waiting.back().map(|(t, _)| *t)) {
            None => session.inbound_done(token),
            Some(ticket) => self.waiting.push_back((ticket, token)),
        }
    }

    /// Whether acknowledgements wait for a commit.
    pub(crate) fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Whether the connection may read more PUBLISHes.
    pub(crate) fn has_room(&self) -> bool {
        self.waiting.len() < MAX_PENDING_ACKS
    }

    /// Resolves when the oldest waiting message's commit is done (cancel-safe).
    ///
    /// # Errors
    /// [`CloseReason::Store`] when the store refused it.
    pub(crate) async fn next_commit(&self, shared: &Shared) -> Result<(), CloseReason> {
        let ticket = self.waiting.front().map(|(t, _)| *t);
        committed(shared, ticket).await
    }

    /// Acknowledges every waiting message whose commit is done.
    ///
    /// # Errors
    /// [`CloseReason::Store`] when the store refused one of those commits.
    pub(crate) fn take_committed(
        &mut self,
        session: &mut Session,
        shared: &Shared,
    ) -> Result<(), CloseReason> {
        let persist = &shared.router.persist;
        let done = persist.done();
        let mut checked = None;
        while let Some(&(ticket, token)) = self.waiting.front() {
            if ticket > done {
                break;
            }
            if checked != Some(ticket) {
                persist.check(ticket).map_err(|e| CloseReason::Store(e.0))?;
                checked = Some(ticket);
            }
            self.waiting.pop_front();
            session.inbound_done(token);
        }
        Ok(())
    }

    /// Waits for the commit every waiting message needs, then acknowledges them all.
    ///
    /// # Errors
    /// [`CloseReason::Store`] when the store refused a write: nothing more is acknowledged.
    pub(crate) async fn release(
        &mut self,
        session: &mut Session,
        shared: &Shared,
    ) -> Result<(), CloseReason> {
        let last = self.waiting.back().map(|(t, _)| *t);
        committed(shared, last).await?;
        for (_, token) in self.waiting.drain(..) {
            session.inbound_done(token);
        }
        Ok(())
    }
}

/// Waits for `ticket`'s commit, if there is one.
///
/// # Errors
/// [`CloseReason::Store`] when the store refused the write.
pub(crate) async fn committed(shared: &Shared, ticket: Option<Ticket>) -> Result<(), CloseReason> {
    let persist = &shared.router.persist;
    let result = match ticket {
        None => return Ok(()),
        Some(ticket) if persist.done() >= ticket => persist.check(ticket),
        // Boxed: the wait's state would otherwise be part of every connection's future.
        Some(ticket) => Box::pin(persist.wait(ticket)).await,
    };
    result.map_err(|e| CloseReason::Store(e.0))
}

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
    let mut shutdown = shared.shutdown.clone();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
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
