//! # The broker's rules, in prose
//!
//! ## Routing (SPEC sections 1 and 6)
//!
//! A PUBLISH's topic is first checked for a P2P address, `{parent}/p2p/{clientId}`. Such a
//! message goes straight to that client's registry slot, with no trie lookup, whether or not
//! the client subscribed: online, into its inbox; offline with a persistent session, into
//! its queue (QoS 1 and 2). P2P messages never go through the trie and are never retained,
//! and a SUBSCRIBE to a P2P address (anyone's) is refused, so no client receives another's
//! P2P messages. Any other topic is matched in the subscription trie: each plain subscriber
//! once, at the highest QoS among its matching filters; one member of each matching
//! `$share/{group}/{filter}` group (members online preferred); a topic starting with `$` is
//! not matched by a leading wildcard. Every message gets a 128-bit id: a random 64-bit node
//! prefix and a counter.
//!
//! ## Retained messages
//!
//! A PUBLISH with RETAIN=1 replaces the topic's retained message; with an empty payload it
//! clears it. A new subscription receives the matching retained messages with RETAIN=1 right
//! after its SUBACK; existing subscribers receive the PUBLISH with RETAIN=0.
//!
//! ## Offline messages (SPEC section 3)
//!
//! The session crate applies the QoS x cleanSession table. The broker keeps a persistent
//! session in its registry slot while the client is away (in memory in this landing; the
//! durable store is a later one) and queues into it; the session resends after CONNECT.
//!
//! ## Takeover
//!
//! A CONNECT with a client id that is online either closes the old connection (the default,
//! `kick_old`, MQTT-3.1.4-2) or is refused with CONNACK 2 (`refuse_new`). With `kick_old` the
//! old task hands its session to the new one before the new one answers CONNECT, so the
//! session-present flag and the queued messages carry over; deliveries that arrive during
//! the handover are kept (QoS 1 and 2, up to the session's queue limit) and replayed. A
//! third connection arriving during that handover is refused (CONNACK 2); an old connection
//! that does not hand over within the CONNECT timeout loses its session to a fresh one.
//!
//! ## Backpressure and the memory bound
//!
//! A QoS 1 or 2 message is acknowledged (PUBACK, PUBREC) only once every receiver's inbox
//! took it. When an inbox is full, the publisher's task stops reading its socket and waits,
//! while still serving its own inbox and writes; after `backpressure_timeout` it closes the
//! publisher (which resends what was not acknowledged). QoS 0 to a full inbox is dropped and
//! counted (`qos0_dropped`). A connection takes from its inbox only while its session's
//! queue is below its limits, so the session never has to drop an acknowledged message
//! because it arrived too fast.
//!
//! Memory per connection is therefore bounded by: `inbox_capacity` message handles (the
//! messages themselves are shared `Arc`s, never copied per receiver), the session queue
//! (`max_queued_messages` and `max_queued_bytes`) plus the in-flight window
//! (`inflight_window` messages), one read buffer of at most `max_packet_size` plus 16 KiB,
//! and one write buffer holding one batch of encoded packets (at most 256 inbox messages
//! plus the session's answers); both buffers shrink back once empty if a spike grew them
//! past 64 KiB. The defaults: 64 handles,
//! 1000 messages / 16 MiB queued, 32 in flight, 1 MiB packets.
//!
//! ## Status events (SPEC section 4)
//!
//! Each accepted connection gets a random channel id and emits exactly one `connect`, at
//! most one `disconnect` (on an MQTT DISCONNECT) and exactly one `tcpclean`, in that order,
//! to the in-process broadcast and the `mqgate::status` log target. `is_online` answers from
//! the live registry.
//!
//! ## Bad input
//!
//! Malformed packets, a first packet that is not CONNECT, a second CONNECT, PUBLISH to an
//! invalid topic, packet ids the session does not know, oversize packets (refused from the
//! fixed header, before the body is buffered) and silence past 1.5 x keep-alive each close
//! only that connection, logged with the reason and counted in [`Metrics`](crate::Metrics).
//! An invalid filter in SUBSCRIBE is refused in the SUBACK (0x80) without closing.
//!
//! ## The RocketMQ bridge (SPEC section 5)
//!
//! Outflow: a client's PUBLISH whose parent topic has an outflow rule becomes a RocketMQ
//! message (the mapping crate's `RuleSet::outflow`) before it is routed. The connection waits
//! for room in the bridge's bounded buffer (`buffer` waiting, plus `max_in_flight` being
//! sent: a message leaves the buffer only for a free send slot) and so stops reading its socket while
//! RocketMQ is slower than its publishers: backpressure, not loss. With
//! `ack_after = "rocketmq"`, a QoS 1/2 PUBLISH is acknowledged only once RocketMQ answered
//! `SEND_OK`; meanwhile the connection still serves its own inbox and writes. A failed or
//! timed-out send is retried with doubling delays (`retry_min_ms` to `retry_max_ms`) until it
//! succeeds; a retry after a lost answer can store a message twice (at least once, never
//! lost). At shutdown the bridge has 5 s to empty its buffer; what remains is counted in
//! `rocketmq_failed`, and a publisher still waiting was never acknowledged, so it resends.
//!
//! Inflow: each inflow rule has its own consumer group, `{consumer_group}_{topic}`, in
//! clustering mode (so every node sees every message: the RocketMQ client's broadcast mode
//! loses messages). A consumed message is mapped (`RuleSet::inflow`) and routed as if
//! published by the broker, except that subscriptions are matched on
//! `{parent}{mqttSecondTopic}` while receivers see `mqttRealTopic` when set. P2P messages go to
//! the one client; `cleansessionflag = true` delivers only to a client online now, `false`
//! also into an offline persistent session (which then applies the QoS x cleanSession table).
//! The consumer's listener answers only after every receiver's inbox took the message
//! (bounded by `backpressure_timeout`); a timeout answers "later", so RocketMQ redelivers it
//! and the offset never passes an undelivered message. A message that cannot be mapped
//! (invalid `qoslevel`, topic, P2P address) is logged, counted in `rocketmq_failed` and
//! committed: retrying cannot fix it.
//!
//! Status: the bridge listens to the status broadcast; each event a status rule covers is
//! queued on one of four lanes chosen by its client id, and each lane sends one message at a
//! time, so one client's events reach RocketMQ in the order they happened; all of one client's
//! events go to the same queue of the topic (chosen by a stable hash of the client id), so an
//! orderly consumer reads them in that order. A forwarder that
//! lags behind the broadcast loses the oldest events, counted in `rocketmq_failed`.
//!
//! Health: the bridge is down from a failed send until the next successful one; both
//! transitions are logged, and `BrokerHandle::rocketmq_health` reports the state, the last
//! error, the buffered count and the running consumers.
