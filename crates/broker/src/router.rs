//! The router: who gets a message. P2P addresses go straight to their client; everything
//! else is matched in the shared subscription trie; retained messages are kept by topic.
//!
//! Locks: the trie and the retained index sit behind `parking_lot::RwLock`s taken for the
//! length of one match or one update, never across an `.await`; the registry's shard locks
//! likewise. A delivery that must wait for a full inbox is handed back to the caller, which
//! waits without holding anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mqgate_codec::QoS;
use mqgate_session::{DeliveryOutcome, Message, MessageId, Subscription};
use mqgate_topic::{Matches, P2pAddress, RetainedIndex, SubscriptionFilter, SubscriptionTrie};
use parking_lot::RwLock;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::clock::unix_time_ms;
use crate::registry::{Delivery, Registry, Target};
use crate::Metrics;

/// How often a delivery to an inbox that just closed is retried: the closing connection is
/// moving its session to the registry, which takes microseconds.
const CLOSED_INBOX_RETRIES: usize = 64;

/// A delivery waiting for room in a receiver's inbox.
#[derive(Debug)]
pub(crate) struct Blocked {
    pub(crate) client: Arc<str>,
    pub(crate) inbox: mpsc::Sender<Delivery>,
    pub(crate) delivery: Delivery,
}

/// Per-task scratch space, reused so that routing allocates nothing in the steady state.
#[derive(Debug, Default)]
pub(crate) struct RouteScratch {
    matches: Matches<Arc<str>, QoS>,
    targets: Vec<(Arc<str>, QoS)>,
    pub(crate) blocked: Vec<Blocked>,
}

/// Message ids: a random 64-bit node prefix and a counter, so ids are unique across restarts
/// and nodes without coordination.
#[derive(Debug)]
struct MessageIds {
    prefix: u64,
    counter: AtomicU64,
}

impl MessageIds {
    fn next(&self) -> MessageId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        MessageId((u128::from(self.prefix) << 64) | u128::from(n))
    }
}

/// Subscriptions, retained messages and the registry of clients.
#[derive(Debug)]
pub(crate) struct Router {
    trie: RwLock<SubscriptionTrie<Arc<str>, QoS>>,
    retained: RwLock<RetainedIndex<Arc<Message>>>,
    pub(crate) registry: Registry,
    pub(crate) metrics: Arc<Metrics>,
    ids: MessageIds,
}

impl Router {
    pub(crate) fn new(metrics: Arc<Metrics>, handover_limit: usize) -> Self {
        // Without OS randomness the counter alone still keeps ids unique for this process.
        let prefix = getrandom::u64().unwrap_or(0);
        Router {
            trie: RwLock::new(SubscriptionTrie::new()),
            retained: RwLock::new(RetainedIndex::new()),
            registry: Registry::new(handover_limit),
            metrics,
            ids: MessageIds {
                prefix,
                counter: AtomicU64::new(0),
            },
        }
    }

    /// A fresh message id.
    pub(crate) fn next_id(&self) -> MessageId {
        self.ids.next()
    }

