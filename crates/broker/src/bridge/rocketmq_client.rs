//! [`RustRocketMqClient`]: the bridge's [`RocketMqClient`] on `rocketmq-client-rust` 1.0.0.
//!
//! The client crate owns a runtime of its own (`RuntimeOwner`); its push consumer calls the
//! listener on a blocking thread, so the listener may wait for the broker's answer there.
//! Known problems of 1.0.0 this works around: the metadata lane's queue is raised to 4096
//! (under a backlog on a small machine the default overflowed with `runtime.capacity.exhausted`),
//! and every inflow rule consumes in its own group in clustering mode (broadcast mode loses
//! messages).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cheetah_string::CheetahString;
use mqgate_rocketmq::RocketMessage;
use parking_lot::Mutex;
use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ClientRuntimeConfig, ConsumeConcurrentlyContext,
    ConsumeConcurrentlyStatus, ConsumeOrderlyContext, ConsumeOrderlyStatus,
    DefaultLitePullConsumer, DefaultMQProducer, DefaultMQPushConsumer, MQPushConsumer,
    MessageListenerConcurrently, MessageListenerOrderly, SendResult, SendStatus, TelemetryHandle,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::message::STRING_HASH_SET;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};
use tokio::sync::{mpsc, oneshot};

use super::{BoxFuture, ClientFailure, ClientSettings, Consumed, RocketMqClient};
use crate::config::{ConsumeFrom, RocketMqConfig};

/// The RocketMQ property holding a message's keys, separated by spaces.
const KEYS: &str = "KEYS";
/// How long the queues of a topic are taken as known (the producer refreshes its routes
/// from the name server every 30 s too).
const QUEUES_TTL: Duration = Duration::from_secs(30);
/// The RocketMQ property holding a message's tag.
const TAGS: &str = "TAGS";

fn failure(context: &str, error: impl std::fmt::Display) -> ClientFailure {
    ClientFailure(format!("{context}: {error}"))
}

/// A topic's queues, and when they were asked for.
type KnownQueues = (std::time::Instant, Arc<[MessageQueue]>);

/// The `rocketmq-client-rust` client: one producer, one push consumer per consumed topic.
pub struct RustRocketMqClient {
    owner: Mutex<Option<RuntimeOwner>>,
    runtime: Arc<ClientRuntime>,
    producer: DefaultMQProducer,
    consumers: tokio::sync::Mutex<Vec<DefaultMQPushConsumer>>,
    name_server: String,
    consume_from: ConsumeFrom,
    send_timeout_ms: u64,
    /// The queues of each topic a batch was sent to, and when they were asked for.
    queues: Mutex<HashMap<String, KnownQueues>>,
}

impl std::fmt::Debug for RustRocketMqClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustRocketMqClient")
            .field("name_server", &self.name_server)
            .finish_non_exhaustive()
    }
}

impl RustRocketMqClient {
    /// Builds the client's runtime and starts the producer of `config.producer_group`.
    ///
    /// # Errors
    /// The runtime could not be built or the producer did not start.
    pub async fn start(config: &RocketMqConfig) -> Result<Self, ClientFailure> {
        Self::start_with(&ClientSettings::from(config)).await
    }

    /// Builds the client's runtime and starts the producer of `settings.producer_group`.
    ///
    /// # Errors
    /// The runtime could not be built or the producer did not start.
    pub async fn start_with(config: &ClientSettings) -> Result<Self, ClientFailure> {
        let parallelism = std::thread::available_parallelism().map_or(2, usize::from);
        let mut runtime_config = RuntimeConfig::for_parallelism("mqgate-rocketmq", parallelism);
        let lane = &mut runtime_config.blocking_lane_policies.metadata_io;
        lane.max_queue_depth = lane.max_queue_depth.max(4096);
        lane.task_timeout = lane.task_timeout.max(Duration::from_secs(120));
        let owner = RuntimeOwner::plan(runtime_config)
            .map_err(|e| failure("runtime configuration", e))?
            .build()
            .map_err(|e| failure("runtime", e))?;
        let runtime = ClientRuntime::try_new(
            owner.root_context().component("mqgate-rocketmq"),
            ClientRuntimeConfig::default(),
            TelemetryHandle::noop(),
        )
        .map_err(|e| failure("client runtime", e))?;
        let send_timeout_ms = u64::try_from(config.send_timeout.as_millis()).unwrap_or(3000);
        let mut producer = DefaultMQProducer::builder(runtime.clone())
            .producer_group(config.producer_group.as_str())
            .name_server_addr(config.name_server.as_str())
            .send_msg_timeout(u32::try_from(send_timeout_ms).unwrap_or(3000))
            .build();
        producer
            .start()
            .await
            .map_err(|e| failure("producer start", e))?;
        Ok(RustRocketMqClient {
            owner: Mutex::new(Some(owner)),
            runtime,
            producer,
            consumers: tokio::sync::Mutex::new(Vec::new()),
            name_server: config.name_server.clone(),
            consume_from: config.consume_from,
            send_timeout_ms,
            queues: Mutex::new(HashMap::new()),
        })
    }

