//! The cloud SDK scenarios over AMQP 0-9-1: confirmed publishes per second (`publish`) and
//! acknowledged deliveries per second from the parent topic's queue (`consume`), against
//! mqgate's cloud SDK endpoint or any AMQP 0-9-1 broker (RabbitMQ).

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use mqgate_amqp::{FieldTable, Method};
use mqgate_codec::{ByteStr, Packet, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use crate::amqp::{
    amqp_message_id, encode_method, encode_publish, sdk_properties, AmqpConn, AmqpLogin, Confirms,
    Incoming,
};
use crate::clock::RunClock;
use crate::protocol::{Hello, MqttVersion};
use crate::sampler::BrokerWatch;
use crate::traffic::usage;
use crate::wire::{self, stamp_payload};
use crate::{BenchError, RunReport};

/// The topic the `publish` scenario sends to (exchange = routing key), as the SDK's
/// `sendMessage("parent/bench", ...)` would.
pub const AMQP_PUBLISH_TOPIC: &str = "parent/bench";
/// The queue the `consume` scenario's consumers read: the parent topic.
pub const AMQP_QUEUE: &str = "parent";
/// The topic the `consume` scenario's feeders publish to (MQTT devices on mqgate; an AMQP
/// exchange bound to [`AMQP_QUEUE`] elsewhere).
pub const AMQP_FEED_TOPIC: &str = "parent/dev/x";

/// Which cloud SDK call is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AmqpScenario {
    /// Confirmed publishes per second: P connections, one confirm-mode channel each, at
    /// most W unconfirmed publishes each.
    Publish,
    /// Acknowledged deliveries per second to C consumers of the queue `parent` while
    /// feeders fill it.
    Consume,
}

impl fmt::Display for AmqpScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmqpScenario::Publish => "amqp-publish",
            AmqpScenario::Consume => "amqp-consume",
        })
    }
}

/// How the `consume` scenario fills the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AmqpFeed {
    /// MQTT QoS 1 publishes of devices to `parent/dev/x` (mqgate: the parent topic's queue
    /// takes device messages; cloud producers' messages are not delivered to cloud consumers).
    Mqtt,
    /// AMQP confirm-mode publishes to the exchange `parent/dev/x` bound to the queue.
    Amqp,
}

/// Everything one AMQP run needs.
#[derive(Debug, Clone)]
pub struct AmqpRunConfig {
    /// The broker's AMQP address.
    pub target: SocketAddr,
    /// Label of the broker in the report.
    pub label: String,
    /// Broker process for CPU and memory.
    pub broker_pid: Option<u32>,
    /// What is measured.
    pub scenario: AmqpScenario,
    /// How every AMQP connection logs in.
    pub login: AmqpLogin,
    /// Declare the exchanges and the queue first (a general AMQP broker; mqgate refuses it).
    pub declare: bool,
    /// How the consume scenario fills the queue.
    pub feed: AmqpFeed,
    /// The MQTT address for [`AmqpFeed::Mqtt`].
    pub mqtt_target: Option<SocketAddr>,
    /// Publisher (or feeder) connections.
    pub publishers: usize,
    /// Consumer connections (consume scenario).
    pub consumers: usize,
    /// Unconfirmed publishes (or unacknowledged MQTT publishes) per publisher; 1 is the
    /// SDK's own pattern (it waits for each confirm).
    pub window: usize,
    /// `basic.qos` prefetch count of each consumer.
    pub prefetch: u16,
    /// Body bytes (at least 16: the stamp).
    pub payload: usize,
    /// Messages to publish in total.
    pub messages: u64,
    /// Hard time bound, setup included.
    pub seconds: f64,
}

impl AmqpRunConfig {
    /// The scenario's name in reports, with every parameter that changes the number.
    pub fn scenario_label(&self) -> String {
        match self.scenario {
            AmqpScenario::Publish => format!(
                "{} p{} w{} {}B",
                self.scenario, self.publishers, self.window, self.payload
            ),
            AmqpScenario::Consume => format!(
                "{} c{} prefetch{} p{} w{} {}B",
                self.scenario,
                self.consumers,
                self.prefetch,
                self.publishers,
                self.window,
                self.payload
            ),
        }
    }

