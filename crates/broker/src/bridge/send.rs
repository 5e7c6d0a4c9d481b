//! Sending to RocketMQ with retry, shared by the bridge (outflow and status messages) and the
//! cluster (route messages): a [`Sender`] sends one message until RocketMQ takes it, and
//! [`Lanes`] keep the messages of one key in order (one send at a time per lane).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mqgate_rocketmq::RocketMessage;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::health::HealthState;
use super::RocketMqClient;
use crate::Metrics;

/// A message waiting for RocketMQ, and who waits for it (a publisher whose acknowledgement
/// waits for RocketMQ).
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) message: RocketMessage,
    /// Messages with the same key keep their order in RocketMQ (one queue).
    pub(crate) order_key: Option<String>,
    pub(crate) done: Option<oneshot::Sender<()>>,
}

/// Which counters of [`Metrics`] a [`Sender`] moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counters {
    /// `rocketmq_produced`, `rocketmq_buffered`, `rocketmq_retried`, `rocketmq_failed`.
    Bridge,
    /// `cluster_sent`, `cluster_buffered`, `cluster_retried`, `cluster_failed`.
    Cluster,
}

impl Counters {
    fn produced(self, metrics: &Metrics) -> &AtomicU64 {
        match self {
            Counters::Bridge => &metrics.rocketmq_produced,
            Counters::Cluster => &metrics.cluster_sent,
        }
    }

    /// Messages waiting for RocketMQ now (a gauge).
    pub(crate) fn buffered(self, metrics: &Metrics) -> &AtomicU64 {
        match self {
            Counters::Bridge => &metrics.rocketmq_buffered,
            Counters::Cluster => &metrics.cluster_buffered,
        }
    }

    fn retried(self, metrics: &Metrics) -> &AtomicU64 {
        match self {
            Counters::Bridge => &metrics.rocketmq_retried,
            Counters::Cluster => &metrics.cluster_retried,
        }
    }

    /// Messages given up.
    pub(crate) fn failed(self, metrics: &Metrics) -> &AtomicU64 {
        match self {
            Counters::Bridge => &metrics.rocketmq_failed,
            Counters::Cluster => &metrics.cluster_failed,
        }
    }
}

/// How long to wait for RocketMQ, and between attempts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryBounds {
    /// One send may take this long before it counts as failed.
    pub(crate) send_timeout: Duration,
    /// The first pause after a failure; doubles up to `max`.
    pub(crate) min: Duration,
    /// The longest pause.
    pub(crate) max: Duration,
}

/// Sends messages to RocketMQ through one client, retrying each until RocketMQ takes it or
/// the sender stops.
pub(crate) struct Sender {
    pub(crate) client: Arc<dyn RocketMqClient>,
    pub(crate) health: Arc<HealthState>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) counters: Counters,
    pub(crate) bounds: RetryBounds,
    /// Becomes `true` when the owner stops: retries end.
    pub(crate) stopping: watch::Sender<bool>,
}

impl Sender {
    /// A sender over `client`, up until stopped.
    pub(crate) fn new(
        client: Arc<dyn RocketMqClient>,
        metrics: Arc<Metrics>,
        counters: Counters,
        bounds: RetryBounds,
    ) -> Self {
        Sender {
            client,
            health: Arc::new(HealthState::new()),
            metrics,
            counters,
            bounds,
            stopping: watch::channel(false).0,
        }
    }

