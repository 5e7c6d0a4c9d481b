//! [`AmqpSettings`]: the cloud SDK endpoint's queues (the `[amqp]` section).

use serde::Deserialize;

/// The queues of the cloud SDK endpoint (the `[amqp]` section). Each parent topic's queue
/// is a persistent session of the broker's own (client id `$amqp/{parent}`, subscribed to
/// `{parent}/#` at QoS 1): what waits in it is kept in the store like an offline client's
/// queue, survives a restart, and a device's QoS 1 or 2 PUBLISH to the parent topic is
/// acknowledged once the queue holds it.
///
/// ```
/// use mqgate_broker::BrokerConfig;
/// let config = BrokerConfig::from_toml_str(
///     "[amqp]\nqueues = [\"orders\"]\nmax_queued_messages = 5000\n",
/// )?;
/// assert_eq!(config.amqp.queues, ["orders"]);
/// assert_eq!(config.amqp.max_queued_messages, 5000);
/// assert_eq!(config.amqp.inflight_window, 256);
/// # Ok::<(), mqgate_broker::BrokerError>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    /// Parent topics whose queues exist from start-up, collecting device messages before
    /// any consumer attaches. Any other parent topic's queue is made by the first
    /// `basic.consume` on it; either kind lasts (in the store, across restarts) until it is
    /// removed. Empty by default.
    pub queues: Vec<String>,
    /// Most messages one queue holds (waiting, not yet delivered to a consumer). Past it the
    /// oldest is dropped, counted in `/metrics` (`mqgate_amqp_queue_dropped_total` and
    /// `mqgate_queue_full_dropped_total`) and logged (at most once a second). 1 000 000 by
    /// default.
    pub max_queued_messages: usize,
    /// Most bytes (topic + payload) one queue holds; past it as for
    /// [`max_queued_messages`](Self::max_queued_messages). 1 GiB by default.
    pub max_queued_bytes: usize,
    /// Most deliveries of one queue unacknowledged at once over all its consumers (each
    /// consumer is further bounded by its `basic.qos` prefetch). 256 by default, at least 1.
    /// Each save of the queue's state (after every batch of deliveries or acknowledgements)
    /// writes its in-flight list, so a wider window costs more per save.
    pub inflight_window: u16,
}

impl Default for AmqpSettings {
    fn default() -> Self {
        AmqpSettings {
            queues: Vec::new(),
            max_queued_messages: 1_000_000,
            max_queued_bytes: 1 << 30,
            inflight_window: 256,
        }
    }
}