    fn check(&self) -> Result<(), BenchError> {
        if self.publishers == 0 || self.window == 0 || self.messages == 0 {
            return Err(BenchError::InvalidPlan(
                "needs publishers, a window and messages",
            ));
        }
        if self.scenario == AmqpScenario::Consume && self.consumers == 0 {
            return Err(BenchError::InvalidPlan("consume needs consumers"));
        }
        if self.scenario == AmqpScenario::Consume
            && self.feed == AmqpFeed::Mqtt
            && self.mqtt_target.is_none()
        {
            return Err(BenchError::InvalidPlan("an MQTT feed needs --mqtt-target"));
        }
        Ok(())
    }
}

/// Messages publisher `p` of `publishers` sends out of `total`.
pub fn share(total: u64, publishers: usize, p: usize) -> u64 {
    let n = publishers.max(1) as u64;
    total / n + u64::from((p as u64) < total % n)
}

/// Declares what the scenarios use on a general AMQP 0-9-1 broker: the fanout exchanges
/// `parent/bench` (bound to nothing: a publish reaches no queue, as on mqgate with no
/// subscriber) and `parent/dev/x`, the queue `parent` (not durable: mqgate keeps its queues
/// in memory), and the binding of `parent/dev/x` to `parent`.
pub async fn declare(target: SocketAddr, login: &AmqpLogin) -> Result<(), BenchError> {
    let mut conn = AmqpConn::connect(target, login).await?;
    conn.call(1, Method::ChannelOpen, (20, 11)).await?;
    for exchange in [AMQP_PUBLISH_TOPIC, AMQP_FEED_TOPIC] {
        conn.call(
            1,
            Method::exchange_declare(exchange, "fanout", false)?,
            (40, 11),
        )
        .await?;
    }
    conn.call(1, Method::queue_declare(AMQP_QUEUE, false)?, (50, 11))
        .await?;
    conn.call(
        1,
        Method::queue_bind(AMQP_QUEUE, AMQP_FEED_TOPIC, AMQP_FEED_TOPIC)?,
        (50, 21),
    )
    .await?;
    conn.close().await;
    Ok(())
}

/// What every publisher and consumer adds up.
#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    confirmed: AtomicU64,
    nacked: AtomicU64,
    received: AtomicU64,
    /// Nanoseconds (run clock) of the last confirm or delivery.
    last_ns: AtomicU64,
}

impl Counts {
    fn touch(&self, clock: &RunClock) {
        self.last_ns.fetch_max(clock.now_ns(), Ordering::Relaxed);
    }
}

