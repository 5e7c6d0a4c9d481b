//! The endpoint's queues: one per parent topic (device messages) and one per group (status
//! notices), shared by every consumer of the instance. Each message goes to one consumer; a
//! delivery not acknowledged when its channel closes comes back to the head of its queue,
//! marked redelivered.
//!
//! A parent topic's queue is filled by a pump: a backend link in the registry, subscribed
//! to `{parent}/#`, whose inbox the pump moves into the queue. A group's queue is filled
//! from the status hub. Queues live in memory: what waits in them is lost when the broker
//! stops.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashMap;
use mqgate_amqp::{BasicProperties, FieldTable, FieldValue, Message as AmqpMessage};
use mqgate_codec::QoS;
use mqgate_rocketmq::split_topic;
use mqgate_session::Message;
use parking_lot::Mutex;
use tokio::sync::{broadcast, Notify};

use crate::core::inbox;
use crate::core::registry::{Attach, OnlineLink, AMQP_LINK_PREFIX};
use crate::core::Core;
use crate::TakeoverPolicy;

/// The queue of group status notices.
pub(crate) const STATUS_QUEUE: &str = "STATUS";

/// One entry waiting in a queue.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// What the consumer gets.
    pub(crate) message: Arc<AmqpMessage>,
    /// It was delivered before and not acknowledged.
    pub(crate) redelivered: bool,
}

/// A queue shared by the consumers of the instance.
#[derive(Debug)]
pub(crate) struct Queue {
    /// The parent topic, or `STATUS/{group}`.
    pub(crate) name: String,
    ready: Mutex<VecDeque<Entry>>,
    /// Connections with a consumer on this queue, woken when an entry arrives.
    waiters: Mutex<Vec<Arc<Notify>>>,
    limit: usize,
    /// Entries dropped because the queue was full.
    pub(crate) dropped: AtomicU64,
}

