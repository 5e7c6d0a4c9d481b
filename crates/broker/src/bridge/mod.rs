//! The RocketMQ bridge (`docs/rocketmq.md`): outflow, inflow and status rules against a real
//! RocketMQ, behind the small [`RocketMqClient`] trait so the client crate stays an
//! implementation detail (cargo feature `rocketmq`, on by default).
//!
//! ```text
//!  connection: PUBLISH ─▶ Bridge::outflow ─▶ bounded buffer ─▶ dispatcher ─▶ ≤ max_in_flight sends
//!                 (ack_after = "rocketmq": PUBACK after RocketMQ accepted)     retry with backoff
//!  status hub ─▶ status lanes (one per client-id hash: in order per client) ─▶ send with retry
//!  RocketMQ consumer (one group per inflow rule) ─▶ Consumed ─▶ router ─▶ `done(true)` once every
//!                 receiver took it, so the consumer commits the offset only then
//! ```

mod health;
mod inflow;
mod outflow;
#[cfg(feature = "rocketmq")]
mod rocketmq_client;
pub(crate) mod send;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mqgate_rocketmq::{MqttMessage, RocketMessage, RuleSet};
use mqgate_session::Message;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::{AckAfter, ConsumeFrom, RocketMqConfig};
pub use health::BridgeHealth;
#[cfg(feature = "rocketmq")]
pub use rocketmq_client::RustRocketMqClient;

use crate::connection::{Completion, Outflow, OutflowFuture};
use crate::core::Core;
use crate::{BrokerError, Metrics};
use send::{Counters, Lanes, Outgoing, RetryBounds, Sender};

/// A boxed future, as the [`RocketMqClient`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a RocketMQ client operation failed (the client's own error, as text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClientFailure(pub String);

/// One message a consumer received, and the answer it waits for before committing.
#[derive(Debug)]
pub struct Consumed {
    /// The message, its topic set to the topic subscribed.
    pub message: RocketMessage,
    /// `true`: the message is safely delivered (or will never be), commit its offset;
    /// `false` or dropped: consume it again later.
    pub done: oneshot::Sender<bool>,
}

/// What the bridge needs of a RocketMQ client. The `rocketmq` feature provides
/// [`RustRocketMqClient`] (the `rocketmq-client-rust` crate); an embedder can bring its own
/// through [`BrokerBuilder::rocketmq_client`](crate::BrokerBuilder::rocketmq_client).
pub trait RocketMqClient: Send + Sync + 'static {
    /// Sends one message (topic, tags, keys, user properties, body); resolves once RocketMQ
    /// stored it. Messages with the same `order_key` go to the same queue of the topic, so a
    /// consumer reads them in the order they were sent (status events: the client id).
    fn send<'a>(
        &'a self,
        message: &'a RocketMessage,
        order_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), ClientFailure>>;

    /// Sends `messages`, all of one topic and one `order_key`, in this order; resolves once
    /// RocketMQ stored every one. The broker hands over what waited while the previous send
    /// was under way, so a client that sends them as one batch (one round trip) multiplies
    /// the rate of an ordered sender. The default sends them one at a time with
    /// [`send`](Self::send); after a failure the broker sends the whole slice again, so
    /// those sent before it may be stored twice (a batch is stored whole or not at all).
    fn send_batch<'a>(
        &'a self,
        messages: &'a [RocketMessage],
        order_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), ClientFailure>> {
        Box::pin(async move {
            for message in messages {
                self.send(message, order_key).await?;
            }
            Ok(())
        })
    }

    /// Starts consuming `topic` in consumer group `group` (clustering mode). Every message
    /// goes to `sink`; its offset is committed only after the [`Consumed::done`] answer is
    /// `true`, otherwise it is consumed again later.
    fn consume(
        &self,
        topic: String,
        group: String,
        sink: mpsc::Sender<Consumed>,
    ) -> BoxFuture<'_, Result<(), ClientFailure>>;

    /// Like [`consume`](Self::consume), but in order: the messages of one queue of the
    /// topic reach `sink` one at a time, each after the previous one's
    /// [`Consumed::done`] answer (the cluster's route topic needs it: one publisher's
    /// messages share a queue). A client that cannot keep that order answers an error
    /// (the default), so a cluster never runs on one that reorders silently.
    fn consume_ordered(
        &self,
        topic: String,
        group: String,
        sink: mpsc::Sender<Consumed>,
    ) -> BoxFuture<'_, Result<(), ClientFailure>> {
        let _ = (sink, group);
        Box::pin(async move {
            Err(ClientFailure(format!(
                "this RocketMQ client cannot consume {topic} in order"
            )))
        })
    }

    /// Moves consumer group `group`'s offsets on `topic` to the end of each of its queues,
    /// before the group's first consumer starts (RocketMQ starts a new group on a young topic
    /// at offset 0, so it would read the topic's history). The default does nothing: a caller
    /// must still skip what it does not want (the cluster does).
    fn start_at_end(
        &self,
        topic: String,
        group: String,
    ) -> BoxFuture<'_, Result<(), ClientFailure>> {
        let _ = (topic, group);
        Box::pin(async { Ok(()) })
    }

    /// Stops every producer and consumer.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// What the built-in client (`RustRocketMqClient::start_with`, cargo feature `rocketmq`) needs: where RocketMQ is and how to produce and
