//! [`Metrics`]: counters of what the broker did and refused, as atomics.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Counters, incremented with relaxed atomics from every connection task. Read them
        /// with [`snapshot`](Metrics::snapshot).
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
        }

        /// A plain copy of [`Metrics`] at one instant.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct MetricsSnapshot {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl MetricsSnapshot {
            /// Every counter as (name, its documentation, value), in declaration order: what
            /// the HTTP API's `/metrics` exposes.
            pub fn counters(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> {
                [$((stringify!($name), concat!($($doc),*).trim(), self.$name),)*].into_iter()
            }
        }

        impl Metrics {
            /// Copies every counter.
            pub fn snapshot(&self) -> MetricsSnapshot {
                MetricsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Connections accepted by a listener.
    connections_accepted,
    /// Connections closed at accept because `max_connections` were open.
    connections_refused,
    /// Connections whose CONNECT was accepted (CONNACK 0).
    sessions_started,
    /// CONNECTs refused with a non-zero CONNACK (protocol level, credentials, client id,
    /// takeover policy).
    connects_refused,
    /// CONNECTs refused because the broker sends clients to another server (server
    /// redirection). Also counted in `connects_refused`.
    connects_redirected,
    /// CONNECTs refused with CONNACK 1 for a protocol level other than 4 (`MQTT`) or 3
    /// (`MQIsdp`), such as an MQTT 5 client's. Also counted in `connects_refused`.
    protocol_level_refused,
    /// Connections closed because CONNECT did not arrive in time.
    connect_timeouts,
    /// Connections closed for bytes that are not a valid MQTT packet.
    malformed_packets,
    /// Connections closed for a packet larger than `max_packet_size`.
    oversize_packets,
    /// Connections closed for a protocol violation (first packet not CONNECT, second
    /// CONNECT, unknown packet id, packet not allowed from a client).
    protocol_errors,
    /// Connections closed for a PUBLISH to an invalid topic name, or a SUBSCRIBE or
    /// UNSUBSCRIBE with an invalid topic filter.
    invalid_topics,
    /// SUBSCRIBE entries refused (invalid filter, another client's P2P address).
    subscriptions_refused,
    /// Connections closed for silence longer than 1.5 times the keep-alive.
    keep_alive_expired,
    /// Connections closed by a takeover (a newer connection with the same client id).
    takeovers,
    /// Times a publisher had to wait for room in a full receiver's inbox (backpressure).
    backpressure_waits,
    /// Publishers disconnected after waiting longer than `backpressure_timeout`.
    backpressure_timeouts,
    /// Messages accepted from clients and the embedding API.
    messages_received,
    /// Messages handed to receivers (one per receiver).
    messages_delivered,
    /// QoS 0 messages dropped because a receiver's inbox was full.
    qos0_dropped,
    /// Messages a session did not keep (offline QoS 0, clean session, queue limit, age, a
    /// cloud SDK queue removed with what it held).
    session_dropped,
    /// Queued messages dropped because their session's queue was full (`max_queued_messages`
    /// or `max_queued_bytes`: the oldest go first). Also counted in `session_dropped`.
    queue_full_dropped,
    /// Deliveries a full queue refused. Also counted in `session_dropped`.
    queue_full_refused,
    /// Messages dropped alone larger than `max_queued_bytes`. Also counted in
    /// `session_dropped`.
    queue_too_large,
    /// Queued messages dropped for their age (`message_ttl_ms`). Also counted in
    /// `session_dropped`.
    queue_expired,
    /// Pages of offline queues read back from the store for reconnected clients.
    queue_pages_read,
    /// P2P messages whose target client id has no session.
    p2p_no_target,
    /// Wills published after an abnormal close.
    wills_published,
    /// CONNECTs the authenticator refused (bad credentials, unknown key, wrong instance,
    /// unregistered group, expired token, will topic not allowed...). Also counted in
    /// `connects_refused`.
    auth_failures,
    /// PUBLISHes dropped because the connection's grants do not allow the topic (QoS 1 and
    /// 2 ones are still acknowledged).
    publish_denied,
    /// SUBSCRIBE entries refused (0x80) because the grants do not allow the filter or
    /// `refuse_subscribe` names it. Also counted in `subscriptions_refused`.
    subscribe_denied,
    /// Connections closed through the HTTP API (`CloseConnection`, or a client id put on the
    /// connect blacklist).
    api_disconnects,
    /// Connections closed because their login token expired or was revoked.
    token_disconnects,
    /// HTTP API requests answered (any status).
    api_requests,
    /// HTTP API requests refused for their signature (unknown key, mismatch, date, replay).
    api_auth_failures,
    /// HTTP API requests answered with a 4xx or 5xx status.
    api_errors,
    /// Transactions the store writer committed (each carries the writes of every connection
    /// that was waiting: group commit).
    store_commits,
    /// Of those, the ones committed without waiting for the disk: they only removed
    /// acknowledged QoS 1 messages from queues, and a durable commit follows within a
    /// second.
    store_lazy_commits,
    /// Store writes that failed (their acknowledgements were not sent) and failed sweeps.
    store_errors,
    /// RocketMQ bridge: outflow and status messages RocketMQ accepted.
    rocketmq_produced,
    /// RocketMQ bridge: messages consumed from RocketMQ by the inflow rules.
    rocketmq_consumed,
    /// RocketMQ bridge: messages given up (unmappable either way, status events lost to a
    /// lagging forwarder, unsent at shutdown).
    rocketmq_failed,
    /// RocketMQ bridge: sends attempted again after a failure.
    rocketmq_retried,
    /// RocketMQ bridge: messages waiting for RocketMQ now (a gauge, not a counter).
    rocketmq_buffered,
    /// Cluster: route messages (application messages for the other nodes), presence
    /// messages and heartbeats RocketMQ accepted.
    cluster_sent,
    /// Cluster: route messages of other nodes this node consumed and routed to its own
    /// receivers.
    cluster_received,
    /// Cluster: messages given up (unreadable route, presence or heartbeat messages, route
    /// and presence messages unsent at shutdown, presence messages lost to a full lane,
    /// heartbeats RocketMQ did not take).
    cluster_failed,
    /// Cluster: route and presence sends attempted again after a failure.
    cluster_retried,
    /// Cluster: route and presence messages waiting for RocketMQ now (a gauge, not a
    /// counter).
    cluster_buffered,
    /// Cluster: route messages skipped because they are older than this node's first start
    /// (a new node does not replay the instance's history).
    cluster_skipped_old,
    /// Cloud SDK endpoint: AMQP connections served.
    amqp_connections,
    /// Cloud SDK endpoint: messages published by backends.
    amqp_published,
    /// Cloud SDK endpoint: publishes confirmed (`basic.ack`) once routed.
    amqp_confirmed,
    /// Cloud SDK endpoint: publishes refused (`basic.nack`): grants, bad topic, no room.
    amqp_publish_nacked,
    /// Cloud SDK endpoint: deliveries to consumers (redeliveries included).
    amqp_delivered,
    /// Cloud SDK endpoint: deliveries acknowledged.
    amqp_acked,
    /// Cloud SDK endpoint: deliveries refused without requeue, and dropped.
    amqp_nacked,
    /// Cloud SDK endpoint: deliveries sent again after their channel closed unacknowledged.
    amqp_redelivered,
    /// Cloud SDK endpoint: connections open now (a gauge, not a counter).
    amqp_connections_open,
    /// Cloud SDK endpoint: channels open now over all connections (a gauge, not a counter).
    amqp_channels_open,
    /// Cloud SDK endpoint: consumers attached now over all connections (a gauge, not a
    /// counter).
    amqp_consumers_open,
    /// Message trace: records written to the trace log.
    trace_written,
    /// Message trace: records dropped because the trace writer's buffer was full (a
    /// connection never waits for the trace).
    trace_dropped,
    /// Message trace: batches the trace log failed to write or sweep (their records are lost).
    trace_errors,
}

/// The fields of [`Metrics`] that are gauges (values now) rather than counters: `/metrics`
/// exposes them as `mqgate_{name}` of type gauge instead of `mqgate_{name}_total`.
pub(crate) const GAUGES: &[&str] = &[
    "rocketmq_buffered",
    "cluster_buffered",
    "amqp_connections_open",
    "amqp_channels_open",
    "amqp_consumers_open",
];