    /// Counts a message as waiting for RocketMQ (before it enters a buffer).
    pub(crate) fn buffered(&self) {
        self.counters
            .buffered(&self.metrics)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Waits (at most `grace`) until nothing is waiting for RocketMQ; `what` names the owner
    /// in the warning when something still is.
    pub(crate) async fn flush(&self, grace: Duration, what: &str) {
        let buffered = self.counters.buffered(&self.metrics);
        let flushed = async {
            while buffered.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(grace, flushed).await.is_err() {
            tracing::warn!(
                buffered = buffered.load(Ordering::Relaxed),
                "{what} stopped with messages still waiting for RocketMQ"
            );
        }
    }

    /// Sends until RocketMQ takes it, with exponential backoff between attempts; gives up
    /// only when the sender is stopping. Completes the publisher's wait on success.
    pub(crate) async fn send_with_retry(&self, outgoing: Outgoing) {
        let (metrics, counters) = (&*self.metrics, self.counters);
        let mut stopping = self.stopping.subscribe();
        let mut backoff = self.bounds.min;
        loop {
            let attempt = tokio::time::timeout(
                self.bounds.send_timeout,
                self.client
                    .send(&outgoing.message, outgoing.order_key.as_deref()),
            )
            .await;
            let error = match attempt {
                Ok(Ok(())) => {
                    self.health.sent();
                    counters.produced(metrics).fetch_add(1, Ordering::Relaxed);
                    counters.buffered(metrics).fetch_sub(1, Ordering::Relaxed);
                    if let Some(done) = outgoing.done {
                        let _ = done.send(());
                    }
                    return;
                }
                Ok(Err(e)) => e.0,
                Err(_) => format!(
                    "send timed out after {} ms",
                    self.bounds.send_timeout.as_millis()
                ),
            };
            self.health.failed(&error);
            tracing::debug!(topic = %outgoing.message.topic, %error, backoff_ms = backoff.as_millis() as u64, "RocketMQ send failed; retrying");
            if *stopping.borrow() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stopping.changed() => break,
            }
            counters.retried(metrics).fetch_add(1, Ordering::Relaxed);
            backoff = (backoff * 2).min(self.bounds.max);
        }
        tracing::warn!(topic = %outgoing.message.topic, "stopping: message not sent to RocketMQ");
        counters.failed(metrics).fetch_add(1, Ordering::Relaxed);
        counters.buffered(metrics).fetch_sub(1, Ordering::Relaxed);
    }
}

/// Lanes in front of a [`Sender`]: messages of one key always take the same lane, and a
/// lane sends one message at a time, so they reach RocketMQ in the order they were handed in.
pub(crate) struct Lanes {
    lanes: Vec<mpsc::Sender<Outgoing>>,
    sender: Arc<Sender>,
}

impl Lanes {
    /// `count` lanes holding at most `capacity` messages each; the tasks that drain them.
    pub(crate) fn start(
        sender: Arc<Sender>,
        count: usize,
        capacity: usize,
    ) -> (Lanes, Vec<JoinHandle<()>>) {
        let (lanes, tasks) = (0..count.max(1))
            .map(|_| {
                let (lane, mut queue) = mpsc::channel::<Outgoing>(capacity.max(1));
                let sender = sender.clone();
                let task = tokio::spawn(async move {
                    while let Some(outgoing) = queue.recv().await {
                        sender.send_with_retry(outgoing).await;
                    }
                });
                (lane, task)
            })
            .unzip();
        (Lanes { lanes, sender }, tasks)
    }

    /// Hands `outgoing` to the lane of `key`, waiting while it is full (backpressure).
    /// `false` when the lanes stopped: the message is not sent (counted as failed; a waiting
    /// publisher sees its completion fail).
    pub(crate) async fn send(&self, key: &str, outgoing: Outgoing) -> bool {
        let reserved = match self.lane(key) {
            Some(lane) => lane.reserve().await.ok(),
            None => None,
        };
        match reserved {
            Some(slot) => {
                self.sender.buffered();
                slot.send(outgoing);
                true
            }
            None => {
                let failed = self.sender.counters.failed(&self.sender.metrics);
                failed.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Like [`send`](Self::send), but never waits: `false` when the lane of `key` is full
    /// or the lanes stopped (the message is not sent, and counted as failed).
    pub(crate) fn try_send(&self, key: &str, outgoing: Outgoing) -> bool {
        match self.lane(key).map(|lane| lane.try_reserve()) {
            Some(Ok(slot)) => {
                self.sender.buffered();
                slot.send(outgoing);
                true
            }
            _ => {
                let failed = self.sender.counters.failed(&self.sender.metrics);
                failed.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The lane of `key`.
    fn lane(&self, key: &str) -> Option<&mpsc::Sender<Outgoing>> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % self.lanes.len() as u64).unwrap_or(0);
        self.lanes.get(index)
    }
}