/// consume there (the bridge's `[rocketmq]` section gives one, so does the cluster's
/// `[cluster]` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// The name server, `host:port` (several separated by `;`).
    pub name_server: String,
    /// The producer group.
    pub producer_group: String,
    /// Where a consumer group RocketMQ has never seen starts reading (on a young topic,
    /// RocketMQ 1.0.0 starts a new group at offset 0 whatever this says).
    pub consume_from: ConsumeFrom,
    /// How long one send may take.
    pub send_timeout: std::time::Duration,
}

impl From<&RocketMqConfig> for ClientSettings {
    fn from(config: &RocketMqConfig) -> Self {
        ClientSettings {
            name_server: config.name_server.clone(),
            producer_group: config.producer_group.clone(),
            consume_from: config.consume_from,
            send_timeout: config.send_timeout_ms,
        }
    }
}

/// The built-in client (cargo feature `rocketmq`), started with `settings`.
///
/// # Errors
/// The client did not start, or this build has none.
pub(crate) async fn built_in_client(
    settings: &ClientSettings,
) -> Result<Arc<dyn RocketMqClient>, ClientFailure> {
    #[cfg(feature = "rocketmq")]
    {
        let client = RustRocketMqClient::start_with(settings).await?;
        Ok(Arc::new(client))
    }
    #[cfg(not(feature = "rocketmq"))]
    {
        let _ = settings;
        Err(ClientFailure(
            "this build has no RocketMQ client (cargo feature `rocketmq`)".to_owned(),
        ))
    }
}