/// Runs `config`'s scenario and reports it (one [`RunReport`]; `deliveries_per_s` is
/// confirmed publishes per second for `publish`, acknowledged deliveries per second for
/// `consume`).
pub async fn run_amqp(
    config: &AmqpRunConfig,
    allow_non_loopback: bool,
) -> Result<RunReport, BenchError> {
    crate::check_target(config.target, allow_non_loopback)?;
    if let Some(mqtt) = config.mqtt_target {
        crate::check_target(mqtt, allow_non_loopback)?;
    }
    config.check()?;
    let clock = RunClock::start_now();
    let deadline = clock.deadline(config.seconds);
    let counts = Arc::new(Counts::default());
    if config.declare {
        timeout_at(deadline, declare(config.target, &config.login))
            .await
            .map_err(|_| BenchError::SetupTimeout)??;
    }

    // Consumers attach first: on mqgate the queue exists from the first consume.
    let mut consumers = JoinSet::new();
    let consuming = config.scenario == AmqpScenario::Consume;
    if consuming {
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(config.consumers);
        let all_in = Arc::new(tokio::sync::watch::channel(false).0);
        for _ in 0..config.consumers {
            let (config, counts, ready, all_in) = (
                config.clone(),
                counts.clone(),
                ready_tx.clone(),
                all_in.clone(),
            );
            consumers.spawn(async move {
                timeout_at(deadline, consume(&config, &counts, &clock, ready, &all_in))
                    .await
                    .unwrap_or(Ok(()))
            });
        }
        drop(ready_tx);
        for _ in 0..config.consumers {
            match timeout_at(deadline, ready_rx.recv()).await {
                Ok(Some(())) => {}
                Ok(None) => return Err(first_error(&mut consumers).await),
                Err(_) => return Err(BenchError::SetupTimeout),
            }
        }
    }

    let watch = BrokerWatch::start(config.broker_pid);
    let generator_before = crate::procstat::sample_process(None);
    let started_ns = clock.now_ns();
    let mut publishers = JoinSet::new();
    for p in 0..config.publishers {
        let (config, counts) = (config.clone(), counts.clone());
        let quota = share(config.messages, config.publishers, p);
        publishers.spawn(async move {
            let work = async {
                match (config.scenario, config.feed) {
                    (AmqpScenario::Consume, AmqpFeed::Mqtt) => {
                        feed_mqtt(&config, p, quota, &counts, &clock).await
                    }
                    (AmqpScenario::Consume, AmqpFeed::Amqp) => {
                        publish(&config, p, AMQP_FEED_TOPIC, quota, &counts, &clock).await
                    }
                    (AmqpScenario::Publish, _) => {
                        publish(&config, p, AMQP_PUBLISH_TOPIC, quota, &counts, &clock).await
                    }
                }
            };
            timeout_at(deadline, work).await.unwrap_or(Ok(()))
        });
    }
    let mut failure = None;
    while let Some(done) = publishers.join_next().await {
        if let Ok(Err(e)) = done {
            failure.get_or_insert(e);
        }
    }
    while let Some(done) = consumers.join_next().await {
        if let Ok(Err(e)) = done {
            failure.get_or_insert(e);
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let broker = watch.finish().await;
    let generator_after = crate::procstat::sample_process(None);

    let sent = counts.sent.load(Ordering::Relaxed);
    let confirmed = counts.confirmed.load(Ordering::Relaxed);
    let received = counts.received.load(Ordering::Relaxed);
    let units = if consuming { received } else { confirmed };
    let end_ns = counts.last_ns.load(Ordering::Relaxed).max(started_ns);
    let duration_s = (end_ns - started_ns) as f64 / 1e9;
    Ok(RunReport {
        scenario: config.scenario_label(),
        broker: config.label.clone(),
        sent,
        acked: confirmed,
        received,
        lost: if consuming {
            confirmed.saturating_sub(received)
        } else {
            counts.nacked.load(Ordering::Relaxed)
        },
        deliveries_per_s: units as f64 / duration_s.max(1e-9),
        duration_s,
        timed_out: units < config.messages,
        connections: (config.publishers + if consuming { config.consumers } else { 0 }) as u64,
        ..usage(broker, generator_before.zip(generator_after), units)
    })
}

async fn first_error(set: &mut JoinSet<Result<(), BenchError>>) -> BenchError {
    while let Some(done) = set.join_next().await {
        if let Ok(Err(e)) = done {
            return e;
        }
    }
    BenchError::SetupTimeout
}

/// One confirm-mode publisher: `quota` publishes to `topic`, at most `window` unconfirmed.
async fn publish(
    config: &AmqpRunConfig,
    p: usize,
    topic: &str,
    quota: u64,
    counts: &Counts,
    clock: &RunClock,
) -> Result<(), BenchError> {
    let mut conn = AmqpConn::connect(config.target, &config.login).await?;
    conn.call(1, Method::ChannelOpen, (20, 11)).await?;
    conn.call(1, Method::ConfirmSelect { nowait: false }, (85, 11))
        .await?;
    let mut confirms = Confirms::default();
    let mut out = BytesMut::with_capacity(64 * 1024);
    let salt = p as u64;
    let mut sent = 0u64;
    while sent < quota || confirms.outstanding() > 0 {
        let mut batch = 0;
        while sent < quota && confirms.outstanding() < config.window {
            let tag = confirms.published();
            let body: Bytes = stamp_payload(tag, clock.now_ns(), config.payload);
            let props = sdk_properties(amqp_message_id(salt, tag), tag as i64);
            encode_publish(&mut out, 1, topic, props, &body, conn.frame_max)?;
            sent += 1;
            batch += 1;
        }
        if batch > 0 {
            conn.write(&out).await?;
            out.clear();
            counts.sent.fetch_add(batch, Ordering::Relaxed);
        }
        // Read at least one frame, then whatever else is already buffered.
        let mut frame = Some(conn.next_frame().await?);
        while let Some(f) = frame {
            if let Incoming::Confirm {
                tag,
                multiple,
                nack,
            } = conn.inbound.on_frame(f)?
            {
                let n = confirms.settle(tag, multiple);
                let counter = if nack {
                    &counts.nacked
                } else {
                    &counts.confirmed
                };
                counter.fetch_add(n, Ordering::Relaxed);
                counts.touch(clock);
            }
            frame = conn.try_frame()?;
        }
    }
    conn.close().await;
    Ok(())
}

/// One consumer: qos, consume `parent`, ack every delivery, until every message arrived.
async fn consume(
    config: &AmqpRunConfig,
    counts: &Counts,
    clock: &RunClock,
    ready: tokio::sync::mpsc::Sender<()>,
    all_in: &tokio::sync::watch::Sender<bool>,
) -> Result<(), BenchError> {
    let mut done = all_in.subscribe();
    let mut conn = AmqpConn::connect(config.target, &config.login).await?;
    conn.call(1, Method::ChannelOpen, (20, 11)).await?;
    conn.call(
        1,
        Method::BasicQos {
            prefetch_size: 0,
            prefetch_count: config.prefetch,
            global: false,
        },
        (60, 11),
    )
    .await?;
    conn.call(
        1,
        Method::BasicConsume {
            queue: AMQP_QUEUE.into(),
            consumer_tag: String::new(),
            no_local: false,
            no_ack: false,
            exclusive: false,
            nowait: false,
            arguments: FieldTable::new(),
        },
        (60, 21),
    )
    .await?;
    let _ = ready.send(()).await;
    drop(ready);
    let mut out = BytesMut::with_capacity(4096);
    while counts.received.load(Ordering::Relaxed) < config.messages {
        let next = tokio::select! {
            frame = conn.next_frame() => frame?,
            _ = done.wait_for(|d| *d) => break,
        };
        let mut frame = Some(next);
        while let Some(f) = frame {
            if let Incoming::Delivery { tag, .. } = conn.inbound.on_frame(f)? {
                encode_method(
                    &mut out,
                    1,
                    Method::BasicAck {
                        delivery_tag: tag,
                        multiple: false,
                    },
                )?;
                if counts.received.fetch_add(1, Ordering::Relaxed) + 1 >= config.messages {
                    all_in.send_replace(true);
                }
                counts.touch(clock);
            }
            frame = conn.try_frame()?;
        }
        if !out.is_empty() {
            conn.write(&out).await?;
            out.clear();
        }
    }
    conn.close().await;
    Ok(())
}

/// One MQTT device feeding the parent topic: `quota` QoS 1 publishes to `parent/dev/x`, at
/// most `window` unacknowledged. A PUBACK counts as the feed's confirm.
async fn feed_mqtt(
    config: &AmqpRunConfig,
    p: usize,
    quota: u64,
    counts: &Counts,
    clock: &RunClock,
) -> Result<(), BenchError> {
    let target = config
        .mqtt_target
        .ok_or(BenchError::InvalidPlan("an MQTT feed needs --mqtt-target"))?;
    let mut stream = wire::open_tcp(target, None).await?;
    let hello = Hello::clean(MqttVersion::V311);
    let mut rx = wire::handshake(&mut stream, &format!("GID_bench@@@feed{p}"), &hello)
        .await?
        .rx;
    let topic = ByteStr::try_from(AMQP_FEED_TOPIC).map_err(|_| BenchError::InvalidPlan("topic"))?;
    let window = config.window.min(65_535) as u64;
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut out = BytesMut::with_capacity(64 * 1024);
    while acked < quota {
        while sent < quota && sent - acked < window {
            let publish = Publish::new(
                QoS::AtLeastOnce,
                Some(wire::packet_id_for(sent)),
                topic.clone(),
                stamp_payload(sent, clock.now_ns(), config.payload),
            );
            Packet::Publish(publish).encode(&mut out)?;
            sent += 1;
            counts.sent.fetch_add(1, Ordering::Relaxed);
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        // Read at least one packet, then whatever else is already buffered.
        let mut got = false;
        loop {
            match wire::DECODER.decode(&mut rx)? {
                Some(packet) => {
                    got = true;
                    if let Packet::PubAck(_) = packet {
                        acked += 1;
                        counts.confirmed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None if got => break,
                None => {
                    if stream.read_buf(&mut rx).await? == 0 {
                        return Err(BenchError::Handshake(
                            "connection closed by the broker".into(),
                        ));
                    }
                }
            }
        }
    }
    wire::disconnect(stream).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_total() {
        for (total, n) in [(10, 3), (1, 4), (100_000, 7), (0, 2)] {
            let sum: u64 = (0..n).map(|p| share(total, n, p)).sum();
            assert_eq!(sum, total);
        }
        assert_eq!(share(10, 3, 0), 4);
        assert_eq!(share(10, 3, 2), 3);
    }
}