    async fn send_one(
        &self,
        message: &RocketMessage,
        order_key: Option<&str>,
    ) -> Result<(), ClientFailure> {
        let built = build(message)?;
        let sent = match order_key {
            None => {
                self.producer
                    .send_with_timeout(built, self.send_timeout_ms)
                    .await
            }
            Some(key) => {
                let select = |queues: &[MessageQueue], _: &Message, hash: &u64| pick(queues, *hash);
                self.producer
                    .send_with_selector_timeout(built, select, hash_of(key), self.send_timeout_ms)
                    .await
            }
        };
        match sent {
            Ok(Some(result)) => stored(&result),
            Ok(None) => Err(ClientFailure("no send result".to_owned())),
            Err(e) => Err(failure("send", e)),
        }
    }

    /// Sends `messages` (one topic) as one batch: to the queue of `order_key`, the one the
    /// selector of [`send_one`](Self::send_one) picks for it, so single and batched sends of
    /// one key share a queue.
    async fn send_many(
        &self,
        messages: &[RocketMessage],
        order_key: Option<&str>,
    ) -> Result<(), ClientFailure> {
        let [first, rest @ ..] = messages else {
            return Ok(());
        };
        if rest.is_empty() {
            return self.send_one(first, order_key).await;
        }
        let built = messages.iter().map(build).collect::<Result<Vec<_>, _>>()?;
        let timeout = self.send_timeout_ms;
        let sent = match order_key {
            None => self.producer.send_batch_with_timeout(built, timeout).await,
            Some(key) => {
                let queue = self.queue_of(&first.topic, key).await?;
                let sent = self
                    .producer
                    .send_batch_to_queue_with_timeout(built, queue, timeout)
                    .await;
                if sent.is_err() {
                    // The topic's queues may have changed: ask again next time.
                    self.queues.lock().remove(&first.topic);
                }
                sent
            }
        };
        match sent {
            Ok(result) => stored(&result),
            Err(e) => Err(failure("batch send", e)),
        }
    }

    /// The queue of `topic` that messages with `key` go to (the topic's queues are asked of
    /// the name server at most every [`QUEUES_TTL`], as the producer refreshes its routes).
    async fn queue_of(&self, topic: &str, key: &str) -> Result<MessageQueue, ClientFailure> {
        let cached = self
            .queues
            .lock()
            .get(topic)
            .filter(|(at, _)| at.elapsed() < QUEUES_TTL)
            .map(|(_, queues)| queues.clone());
        let queues = match cached {
            Some(queues) => queues,
            None => {
                // The producer asks with `&mut self` but shares its state: a clone asks.
                let mut producer = self.producer.clone();
                let fetched: Arc<[MessageQueue]> = producer
                    .fetch_publish_message_queues(topic)
                    .await
                    .map_err(|e| failure("queues of the topic", e))?
                    .into();
                let entry = (std::time::Instant::now(), fetched.clone());
                self.queues.lock().insert(topic.to_owned(), entry);
                fetched
            }
        };
        pick(&queues, hash_of(key))
            .ok_or_else(|| ClientFailure(format!("no queue of {topic} to send to")))
    }

