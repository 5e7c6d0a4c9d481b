//! The cloud SDK endpoint: backends written for the managed service's server SDKs (AMQP
//! 0-9-1 clients) send to devices and consume device messages and status notices. One task
//! per connection drives `mqgate_amqp::Connection` (bytes in, frames out, its timer); sends
//! go through [`Core::publish_topic`] like the HTTP API's `SendMessage`; consumers take
//! from the shared queues of [`queue`] (a parent topic's queue is a persistent session in
//! the store: a consumer's `basic.ack` removes the message from it).

pub(crate) mod queue;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};
use futures_util::FutureExt;
use hashbrown::HashMap;
use mqgate_amqp::{
    Config, ConfirmTag, Connection, Event, FieldValue, ReplyCode, SdkAuthenticator, SdkUser,
};
use mqgate_auth::AccessPolicy;
use mqgate_codec::QoS;
use mqgate_topic::TopicFilter;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Notify};

use crate::auth::CoreAuth;
use crate::clock::monotonic_ms;
use crate::config::AuthSettings;
use crate::connection::Serve;
use crate::core::Core;
use crate::Metrics;
use queue::{Entry, Queue, Queues, STATUS_QUEUE};

/// Deliveries one consumer may hold unacknowledged when its client set no prefetch.
pub(crate) const DEFAULT_PREFETCH: usize = 64;

/// What every connection of the endpoint uses.
pub(crate) struct AmqpCtx {
    pub(crate) core: Arc<Core>,
    /// The AccessKeys of `[auth]` with their bounds.
    pub(crate) keys: Arc<CoreAuth>,
    pub(crate) settings: AuthSettings,
    pub(crate) queues: Arc<Queues>,
    pub(crate) config: Config,
}

impl AmqpCtx {
    /// The secret of the AccessKey a login names, when it is for this instance, the key may
    /// use the API, and no temporary token is given (tokens are not accepted here).
    fn secret(&self, user: &SdkUser) -> Option<String> {
        if user.instance_id != self.settings.instance_id
            || user.security_token.is_some()
            || !self.settings.api_allowed(&user.access_key_id)
        {
            return None;
        }
        self.keys.access_key_secret(&user.access_key_id)
    }

    fn policy(&self, user: &SdkUser) -> AccessPolicy {
        self.keys
            .access_key(&user.access_key_id)
            .map_or_else(AccessPolicy::none, |key| key.policy.clone())
    }
}

impl Serve for AmqpCtx {
    async fn serve<S>(self: Arc<Self>, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.core
            .metrics
            .amqp_connections
            .fetch_add(1, Ordering::Relaxed);
        serve(&self, stream, peer).await;
    }

    fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.config.handshake_timeout_ms)
    }

    fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    fn shutdown(&self) -> watch::Receiver<bool> {
        self.core.shutdown.clone()
    }
}

/// A consumer of this connection.
struct Consumer {
    queue: Arc<Queue>,
    no_ack: bool,
    outstanding: usize,
}

/// A delivery not yet acknowledged.
struct Unacked {
    queue: Arc<Queue>,
    consumer: String,
    entry: Entry,
}

/// A connection's share of the open-connections, open-channels and consumers gauges, given
/// back when it is dropped, however the connection ends.
struct Open<'a> {
    metrics: &'a Metrics,
    channels: u64,
    consumers: u64,
}

impl<'a> Open<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics
            .amqp_connections_open
            .fetch_add(1, Ordering::Relaxed);
        Open {
            metrics,
            channels: 0,
            consumers: 0,
        }
    }

    /// The connection has `channels` channels open, with `consumers` consumers on them.
    fn set(&mut self, channels: usize, consumers: usize) {
        move_gauge(
            &self.metrics.amqp_channels_open,
            &mut self.channels,
            channels,
        );
        move_gauge(
            &self.metrics.amqp_consumers_open,
            &mut self.consumers,
            consumers,
        );
    }
}

