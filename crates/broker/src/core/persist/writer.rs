//! The group-commit writer: one thread applies everything submitted since its last commit
//! as one transaction and publishes how far it got; submitters await their ticket.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqgate_store::{Op, Store};
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::Metrics;

/// A submission's place in the commit order: it is durable once the writer's progress
/// reaches it.
pub(crate) type Ticket = u64;

/// Longest a commit that did not wait for the disk stays undurable (see [`write_loop`]):
/// what a crash can undo of the removals of acknowledged QoS 1 messages.
const LAZY_FOR: Duration = Duration::from_secs(1);

/// Failed tickets remembered for their waiters; older failures are forgotten (their waiters
/// look within microseconds of the failure).
const FAILED_MEMORY: usize = 4096;

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

    /// The ticket of the last submission so far (0: none yet): once it committed, so did
    /// everything submitted before this call.
    pub(crate) fn submitted(&self) -> Ticket {
        self.inner.pending.lock().next
    }

    /// `Err` if the (finished) submission of `ticket` was refused.
    pub(crate) fn check(&self, ticket: Ticket) -> Result<(), StoreFailed> {
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
    // When the oldest commit that did not wait for the disk was made (`None`: all did).
    let mut lazy_since: Option<Instant> = None;
    loop {
        let closed = {
            let mut pending = inner.pending.lock();
            while pending.ops.is_empty() && !pending.closed {
                match lazy_since {
                    None => inner.wake.wait(&mut pending),
                    Some(since) => {
                        let left = LAZY_FOR.saturating_sub(since.elapsed());
                        if left.is_zero() {
                            break;
                        }
                        inner.wake.wait_for(&mut pending, left);
                    }
                }
            }
            std::mem::swap(&mut pending.ops, &mut ops);
            std::mem::swap(&mut pending.bounds, &mut bounds);
            pending.closed
        };
        if ops.is_empty() {
            // Idle (or closing) after a commit that did not wait for the disk: an empty
            // durable commit makes it durable.
            if lazy_since.take().is_some() {
                inner.metrics.store_commits.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = inner.store.apply(&[]) {
                    tracing::warn!(%error, "store commit failed; acknowledged QoS 1 messages removed from queues since the last one may come again after a crash");
                    inner.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            if closed {
                return;
            }
            continue;
        }
        // Only the removal of acknowledged QoS 1 messages (and what is in flight, kept in
        // memory): a crash that undoes it delivers them again, as QoS 1 allows. The next
        // durable commit, at the latest `LAZY_FOR` later, makes it durable too.
        let lazy = ops
            .iter()
            .all(|op| matches!(op, Op::Dequeue { .. } | Op::InFlight { .. }))
            && lazy_since.is_none_or(|since| since.elapsed() < LAZY_FOR);
        let applied = if lazy {
            inner.store.apply_lazily(&ops)
        } else {
            inner.store.apply(&ops)
        };
        match (&applied, lazy) {
            (Ok(()), true) => {
                lazy_since.get_or_insert_with(Instant::now);
                inner
                    .metrics
                    .store_lazy_commits
                    .fetch_add(1, Ordering::Relaxed);
            }
            (Ok(()), false) => lazy_since = None,
            (Err(_), _) => {}
        }
        if let Err(error) = applied {
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

#[cfg(test)]
mod tests {
    use super::*;
    use mqgate_codec::ByteStr;
    use mqgate_store::RedbStore;

    async fn commit(persist: &Persist, mut ops: Vec<Op>) {
        let ticket = persist.submit(&mut ops).expect("a submission");
        persist.wait(ticket).await.expect("committed");
    }

    /// Removals of acknowledged QoS 1 messages alone commit without waiting for the disk;
    /// an idle writer then makes them durable within `LAZY_FOR`; anything else is durable.
    #[tokio::test]
    async fn removals_alone_commit_lazily_and_become_durable_when_idle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbStore::open(dir.path(), Default::default()).expect("store");
        let metrics = Arc::new(Metrics::default());
        let persist = Persist::start(Arc::new(store), metrics.clone()).expect("writer");
        let counts = || {
            let m = metrics.snapshot();
            (m.store_commits, m.store_lazy_commits)
        };
        let client = ByteStr::from_static("c");
        let message = Arc::new(mqgate_session::Message::new(
            mqgate_session::MessageId(1),
            ByteStr::from_static("t"),
            bytes::Bytes::from_static(b"x"),
            mqgate_codec::QoS::AtLeastOnce,
            0,
        ));
        let enqueue = Op::Enqueue {
            client_id: client.clone(),
            message,
            qos: mqgate_codec::QoS::AtLeastOnce,
            shared: false,
        };
        commit(&persist, vec![enqueue]).await;
        assert_eq!(counts(), (1, 0), "an enqueue is durable");
        let dequeue = Op::Dequeue {
            client_id: client.clone(),
            message: mqgate_session::MessageId(1),
            shared: false,
        };
        let in_flight = Op::InFlight {
            client_id: client,
            messages: 0,
            bytes: 0,
        };
        commit(&persist, vec![dequeue, in_flight]).await;
        assert_eq!(counts(), (2, 1), "a removal alone is not waited for");
        // Bounded: the idle writer's durable commit comes after `LAZY_FOR`.
        let deadline = Instant::now() + LAZY_FOR * 5;
        while counts().0 < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(counts(), (3, 1), "an empty durable commit followed");
    }
}
