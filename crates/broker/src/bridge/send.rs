//! Sending to RocketMQ with retry, shared by the bridge (outflow and status messages) and the
//! cluster (route messages): a [`Sender`] sends a batch of messages until RocketMQ takes it, and [`Lanes`] keep the messages of one key in order (one send at a time per lane,
//! carrying every message of a key that waited meanwhile).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mqgate_rocketmq::RocketMessage;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
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

    /// Sends `batch` (messages of one topic and one order key, in order) as one batch
    /// ([`RocketMqClient::send_batch`]) until RocketMQ takes it, with exponential backoff
    /// between attempts; gives up only when the sender is stopping. Completes the waiting
    /// publishers on success.
    pub(crate) async fn send_batch_with_retry(&self, batch: Vec<Outgoing>) {
        let (metrics, counters) = (&*self.metrics, self.counters);
        let Some(first) = batch.first() else {
            return;
        };
        let (topic, order_key) = (first.message.topic.clone(), first.order_key.clone());
        let count = batch.len() as u64;
        let (messages, waiting): (Vec<RocketMessage>, Vec<_>) = batch
            .into_iter()
            .map(|outgoing| (outgoing.message, outgoing.done))
            .unzip();
        let mut stopping = self.stopping.subscribe();
        let mut backoff = self.bounds.min;
        loop {
            let attempt = tokio::time::timeout(
                self.bounds.send_timeout,
                self.client.send_batch(&messages, order_key.as_deref()),
            )
            .await;
            let error = match attempt {
                Ok(Ok(())) => {
                    self.health.sent();
                    counters
                        .produced(metrics)
                        .fetch_add(count, Ordering::Relaxed);
                    counters
                        .buffered(metrics)
                        .fetch_sub(count, Ordering::Relaxed);
                    for done in waiting.into_iter().flatten() {
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
            tracing::debug!(%topic, messages = count, %error, backoff_ms = backoff.as_millis() as u64, "RocketMQ send failed; retrying");
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
        tracing::warn!(%topic, messages = count, "stopping: messages not sent to RocketMQ");
        counters.failed(metrics).fetch_add(count, Ordering::Relaxed);
        counters
            .buffered(metrics)
            .fetch_sub(count, Ordering::Relaxed);
    }
}

/// Most messages one lane sends as one batch.
const BATCH_MESSAGES: usize = 128;
/// Most body bytes of one batch (RocketMQ refuses a request over 4 MiB by default); a larger
/// single message goes alone.
const BATCH_BYTES: usize = 1 << 20;

/// Splits `taken` (in the order handed in) into batches of one topic and one order key
/// each, every batch in that order, the batches in the order of their first message.
fn batches(taken: Vec<Outgoing>) -> Vec<Vec<Outgoing>> {
    let mut batches: Vec<Vec<Outgoing>> = Vec::new();
    for outgoing in taken {
        let same = |batch: &&mut Vec<Outgoing>| {
            batch.first().is_some_and(|first| {
                first.order_key == outgoing.order_key
                    && first.message.topic == outgoing.message.topic
            })
        };
        match batches.iter_mut().find(same) {
            Some(batch) => batch.push(outgoing),
            None => batches.push(vec![outgoing]),
        }
    }
    batches
}

/// Lanes in front of a [`Sender`]: messages of one key always take the same lane, and a
/// lane has one send under way at a time (a batch per key of what waited for it), so they
/// reach RocketMQ in the order they were handed in.
pub(crate) struct Lanes {
    lanes: Vec<Lane>,
    sender: Arc<Sender>,
}

/// One lane: its queue, and the permits that bound what it holds, queued or being sent.
struct Lane {
    queue: mpsc::UnboundedSender<(Outgoing, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
}

impl Lanes {
    /// `count` lanes holding at most `capacity` messages each (waiting, or in the send under
    /// way); the tasks that drain them.
    pub(crate) fn start(
        sender: Arc<Sender>,
        count: usize,
        capacity: usize,
    ) -> (Lanes, Vec<JoinHandle<()>>) {
        let (lanes, tasks) = (0..count.max(1))
            .map(|_| {
                let (queue, mut taking) =
                    mpsc::unbounded_channel::<(Outgoing, OwnedSemaphorePermit)>();
                let room = Arc::new(Semaphore::new(capacity.max(1)));
                let sender = sender.clone();
                let task = tokio::spawn(async move {
                    // What waited while the previous send was under way goes in one send
                    // per key: an ordered lane's rate is a batch per round trip, not one
                    // message. A message's permit is let go once its send is over.
                    let mut carried = None;
                    loop {
                        let first = match carried.take() {
                            Some(first) => first,
                            None => match taking.recv().await {
                                Some(first) => first,
                                None => return,
                            },
                        };
                        let mut bytes = first.0.message.body.len();
                        let mut taken = vec![first];
                        while taken.len() < BATCH_MESSAGES {
                            let Ok(next) = taking.try_recv() else { break };
                            bytes += next.0.message.body.len();
                            if bytes > BATCH_BYTES {
                                carried = Some(next);
                                break;
                            }
                            taken.push(next);
                        }
                        let (taken, permits): (Vec<Outgoing>, Vec<_>) = taken.into_iter().unzip();
                        for batch in batches(taken) {
                            sender.send_batch_with_retry(batch).await;
                        }
                        drop(permits);
                    }
                });
                (Lane { queue, room }, task)
            })
            .unzip();
        (Lanes { lanes, sender }, tasks)
    }

    /// Hands `outgoing` to the lane of `key`, waiting while it is full (backpressure).
    /// `false` when the lanes stopped: the message is not sent (counted as failed; a waiting
    /// publisher sees its completion fail).
    pub(crate) async fn send(&self, key: &str, outgoing: Outgoing) -> bool {
        let Some(lane) = self.lane(key) else {
            return self.not_sent();
        };
        match lane.room.clone().acquire_owned().await {
            Ok(permit) => self.enqueue(lane, outgoing, permit),
            Err(_) => self.not_sent(),
        }
    }

    /// Like [`send`](Self::send), but never waits: `false` when the lane of `key` is full
    /// or the lanes stopped (the message is not sent, and counted as failed).
    pub(crate) fn try_send(&self, key: &str, outgoing: Outgoing) -> bool {
        let Some(lane) = self.lane(key) else {
            return self.not_sent();
        };
        match lane.room.clone().try_acquire_owned() {
            Ok(permit) => self.enqueue(lane, outgoing, permit),
            Err(_) => self.not_sent(),
        }
    }

    fn enqueue(&self, lane: &Lane, outgoing: Outgoing, permit: OwnedSemaphorePermit) -> bool {
        self.sender.buffered();
        if lane.queue.send((outgoing, permit)).is_ok() {
            return true;
        }
        // The lane's task stopped (shutdown).
        let buffered = self.sender.counters.buffered(&self.sender.metrics);
        buffered.fetch_sub(1, Ordering::Relaxed);
        self.not_sent()
    }

    /// Counts a message not sent; `false`.
    fn not_sent(&self) -> bool {
        let failed = self.sender.counters.failed(&self.sender.metrics);
        failed.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// The lane of `key`.
    fn lane(&self, key: &str) -> Option<&Lane> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % self.lanes.len() as u64).unwrap_or(0);
        self.lanes.get(index)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;
    use parking_lot::Mutex;

    use super::super::{BoxFuture, ClientFailure, Consumed};
    use super::*;

    /// A client that records each send (its messages' keys and order key) and lets a send
    /// finish only once the test hands it a permit.
    struct Recorder {
        sends: Mutex<Vec<(Vec<String>, Option<String>)>>,
        permits: Semaphore,
    }

    impl RocketMqClient for Recorder {
        fn send<'a>(
            &'a self,
            message: &'a RocketMessage,
            order_key: Option<&'a str>,
        ) -> BoxFuture<'a, Result<(), ClientFailure>> {
            self.send_batch(std::slice::from_ref(message), order_key)
        }

        fn send_batch<'a>(
            &'a self,
            messages: &'a [RocketMessage],
            order_key: Option<&'a str>,
        ) -> BoxFuture<'a, Result<(), ClientFailure>> {
            let keys = messages.iter().map(|m| m.keys.concat()).collect();
            self.sends.lock().push((keys, order_key.map(str::to_owned)));
            Box::pin(async move {
                let permit = self.permits.acquire().await;
                permit
                    .map(|p| p.forget())
                    .map_err(|e| ClientFailure(e.to_string()))
            })
        }

        fn consume(
            &self,
            _topic: String,
            _group: String,
            _sink: mpsc::Sender<Consumed>,
        ) -> BoxFuture<'_, Result<(), ClientFailure>> {
            Box::pin(async { Ok(()) })
        }

        fn shutdown(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    fn outgoing(topic: &str, key: &str, id: &str, body: usize) -> Outgoing {
        Outgoing {
            message: RocketMessage {
                topic: topic.to_owned(),
                tags: None,
                keys: vec![id.to_owned()],
                properties: BTreeMap::new(),
                body: Bytes::from(vec![b'x'; body]),
            },
            order_key: Some(key.to_owned()),
            done: None,
        }
    }

    #[test]
    fn batches_keep_each_keys_order() {
        let taken = vec![
            outgoing("t", "a", "a1", 1),
            outgoing("t", "b", "b1", 1),
            outgoing("t", "a", "a2", 1),
            outgoing("u", "a", "ua1", 1),
            outgoing("t", "b", "b2", 1),
            outgoing("t", "a", "a3", 1),
        ];
        let ids: Vec<Vec<String>> = batches(taken)
            .iter()
            .map(|batch| batch.iter().map(|o| o.message.keys.concat()).collect())
            .collect();
        assert_eq!(ids, [vec!["a1", "a2", "a3"], vec!["b1", "b2"], vec!["ua1"]]);
    }

    #[tokio::test]
    async fn what_waits_during_a_send_goes_in_one_batch_per_key() {
        let recorder = Arc::new(Recorder {
            sends: Mutex::new(Vec::new()),
            permits: Semaphore::new(0),
        });
        let bounds = RetryBounds {
            send_timeout: Duration::from_secs(30),
            min: Duration::from_millis(10),
            max: Duration::from_millis(10),
        };
        let metrics = Arc::new(Metrics::default());
        let sender = Arc::new(Sender::new(
            recorder.clone(),
            metrics.clone(),
            Counters::Cluster,
            bounds,
        ));
        let (lanes, tasks) = Lanes::start(sender, 1, 1000);
        assert!(lanes.send("a", outgoing("t", "a", "a0", 1)).await);
        // The first send is under way (and held): what comes now waits for it.
        for _ in 0..100 {
            if !recorder.sends.lock().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for i in 1..=3 {
            assert!(
                lanes
                    .send("a", outgoing("t", "a", &format!("a{i}"), 1))
                    .await
            );
            assert!(
                lanes
                    .send("b", outgoing("t", "b", &format!("b{i}"), 1))
                    .await
            );
        }
        // A message larger than what is left of a batch's bytes goes in the next one.
        assert!(
            lanes
                .send("a", outgoing("t", "a", "big", BATCH_BYTES))
                .await
        );
        assert!(lanes.send("a", outgoing("t", "a", "a4", 1)).await);
        recorder.permits.add_permits(5);
        for _ in 0..100 {
            if metrics.cluster_sent.load(Ordering::Relaxed) == 9 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let key = Some("a".to_owned());
        let sends = recorder.sends.lock().clone();
        assert_eq!(
            sends,
            [
                (vec!["a0".to_owned()], key.clone()),
                (vec!["a1".into(), "a2".into(), "a3".into()], key.clone()),
                (
                    vec!["b1".into(), "b2".into(), "b3".into()],
                    Some("b".to_owned())
                ),
                (vec!["big".into()], key.clone()),
                (vec!["a4".into()], key),
            ]
        );
        assert_eq!(metrics.cluster_sent.load(Ordering::Relaxed), 9);
        assert_eq!(metrics.cluster_buffered.load(Ordering::Relaxed), 0);
        drop(lanes);
        for task in tasks {
            task.await.unwrap();
        }
    }
}