/// Moves `gauge` by the change from `mine` (this connection's share) to `now`.
fn move_gauge(gauge: &std::sync::atomic::AtomicU64, mine: &mut u64, now: usize) {
    let now = u64::try_from(now).unwrap_or(u64::MAX);
    if now > *mine {
        gauge.fetch_add(now - *mine, Ordering::Relaxed);
    } else {
        gauge.fetch_sub(*mine - now, Ordering::Relaxed);
    }
    *mine = now;
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.set(0, 0);
        self.metrics
            .amqp_connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Publishes of one connection routed and not yet safe with every receiver, at most: past
/// it the connection stops reading until some settle, so a backend that pipelines sends
/// waits for the broker rather than making it hold an unbounded backlog.
const MAX_SETTLING: usize = 1024;

/// A routed publish that settles into its confirm tag (none outside confirm mode) and
/// whether it was safe with every receiver.
type Settling =
    std::pin::Pin<Box<dyn std::future::Future<Output = (Option<ConfirmTag>, bool)> + Send>>;

/// Answers a settled publish: `basic.ack` or `basic.nack` in confirm mode, and the counters.
fn confirm_publish<A: mqgate_amqp::Authenticator>(
    conn: &mut Connection<A>,
    metrics: &Metrics,
    confirm: Option<ConfirmTag>,
    ok: bool,
) {
    if let Some(tag) = confirm {
        let counter = if ok {
            &metrics.amqp_confirmed
        } else {
            &metrics.amqp_publish_nacked
        };
        counter.fetch_add(1, Ordering::Relaxed);
        conn.confirm(tag, ok, monotonic_ms());
    }
}

async fn serve<S>(ctx: &Arc<AmqpCtx>, mut stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut open = Open::new(&ctx.core.metrics);
    let lookup = {
        let ctx = ctx.clone();
        move |user: &SdkUser| ctx.secret(user)
    };
    let start = monotonic_ms();
    let mut conn = Connection::new(ctx.config.clone(), SdkAuthenticator::new(lookup), start);
    let wake = Arc::new(Notify::new());
    let mut consumers: HashMap<(u16, String), Consumer> = HashMap::new();
    let mut unacked: HashMap<(u16, u64), Unacked> = HashMap::new();
    let mut shutdown = ctx.core.shutdown.clone();
    let metrics = &ctx.core.metrics;
    let mut policy: Option<AccessPolicy> = None;
    let mut settling: FuturesOrdered<Settling> = FuturesOrdered::new();
    let mut closed = false;
    while !closed {
        let now = monotonic_ms();
        let deadline = conn
            .poll_timeout()
            .map(|at| tokio::time::Instant::now() + Duration::from_millis(at.saturating_sub(now)));
        let reading = settling.len() < MAX_SETTLING;
        tokio::select! {
            read = stream.read_buf(conn.receive_buffer()), if reading => match read {
                Ok(0) | Err(_) => conn.connection_lost(),
                Ok(_) => conn.process(monotonic_ms()),
            },
            Some((confirm, ok)) = settling.next(), if !settling.is_empty() => {
                confirm_publish(&mut conn, metrics, confirm, ok);
                // Every other one already settled, in order, without another turn.
                while let Some(Some((confirm, ok))) = settling.next().now_or_never() {
                    confirm_publish(&mut conn, metrics, confirm, ok);
                }
            }
            () = sleep_until(deadline) => conn.on_timeout(monotonic_ms()),
            () = wake.notified() => {}
            _ = shutdown.changed() => {
                conn.close(ReplyCode::ConnectionForced, "broker shutting down", monotonic_ms());
            }
        }
        while let Some(event) = conn.poll_event() {
            let now = monotonic_ms();
            match event {
                Event::Opened { .. } => {
                    policy = conn.principal().map(|user| ctx.policy(user));
                }
                Event::Publish {
                    confirm,
                    exchange,
                    routing_key,
                    body,
                    ..
                } => {
                    let topic = if exchange.is_empty() {
                        routing_key
                    } else {
                        exchange
                    };
                    metrics.amqp_published.fetch_add(1, Ordering::Relaxed);
                    let allowed = policy
                        .as_ref()
                        .is_some_and(|p| p.publish.allows_topic(&topic));
                    // Routed here, in the order the backend sent them; each one's confirm
                    // waits (in `settling`, in order) until it is safe, while this connection
                    // reads on.
                    let routed = if allowed {
                        ctx.core
                            .route_topic(&topic, body, QoS::AtLeastOnce, false)
                            .map_err(|error| {
                                tracing::info!(%peer, %topic, %error, "AMQP publish refused");
                            })
                    } else {
                        tracing::info!(%peer, %topic, "AMQP publish denied by the AccessKey's bounds");
                        metrics.publish_denied.fetch_add(1, Ordering::Relaxed);
                        Err(())
                    };
                    let core = ctx.core.clone();
                    settling.push_back(Box::pin(async move {
                        let ok = match routed {
                            Ok((message, mut scratch)) => {
                                let shared = core.share(&message, false).await;
                                let settled = match core.settle_topic(&mut scratch).await {
                                    Ok(()) => Core::shared(shared).await,
                                    Err(error) => Err(error),
                                };
                                match settled {
                                    Ok(()) => true,
                                    Err(error) => {
                                        tracing::info!(%peer, %topic, %error, "AMQP publish refused");
                                        false
                                    }
                                }
                            }
                            Err(()) => false,
                        };
                        (confirm, ok)
                    }));
                }
                Event::Consume {
                    channel,
                    consumer_tag,
                    queue,
                    arguments,
                    no_ack,
                    ..
                } => {
                    let found = if queue == STATUS_QUEUE {
                        arguments
                            .get("GROUP_ID")
                            .and_then(FieldValue::as_str)
                            .and_then(|group| ctx.queues.status(group))
                    } else {
                        let allowed = TopicFilter::parse(&format!("{queue}/#")).is_ok_and(|f| {
                            policy
                                .as_ref()
                                .is_some_and(|p| p.subscribe.allows_filter(&f))
                        });
                        if allowed {
                            ctx.queues.parent(&queue)
                        } else {
                            conn.refuse_consume(
                                channel,
                                &consumer_tag,
                                ReplyCode::AccessRefused,
                                "the AccessKey may not consume this queue",
                                now,
                            );
                            continue;
                        }
                    };
                    match found {
                        Some(q) => {
                            q.watch(&wake);
                            q.consumer_attached();
                            conn.accept_consume(channel, &consumer_tag, now);
                            consumers.insert(
                                (channel, consumer_tag),
                                Consumer {
                                    queue: q,
                                    no_ack,
                                    outstanding: 0,
                                },
                            );
                        }
                        None => conn.refuse_consume(
                            channel,
                            &consumer_tag,
                            ReplyCode::NotFound,
                            "no such queue",
                            now,
                        ),
                    }
                }
                Event::Cancel {
                    channel,
                    consumer_tag,
                } => {
                    consumers.remove(&(channel, consumer_tag));
                }
                Event::Ack {
                    channel,
                    delivery_tags,
                } => {
                    for tag in delivery_tags {
                        if let Some(entry) = unacked.remove(&(channel, tag)) {
                            settle(&mut consumers, channel, &entry);
                            entry.queue.settle(&entry.entry);
                            metrics.amqp_acked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Event::Nack {
                    channel,
                    delivery_tags,
                    requeue,
                } => {
                    for tag in delivery_tags {
                        if let Some(entry) = unacked.remove(&(channel, tag)) {
                            settle(&mut consumers, channel, &entry);
                            if requeue {
                                entry.queue.requeue(entry.entry);
                            } else {
                                // Dropped: settled in the queue (out of the store), counted.
                                entry.queue.settle(&entry.entry);
                                metrics.amqp_nacked.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                Event::ChannelClosed { channel, .. } => {
                    consumers.retain(|(ch, _), _| *ch != channel);
                    let mut gone: Vec<_> = unacked
                        .keys()
                        .filter(|(ch, _)| *ch == channel)
                        .copied()
                        .collect();
                    // Back at the head in their original order: the last requeued first.
                    gone.sort_unstable();
                    for key in gone.into_iter().rev() {
                        if let Some(entry) = unacked.remove(&key) {
                            entry.queue.requeue(entry.entry);
                        }
                    }
                }
                Event::Closed { reason } => {
                    tracing::debug!(%peer, ?reason, "AMQP connection closed");
                    closed = true;
                }
                _ => {}
            }
        }
        open.set(conn.open_channels(), consumers.len());
        if !closed {
            deliver(&mut conn, &mut consumers, &mut unacked, metrics);
        }
        while let Some(chunk) = conn.poll_transmit() {
            if stream.write_all(&chunk).await.is_err() {
                conn.connection_lost();
                break;
            }
        }
        if conn.is_closed() {
            closed = true;
        }
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    // Whatever the connection still held goes back to its queues.
    for (_, entry) in unacked.drain() {
        entry.queue.requeue(entry.entry);
    }
    for consumer in consumers.values() {
        consumer.queue.forget(&wake);
    }
}

fn settle(consumers: &mut HashMap<(u16, String), Consumer>, channel: u16, entry: &Unacked) {
    if let Some(c) = consumers.get_mut(&(channel, entry.consumer.clone())) {
        c.outstanding = c.outstanding.saturating_sub(1);
    }
}

/// Hands each consumer what its queue holds, within its window.
fn deliver<A: mqgate_amqp::Authenticator>(
    conn: &mut Connection<A>,
    consumers: &mut HashMap<(u16, String), Consumer>,
    unacked: &mut HashMap<(u16, u64), Unacked>,
    metrics: &Metrics,
) {
    for ((channel, tag), consumer) in consumers.iter_mut() {
        while (consumer.no_ack || consumer.outstanding < DEFAULT_PREFETCH)
            && conn.can_deliver(*channel, tag)
        {
            let Some(entry) = consumer.queue.pop() else {
                break;
            };
            match conn.deliver(
                *channel,
                tag,
                &entry.message,
                entry.redelivered,
                monotonic_ms(),
            ) {
                Ok(delivery_tag) => {
                    metrics.amqp_delivered.fetch_add(1, Ordering::Relaxed);
                    if entry.redelivered {
                        metrics.amqp_redelivered.fetch_add(1, Ordering::Relaxed);
                    }
                    if consumer.no_ack {
                        // Settled as it is sent: an auto-ack consumer never acknowledges.
                        consumer.queue.settle(&entry);
                    } else {
                        consumer.outstanding += 1;
                        unacked.insert(
                            (*channel, delivery_tag),
                            Unacked {
                                queue: consumer.queue.clone(),
                                consumer: tag.clone(),
                                entry,
                            },
                        );
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "AMQP delivery not sent");
                    consumer.queue.unpop(entry);
                    break;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