    async fn start_consumer(
        &self,
        topic: String,
        group: String,
        sink: mpsc::Sender<Consumed>,
        ordered: bool,
    ) -> Result<(), ClientFailure> {
        let from = match self.consume_from {
            ConsumeFrom::Last => ConsumeFromWhere::ConsumeFromLastOffset,
            ConsumeFrom::First => ConsumeFromWhere::ConsumeFromFirstOffset,
        };
        let mut consumer = DefaultMQPushConsumer::builder(self.runtime.clone())
            .consumer_group(group.as_str())
            .name_server_addr(self.name_server.as_str())
            .consume_from_where(from)
            .build();
        consumer
            .subscribe(topic.as_str(), "*")
            .await
            .map_err(|e| failure("subscribe", e))?;
        if ordered {
            consumer.register_message_listener_orderly(Forward { topic, sink });
        } else {
            consumer.register_message_listener_concurrently(Forward { topic, sink });
        }
        consumer
            .start()
            .await
            .map_err(|e| failure("consumer start", e))?;
        self.consumers.lock().await.push(consumer);
        Ok(())
    }

    /// A lite pull consumer in `group`, assigned every queue of `topic`, commits the end of
    /// each to the broker (creating the group there if it is new), and stops.
    async fn seek_to_end(&self, topic: &str, group: &str) -> Result<(), ClientFailure> {
        let consumer = DefaultLitePullConsumer::builder(self.runtime.clone())
            .consumer_group(group)
            .name_server_addr(self.name_server.as_str())
            .auto_commit(false)
            // It only commits: its pulls (which start once queues are assigned) are short and
            // small, so its shutdown does not wait out a long poll.
            .pull_batch_size(1)
            .pull_threshold_for_queue(1)
            .broker_suspend_max_time_millis(100)
            .consumer_timeout_millis_when_suspend(500)
            .consumer_pull_timeout_millis(500)
            .build()
            .map_err(|e| failure("offset seeker", e))?;
        consumer
            .start()
            .await
            .map_err(|e| failure("offset seeker start", e))?;
        let seeked = async {
            let queues = consumer
                .fetch_message_queues(topic)
                .await
                .map_err(|e| failure("queues of the topic", e))?;
            consumer
                .assign(queues.clone())
                .await
                .map_err(|e| failure("assign", e))?;
            let mut ends = std::collections::HashMap::new();
            for queue in queues {
                let end = consumer
                    .max_offset(&queue)
                    .await
                    .map_err(|e| failure("end of a queue", e))?;
                ends.insert(queue, end);
            }
            consumer.commit_sync_with_map(ends, true).await;
            Ok(())
        }
        .await;
        consumer.shutdown().await;
        seeked
    }

    async fn stop(&self) {
        for mut consumer in self.consumers.lock().await.drain(..) {
            consumer.shutdown().await;
        }
        // The clone shares the producer's state; shutting it down stops the producer.
        self.producer.clone().shutdown().await;
        let report = self.runtime.shutdown().await;
        if !report.is_healthy() {
            tracing::warn!(report = %report.to_json(), "RocketMQ client runtime did not stop cleanly");
        }
        if let Some(owner) = self.owner.lock().take() {
            let _ = owner.shutdown_background();
        }
    }
}

impl RocketMqClient for RustRocketMqClient {
    fn send<'a>(
        &'a self,
        message: &'a RocketMessage,
        order_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), ClientFailure>> {
        Box::pin(self.send_one(message, order_key))
    }

    fn send_batch<'a>(
        &'a self,
        messages: &'a [RocketMessage],
        order_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), ClientFailure>> {
        Box::pin(self.send_many(messages, order_key))
    }

    fn consume(
        &self,
        topic: String,
        group: String,
        sink: mpsc::Sender<Consumed>,
    ) -> BoxFuture<'_, Result<(), ClientFailure>> {
        Box::pin(self.start_consumer(topic, group, sink, false))
    }

    fn consume_ordered(
        &self,
        topic: String,
        group: String,
        sink: mpsc::Sender<Consumed>,
    ) -> BoxFuture<'_, Result<(), ClientFailure>> {
        Box::pin(self.start_consumer(topic, group, sink, true))
    }

    fn start_at_end(
        &self,
        topic: String,
        group: String,
    ) -> BoxFuture<'_, Result<(), ClientFailure>> {
        Box::pin(async move { self.seek_to_end(&topic, &group).await })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.stop())
    }
}