impl Queue {
    fn new(name: String, limit: usize) -> Self {
        Queue {
            name,
            ready: Mutex::new(VecDeque::new()),
            waiters: Mutex::new(Vec::new()),
            limit: limit.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    /// Appends a new entry; a full queue drops its oldest (counted and logged).
    pub(crate) fn push(&self, message: Arc<AmqpMessage>) {
        {
            let mut ready = self.ready.lock();
            if ready.len() >= self.limit {
                ready.pop_front();
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(queue = %self.name, dropped = n, "AMQP queue full: oldest entry dropped");
            }
            ready.push_back(Entry {
                message,
                redelivered: false,
            });
        }
        self.wake();
    }

    /// Puts an unacknowledged delivery back at the head, marked redelivered.
    pub(crate) fn requeue(&self, message: Arc<AmqpMessage>) {
        self.ready.lock().push_front(Entry {
            message,
            redelivered: true,
        });
        self.wake();
    }

    /// Puts back an entry a consumer could not take, as it was.
    pub(crate) fn unpop(&self, entry: Entry) {
        self.ready.lock().push_front(entry);
    }

    /// The next entry for a consumer.
    pub(crate) fn pop(&self) -> Option<Entry> {
        self.ready.lock().pop_front()
    }

    /// Entries waiting.
    pub(crate) fn depth(&self) -> usize {
        self.ready.lock().len()
    }

    /// Wakes `waiter` whenever an entry arrives, until [`forget`](Self::forget).
    pub(crate) fn watch(&self, waiter: &Arc<Notify>) {
        let mut waiters = self.waiters.lock();
        if !waiters.iter().any(|w| Arc::ptr_eq(w, waiter)) {
            waiters.push(waiter.clone());
        }
    }

    /// Stops waking `waiter`.
    pub(crate) fn forget(&self, waiter: &Arc<Notify>) {
        self.waiters.lock().retain(|w| !Arc::ptr_eq(w, waiter));
    }

    fn wake(&self) {
        for waiter in self.waiters.lock().iter() {
            waiter.notify_one();
        }
    }
}

/// Every queue of the endpoint, made on first use.
#[derive(Debug)]
pub(crate) struct Queues {
    core: Arc<Core>,
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    limit: usize,
    inbox_capacity: usize,
}

impl Queues {
    pub(crate) fn new(core: Arc<Core>, limit: usize, inbox_capacity: usize) -> Self {
        Queues {
            core,
            queues: Mutex::new(HashMap::new()),
            limit,
            inbox_capacity,
        }
    }

    /// Every queue with its depth and drop count, by name: for `/metrics`.
    pub(crate) fn depths(&self) -> Vec<(String, usize, u64)> {
        let mut all: Vec<_> = self
            .queues
            .lock()
            .values()
            .map(|q| (q.name.clone(), q.depth(), q.dropped.load(Ordering::Relaxed)))
            .collect();
        all.sort();
        all
    }

    /// The queue of device messages under `parent`, made (and its pump started) on first
    /// use. `None` when `parent` is not a valid one-level topic.
    pub(crate) fn parent(&self, parent: &str) -> Option<Arc<Queue>> {
        if parent.is_empty() || parent.contains(['/', '+', '#']) || parent.starts_with('$') {
            return None;
        }
        let mut queues = self.queues.lock();
        if let Some(queue) = queues.get(parent) {
            return Some(queue.clone());
        }
        let queue = Arc::new(Queue::new(parent.to_owned(), self.limit));
        // A client id MQTT clients cannot take.
        let id: Arc<str> = Arc::from(format!("{AMQP_LINK_PREFIX}{parent}"));
        let (sender, receiver) = inbox::channel(self.inbox_capacity.max(1));
        let link = OnlineLink {
            channel: self.core.status.channels.next(),
            inbox: sender,
            kickable: false,
            persistent: false,
            card: None,
        };
        if !matches!(
            self.core
                .registry
                .attach(&id, link, TakeoverPolicy::RefuseNew),
            Attach::Fresh
        ) {
            return None;
        }
        if self
            .core
            .router
            .subscribe(&id, &format!("{parent}/#"), QoS::AtLeastOnce)
            .is_none()
        {
            self.core.registry.remove(&id);
            return None;
        }
        tokio::spawn(pump_devices(receiver, queue.clone()));
        queues.insert(parent.to_owned(), queue.clone());
        Some(queue)
    }

    /// The queue of status notices of `group`, made (and fed) on first use.
    pub(crate) fn status(&self, group: &str) -> Option<Arc<Queue>> {
        if !group.starts_with("GID_") {
            return None;
        }
        let name = format!("{STATUS_QUEUE}/{group}");
        let mut queues = self.queues.lock();
        if let Some(queue) = queues.get(&name) {
            return Some(queue.clone());
        }
        let queue = Arc::new(Queue::new(name.clone(), self.limit));
        tokio::spawn(pump_status(
            self.core.status.subscribe(),
            group.to_owned(),
            queue.clone(),
            self.core.shutdown.clone(),
        ));
        queues.insert(name, queue.clone());
        Some(queue)
    }
}

/// Moves device messages from the queue's registry link into the queue. Messages the broker
/// itself published (cloud producers, the HTTP and embedding APIs) are not for the cloud
/// consumers: they have no origin.
async fn pump_devices(
    receiver: inbox::Receiver<crate::core::registry::Delivery>,
    queue: Arc<Queue>,
) {
    while let Some(delivery) = receiver.recv().await {
        if delivery.message.origin.is_empty() {
            continue;
        }
        queue.push(Arc::new(device_message(&delivery.message)));
    }
}

/// Moves the status events of `group` into its queue, in order.
async fn pump_status(
    mut events: broadcast::Receiver<mqgate_status::StatusEvent>,
    group: String,
    queue: Arc<Queue>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.changed() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(event) if event.group_id() == Some(group.as_str()) => {
                queue.push(Arc::new(AmqpMessage {
                    exchange: STATUS_QUEUE.to_owned(),
                    routing_key: STATUS_QUEUE.to_owned(),
                    properties: BasicProperties::default(),
                    body: Bytes::from(event.to_json()),
                }));
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                queue.dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(queue = %queue.name, lost = n, "status notices lost: the queue's feed lagged");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The AMQP form of a device message: message id (the broker's 32 hex digits), headers
/// `mqttParentTopic`, `mqttSecondTopic` (the rest from its `/`, as the RocketMQ mapping
/// writes it) and `clientId`; the body is the payload itself, not a copy.
pub(crate) fn device_message(message: &Message) -> AmqpMessage {
    let topic = message.topic.as_str();
    let (parent, second) = split_topic(topic);
    let headers = FieldTable::new()
        .with("mqttParentTopic", FieldValue::long_str(parent))
        .with("mqttSecondTopic", FieldValue::long_str(second))
        .with("clientId", FieldValue::long_str(message.origin.as_str()));
    AmqpMessage {
        exchange: topic.to_owned(),
        routing_key: topic.to_owned(),
        properties: BasicProperties {
            message_id: Some(message.id.to_string()),
            headers: Some(headers),
            ..BasicProperties::default()
        },
        body: message.payload.clone(),
    }
}