    /// Routes `message` (its `retain` flag already false, as existing subscribers see it).
    /// With `retain`, it also sets (or, with an empty payload, clears) the retained message of
    /// its topic. Deliveries that must wait for inbox room are left in `scratch.blocked`.
    pub(crate) fn route(
        &self,
        message: &Arc<Message>,
        retain: bool,
        publisher: Option<&str>,
        now: u64,
        scratch: &mut RouteScratch,
    ) {
        self.begin_route(scratch);
        match P2pAddress::parse(&message.topic) {
            Ok(Some(address)) => {
                // P2P: no trie lookup, no retained message whatever the flag says, and the
                // target id is borrowed from the topic (no allocation unless it must wait).
                let delivery = Delivery {
                    message: message.clone(),
                    granted: QoS::ExactlyOnce,
                };
                if let Some(blocked) = self.deliver(address.target_client_id, delivery, now) {
                    scratch.blocked.push(blocked);
                }
            }
            Ok(None) => {
                if retain {
                    self.set_retained(message);
                }
                self.match_subscribers(&message.topic, publisher, scratch);
            }
            Err(error) => {
                tracing::debug!(topic = %message.topic, %error, "P2P address with an invalid target");
                self.metrics.p2p_no_target.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.deliver_matched(message, now, scratch);
    }

    /// Routes `message` to the subscribers of `match_topic`, which may differ from the topic
    /// the receivers see (the RocketMQ bridge's `mqttRealTopic`). Never P2P, never retained.
    pub(crate) fn route_subscribers(
        &self,
        match_topic: &str,
        message: &Arc<Message>,
        now: u64,
        scratch: &mut RouteScratch,
    ) {
        self.begin_route(scratch);
        self.match_subscribers(match_topic, None, scratch);
        self.deliver_matched(message, now, scratch);
    }

    fn begin_route(&self, scratch: &mut RouteScratch) {
        self.metrics
            .messages_received
            .fetch_add(1, Ordering::Relaxed);
        scratch.targets.clear();
    }

    fn match_subscribers(&self, topic: &str, publisher: Option<&str>, scratch: &mut RouteScratch) {
        self.trie.read().match_topic_with(
            topic,
            publisher,
            |client| self.registry.is_online(client),
            &mut scratch.matches,
        );
        scratch.targets.extend(
            scratch
                .matches
                .iter()
                .map(|(client, qos)| (client.clone(), *qos)),
        );
    }

    fn deliver_matched(&self, message: &Arc<Message>, now: u64, scratch: &mut RouteScratch) {
        for (client, granted) in scratch.targets.drain(..) {
            let delivery = Delivery {
                message: message.clone(),
                granted,
            };
            if let Some(blocked) = self.deliver(&client, delivery, now) {
                scratch.blocked.push(blocked);
            }
        }
    }

    /// Hands one delivery to its receiver; `Some` when the receiver's inbox is full and the
    /// delivery is QoS 1 or 2, which must then wait for room (see [`Blocked`]).
    pub(crate) fn deliver(&self, client: &str, delivery: Delivery, now: u64) -> Option<Blocked> {
        let mut delivery = delivery;
        for _ in 0..CLOSED_INBOX_RETRIES {
            let (inbox, back) = match self.registry.deliver_to(client, delivery, now) {
                Target::Inbox(inbox, back) => (inbox, back),
                Target::Done(outcome, dropped) => {
                    self.count_outcome(outcome, dropped);
                    return None;
                }
                Target::Unknown => {
                    self.metrics.p2p_no_target.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            };
            match try_send(&inbox, back, &self.metrics) {
                Ok(()) => return None,
                Err(TrySendError::Full(back)) => {
                    return Some(Blocked {
                        client: Arc::from(client),
                        inbox,
                        delivery: back,
                    })
                }
                Err(TrySendError::Closed(back)) => {
                    // The connection is closing and moving its session into the registry.
                    delivery = back;
                    std::thread::yield_now();
                }
            }
        }
        tracing::warn!(%client, "receiver's connection closed while routing; message dropped");
        self.metrics.session_dropped.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Waits (at most `limit` in all) until every blocked delivery is in its inbox, for
    /// callers with nothing else to serve meanwhile (the embedding API, wills). `false` when
    /// the limit passed first.
    pub(crate) async fn settle(&self, mut blocked: Vec<Blocked>, limit: Duration) -> bool {
        if blocked.is_empty() {
            return true;
        }
        self.metrics
            .backpressure_waits
            .fetch_add(1, Ordering::Relaxed);
        let wait = async {
            while let Some(Blocked {
                client,
                inbox,
                delivery,
            }) = blocked.pop()
            {
                match inbox.reserve_owned().await {
                    Ok(permit) => {
                        permit.send(delivery);
                        self.metrics
                            .messages_delivered
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        if let Some(again) = self.deliver(&client, delivery, unix_time_ms()) {
                            blocked.push(again);
                        }
                    }
                }
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    fn count_outcome(&self, outcome: DeliveryOutcome, dropped: u64) {
        let counter = match outcome {
            DeliveryOutcome::Sent | DeliveryOutcome::Queued => &self.metrics.messages_delivered,
            DeliveryOutcome::Dropped(_) | DeliveryOutcome::Refused => &self.metrics.session_dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .session_dropped
            .fetch_add(dropped, Ordering::Relaxed);
    }

    /// Adds a subscription; `None` when the filter is invalid, deeper than the trie allows,
    /// or names a P2P address (a client never subscribes to another's P2P messages).
    pub(crate) fn subscribe(&self, client: &Arc<str>, filter: &str, qos: QoS) -> Option<QoS> {
        let parsed = SubscriptionFilter::parse(filter).ok()?;
        if !matches!(P2pAddress::parse(parsed.filter().as_str()), Ok(None)) {
            return None;
        }
        self.trie
            .write()
            .subscribe(&parsed, client.clone(), qos)
            .ok()?;
        Some(qos)
    }

    /// Removes a subscription (unknown filters are ignored, as MQTT requires).
    pub(crate) fn unsubscribe(&self, client: &Arc<str>, filter: &str) {
        if let Ok(parsed) = SubscriptionFilter::parse(filter) {
            self.trie.write().unsubscribe(&parsed, client);
        }
    }

    /// Removes every subscription of a session that ends with its connection.
    pub(crate) fn unsubscribe_all(&self, client: &Arc<str>, subscriptions: &[Subscription]) {
        if subscriptions.is_empty() {
            return;
        }
        let mut trie = self.trie.write();
        for subscription in subscriptions {
            if let Ok(parsed) = SubscriptionFilter::parse(&subscription.filter) {
                trie.unsubscribe(&parsed, client);
            }
        }
    }

    /// The retained messages a new subscription to `filter` receives (RETAIN set).
    pub(crate) fn retained_for(&self, filter: &str) -> Vec<Arc<Message>> {
        let mut found = Vec::new();
        if let Ok(parsed) = SubscriptionFilter::parse(filter) {
            self.retained
                .read()
                .matching(parsed.filter(), |_, message| found.push(message.clone()));
        }
        found
    }

    fn set_retained(&self, message: &Message) {
        let mut retained = self.retained.write();
        if message.payload.is_empty() {
            retained.remove(&message.topic);
        } else {
            let kept = Arc::new(Message {
                retain: true,
                ..message.clone()
            });
            // A topic deeper than the index allows is simply not retained.
            let _ = retained.set(&message.topic, kept);
        }
    }
}

/// Sends into an inbox without waiting: QoS 0 is dropped when the inbox is full (and
/// counted); QoS 1 and 2 come back as [`TrySendError::Full`].
pub(crate) fn try_send(
    inbox: &mpsc::Sender<Delivery>,
    delivery: Delivery,
    metrics: &Metrics,
) -> Result<(), TrySendError<Delivery>> {
    let qos0 = delivery.message.qos.min(delivery.granted) == QoS::AtMostOnce;
    match inbox.try_send(delivery) {
        Ok(()) => {
            metrics.messages_delivered.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(TrySendError::Full(_)) if qos0 => {
            metrics.qos0_dropped.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(e),
    }
}