/// The push consumer's listener: hands each message to the bridge and waits (on the
/// client's blocking thread) for the answer that decides the commit.
struct Forward {
    topic: String,
    sink: mpsc::Sender<Consumed>,
}

impl Forward {
    /// Hands the messages over one at a time; `false` as soon as one is not done (it and
    /// the rest come again).
    fn forward(&self, messages: &[&MessageExt]) -> bool {
        messages.iter().all(|message| {
            let (done, answer) = oneshot::channel();
            let consumed = Consumed {
                message: to_rocket_message(&self.topic, message),
                done,
            };
            self.sink.blocking_send(consumed).is_ok() && answer.blocking_recv() == Ok(true)
        })
    }
}

impl MessageListenerConcurrently for Forward {
    fn consume_message(
        &self,
        messages: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> ClientResult<ConsumeConcurrentlyStatus> {
        Ok(if self.forward(messages) {
            ConsumeConcurrentlyStatus::ConsumeSuccess
        } else {
            ConsumeConcurrentlyStatus::ReconsumeLater
        })
    }
}

/// In order: the client hands one queue's messages to one listener call at a time.
impl MessageListenerOrderly for Forward {
    fn consume_message(
        &self,
        messages: &[&MessageExt],
        _context: &mut ConsumeOrderlyContext,
    ) -> ClientResult<ConsumeOrderlyStatus> {
        Ok(if self.forward(messages) {
            ConsumeOrderlyStatus::Success
        } else {
            ConsumeOrderlyStatus::SuspendCurrentQueueAMoment
        })
    }
}

/// `message` as the RocketMQ client's message.
fn build(message: &RocketMessage) -> Result<Message, ClientFailure> {
    let mut builder = Message::builder()
        .topic(message.topic.as_str())
        .body(message.body.clone());
    if let Some(tags) = &message.tags {
        builder = builder.tags(tags.as_str());
    }
    if !message.keys.is_empty() {
        builder = builder.keys(message.keys.clone());
    }
    // The mapping's plain copies of User Properties may bear a name RocketMQ keeps for
    // itself; those stay in `mqttUserProperties` only.
    for (key, value) in message
        .properties
        .iter()
        .filter(|(key, _)| !STRING_HASH_SET.contains(key.as_str()))
    {
        builder = builder
            .raw_property(key.as_str(), value.as_str())
            .map_err(|e| failure("property", e))?;
    }
    builder.build().map_err(|e| failure("message", e))
}

/// The queue of `queues` a key hashing to `hash` goes to.
fn pick(queues: &[MessageQueue], hash: u64) -> Option<MessageQueue> {
    let n = u64::try_from(queues.len()).ok().filter(|n| *n > 0)?;
    let index = usize::try_from(hash % n).ok()?;
    queues.get(index).cloned()
}

/// `Ok` when RocketMQ stored what was sent.
fn stored(result: &SendResult) -> Result<(), ClientFailure> {
    if result.send_status == SendStatus::SendOk {
        Ok(())
    } else {
        Err(ClientFailure(format!(
            "broker answered {:?}",
            result.send_status
        )))
    }
}

/// A stable hash of an ordering key (the same key, the same queue, across restarts).
fn hash_of(key: &str) -> u64 {
    // FNV-1a: stable across processes and Rust versions, unlike `DefaultHasher`.
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The mapping crate's view of a consumed message: user properties only (RocketMQ's own
/// are left out), tag and keys apart, the body shared.
fn to_rocket_message(topic: &str, message: &MessageExt) -> RocketMessage {
    let properties = message.properties();
    let text = |key: &str| properties.get(&CheetahString::from_slice(key));
    RocketMessage {
        topic: topic.to_owned(),
        tags: text(TAGS).map(ToString::to_string),
        keys: text(KEYS)
            .map(|keys| {
                keys.as_str()
                    .split(' ')
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        properties: properties
            .iter()
            .filter(|(key, _)| !STRING_HASH_SET.contains(key.as_str()))
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        body: message.body().unwrap_or_default(),
    }
}