/// The running bridge.
pub(crate) struct Bridge {
    config: RocketMqConfig,
    rules: RuleSet,
    /// The outflow copies, in order per publisher.
    outflow: Lanes,
    /// The client, its health and counters, and the stop signal of its retries.
    sender: Arc<Sender>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Connects the producer (the real client unless the embedder gave one) and starts the
    /// outflow dispatcher. Consumers and the status forwarder start in [`Bridge::attach`].
    pub(crate) async fn start(
        config: RocketMqConfig,
        client: Option<Arc<dyn RocketMqClient>>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Bridge>, BrokerError> {
        config.check()?;
        let rules = config.rules()?;
        let client = match client {
            Some(client) => client,
            None => built_in_client(&ClientSettings::from(&config))
                .await
                .map_err(|e| BrokerError::RocketMq(format!("client start failed: {e}")))?,
        };
        let bounds = RetryBounds {
            send_timeout: config.send_timeout_ms,
            min: config.retry_min_ms,
            max: config.retry_max_ms,
        };
        let sender = Arc::new(Sender::new(client, metrics, Counters::Bridge, bounds));
        // One lane per send under way; a publisher's messages always take the same lane,
        // so they reach RocketMQ in the order it published them.
        let lanes = config.max_in_flight.max(1);
        let (outflow, tasks) = Lanes::start(sender.clone(), lanes, (config.buffer / lanes).max(1));
        let bridge = Arc::new(Bridge {
            rules,
            outflow,
            sender,
            tasks: Mutex::new(tasks),
            config,
        });
        tracing::info!(name_server = %bridge.config.name_server, ack_after = ?bridge.config.ack_after, "RocketMQ bridge started");
        Ok(bridge)
    }

    /// Starts the inflow consumers and the status forwarder, which need the router and the
    /// status hub. The forwarder takes this node's own status events only: in a cluster each
    /// node sends its own, so RocketMQ's status topics get every event once.
    pub(crate) async fn attach(self: &Arc<Self>, core: &Arc<Core>) -> Result<(), BrokerError> {
        let status = tokio::spawn(outflow::forward_status(
            self.clone(),
            core.status.subscribe_own(),
        ));
        self.tasks.lock().push(status);
        for topic in self.rules.inflow_topics() {
            let group = self.config.inflow_group(topic);
            let (sink, consumed) = mpsc::channel(64);
            self.sender
                .client
                .consume(topic.to_owned(), group.clone(), sink)
                .await
                .map_err(|e| {
                    BrokerError::RocketMq(format!("consumer of {topic:?} ({group}): {e}"))
                })?;
            tracing::info!(%topic, %group, "RocketMQ inflow consumer started");
            self.sender.health.consumer_started();
            let task = tokio::spawn(inflow::run(core.clone(), self.clone(), consumed));
            self.tasks.lock().push(task);
        }
        Ok(())
    }

    /// The copy for RocketMQ of a client's PUBLISH, when an outflow rule covers its topic; the
    /// sender's client id is the message's origin. Waits while the buffer is full
    /// (backpressure). With `ack_after = "rocketmq"` and QoS
    /// 1 or 2, returns the completion to await before acknowledging.
    pub(crate) async fn send_copy(
        &self,
        message: &Message,
        clean_session: bool,
    ) -> Option<Completion> {
        let (parent, _) = mqgate_rocketmq::split_topic(&message.topic);
        self.rules.outflow_for(parent)?;
        let mqtt = MqttMessage {
            topic: message.topic.clone(),
            qos: message.qos,
            retain: false,
            payload: message.payload.clone(),
            sender_client_id: (!message.origin.is_empty()).then(|| message.origin.to_string()),
            sender_clean_session: Some(clean_session),
            user_properties: user_properties(message),
        };
        let rocket = match self.rules.outflow(&mqtt) {
            Ok(Some(rocket)) => rocket,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(topic = %message.topic, %error, "outflow message not mappable to RocketMQ");
                let metrics = &self.sender.metrics;
                metrics.rocketmq_failed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let wait = self.config.ack_after == AckAfter::Rocketmq && message.qos as u8 > 0;
        let (done, completion) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        // In order per publisher, on one queue of the topic (the broker's own publishes, from
        // the APIs and wills without an origin, share one key). When the lanes stopped
        // (shutdown) it is not sent, counted: a waiting publisher sees its completion fail
        // and does not acknowledge.
        let key = if message.origin.is_empty() {
            "$broker".to_owned()
        } else {
            message.origin.to_string()
        };
        let outgoing = Outgoing {
            message: rocket,
            order_key: Some(key.clone()),
            done,
        };
        self.outflow.send(&key, outgoing).await;
        completion
    }

    /// The bridge's state now.
    pub(crate) fn health(&self) -> BridgeHealth {
        self.sender.health.snapshot(
            self.sender
                .metrics
                .rocketmq_buffered
                .load(Ordering::Relaxed),
            self.rules.inflow_topics().count(),
        )
    }

    /// Stops the bridge: waits (at most `grace`) for buffered messages to reach RocketMQ,
    /// then stops the tasks and the client.
    pub(crate) async fn shutdown(&self, grace: std::time::Duration) {
        self.sender.flush(grace, "RocketMQ bridge").await;
        let _ = self.sender.stopping.send(true);
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        self.sender.client.shutdown().await;
        tracing::info!("RocketMQ bridge stopped");
    }
}

impl Outflow for Bridge {
    fn outflow<'a>(
        &'a self,
        message: &'a Message,
        _retain: bool,
        clean_session: bool,
    ) -> OutflowFuture<'a> {
        Box::pin(self.send_copy(message, clean_session))
    }

    fn covers(&self, topic: &str) -> bool {
        let (parent, _) = mqgate_rocketmq::split_topic(topic);
        self.rules.outflow_for(parent).is_some()
    }
}

/// The MQTT 5 User Properties of a message (none for a 3.1.1 one).
fn user_properties(message: &Message) -> Vec<(String, String)> {
    if message.properties.is_empty() {
        return Vec::new();
    }
    // The forwarded properties were checked when the PUBLISH was decoded.
    match mqgate_codec::Properties::from_wire(message.properties.clone(), None) {
        Ok(properties) => properties
            .user_properties()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        Err(_) => Vec::new(),
    }
}
