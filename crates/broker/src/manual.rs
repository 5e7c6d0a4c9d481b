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
//! session in its registry slot while the client is away and queues into it; the session
//! resends after CONNECT.
//!
//! ## Durability (issue 9)
//!
//! SPEC: a message the broker has acknowledged for a persistent session survives a crash.
//! Everything durable goes through one store writer (a thread): connection tasks submit ops,
//! the writer applies everything waiting as one transaction (group commit: one fsync for
//! the writes of every connection that was waiting) and publishes the last committed
//! submission; a task awaits its submission's ticket.
//!
//! - A QoS 1 or 2 message routed to a persistent session (online or offline, plain or P2P)
//!   is enqueued in the store for that session, once per message body. The enqueues are
//!   submitted before any receiver gets the message, so anything a receiver writes about it
//!   later commits after them. The publisher's PUBACK (PUBREC) is sent only once the
//!   transaction holding them committed; a connection routes everything one read brought,
//!   then waits once for the last commit. Traffic that reaches no persistent session submits
//!   nothing.
//! - A persistent session saves its record (subscriptions, outbound in-flight packet ids,
//!   inbound QoS 2 ids awaiting PUBREL) whenever it changed, and the save commits before the
//!   connection writes to its client. So a QoS 2 PUBLISH goes out only with its packet id on
//!   disk (after a crash it is resent with DUP and the same id, never as a new message), a
//!   SUBACK only once the subscription is durable, a PUBCOMP only once the id left the
//!   awaiting set. A message moving from the queue into flight leaves the stored queue in
//!   the same transaction. A persistent publisher's QoS 2 id awaiting PUBREL commits in the
//!   transaction of its message, so a resent PUBLISH after a crash is recognised; the id is
//!   the session's state, so the first save of a connection that resumes the session keeps
//!   it too.
//! - A QoS 2 message whose route did not finish (receivers full until the backpressure
//!   timeout, or the connection kicked while it waited) counts as accepted once its commit is
//!   done: its resend gets a PUBREC and is not routed twice; the receivers still full miss it.
//!   A PUBLISH read but not routed before the connection closed releases its id (the resend
//!   is routed), and so does one whose store write failed.
//! - A CONNECT with cleanSession = 1 removes a stored session; retained messages are written
//!   through (set and clear). The retained messages a new subscription of a persistent
//!   session receives at QoS 1 or 2 are enqueued for it (committed before the session takes
//!   them), like routed ones.
//! - At start the store's sessions (offline, with subscriptions in the trie and queues),
//!   and retained messages are restored before any listener opens. A file that cannot be
//!   read stops start-up with an error naming it. A sweep removes expired messages in
//!   batches of 1024, every quarter of `message_ttl_ms` (at least every 100 ms, at most
//!   every minute).
//! - A connection that ends while acknowledgements wait for a commit first waits (at most
//!   the backpressure timeout) for that commit and marks those messages safe in the session:
//!   a persistent publisher that resends a QoS 2 PUBLISH on its next connection gets its
//!   PUBREC, and the message is not routed twice.
//! - When the store refuses a write, the connections waiting for it close without their
//!   acknowledgements (`store_errors`); other connections are unaffected.
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
//! publisher (which resends what was not acknowledged). QoS 0 to a full inbox waits too, but
//! at most `qos0_wait` (100 ms): that is the flow control that lets a fast publisher go only
//! as fast as its receivers instead of overrunning them; after that the message is dropped
//! for that receiver and counted (`qos0_dropped`), and the publisher drops further QoS 0
//! messages to that receiver at once for a second, so a stuck client slows nobody down for
//! long. A connection takes from its inbox only while its session's
//! queue is below its limits, so the session never has to drop an acknowledged message
//! because it arrived too fast.
//!
//! Memory per connection is therefore bounded by: `inbox_capacity` message handles (the
//! messages themselves are shared `Arc`s, never copied per receiver), the session queue
//! (`max_queued_messages` and `max_queued_bytes`) plus the in-flight window
//! (`inflight_window` messages), one read buffer holding at most one partial packet of at
//! most `max_packet_size` plus what one read brought, and one write buffer holding one batch
//! of encoded packets (at most 256 inbox messages plus the session's answers). An idle
//! connection holds neither buffer: reads go through a stack array and are copied into a
//! buffer of their size, which is released once decoded; the write buffer is released once
//! written. The defaults: 1024 handles (24 KiB when full; none while empty),
//! 1000 messages / 16 MiB queued, 32 in flight, 1 MiB packets.
//!
//! ## Status events (SPEC section 4)
//!
//! Each accepted connection gets a random channel id and emits exactly one `connect`, at
//! most one `disconnect` (on an MQTT DISCONNECT) and exactly one `tcpclean`, in that order,
//! to the in-process broadcast and the `mqgate::status` log target. `is_online` answers from
//! the live registry.
//!
//! ## Authentication and authorisation (SPEC section 2)
//!
//! One [`Authenticator`](crate::Authenticator) decides each CONNECT before the session is
//! touched, and answers with the connection's [`Grants`](mqgate_auth::Grants): an embedder's
//! own if one was given, else mqgate-auth's over `[auth]` (the three username modes, the rules
//! and CONNACK codes of `mqgate_auth::manual::connect`), else [`AllowAnonymous`](crate::AllowAnonymous)
//! when `allow_anonymous`, else [`DenyAll`](crate::DenyAll) (an embedder's authenticator
//! replaces only the CONNECT check: the HTTP API still signs with `[auth]`'s AccessKeys and
//! manages its registries). With `[auth]`, anonymous access
//! still needs `allow_anonymous`, and a CONNECT that sends a username is checked even then. A
//! refusal is answered with its code, logged with the reason (never sent to the client) and
//! counted in `auth_failures` and `connects_refused`. A will whose topic the grants do not let
//! the client publish refuses the CONNECT (5): the will is a publish made on its behalf.
//!
//! The grants are fixed for the connection's life. Every PUBLISH is checked: a refused one is
//! dropped and counted (`publish_denied`), and at QoS 1 and 2 it is still acknowledged
//! (PUBACK, PUBREC), as MQTT 3.1.1 allows a server to do with a message it discards; otherwise
//! the client would resend it forever. The connection stays. Every SUBSCRIBE filter is
//! checked: a refused one gets 0x80 in the SUBACK (`subscribe_denied`). A filter aimed at
//! another client's P2P address is refused whatever the policy, and the router never delivers
//! a P2P topic through the trie, so no wildcard reaches another client's P2P messages. So is a
//! filter lying within one of the configuration's `refuse_subscribe` filters (for everyone;
//! a wider filter is not refused and receives those topics too).
//!
//! A token's expiry or revocation stops new connections at once. Live connections that logged
//! in with it keep going, unless `auth.disconnect_on_token_invalid` is on: then a background
//! check (every `token_check_interval_ms`, and at once after `RevokeToken`) closes them
//! (`token_disconnects`).
//!
//! Groups, tokens and device credentials are kept by `mqgate_store::DurableRegistry` in the
//! broker's store: written through to it before the answer, read from memory on each CONNECT.
//!
//! ## The HTTP API
//!
//! `[http]` (on by default at 127.0.0.1:8090) serves the model service's OpenAPI, version
//! 2020-04-20, RPC style: path `/`, any method; the action and version from the
//! `x-acs-action` / `x-acs-version` headers or the `Action` / `Version` parameters;
//! parameters from the query string and an `application/x-www-form-urlencoded` body (a name
//! given twice is refused). Every request must be signed by a configured AccessKey whose
//! `api` is on, with ACS3-HMAC-SHA256 or the legacy RPC HMAC-SHA1 (`mqgate_auth::manual::openapi`:
//! date within `signature_window_ms`, nonce never reused), and name the broker's
//! `InstanceId`. The checks run in that order: signature, action, version, instance, then
//! the action's own parameters, so an unsigned caller learns nothing else.
//!
//! Answers are JSON with the PascalCase keys the SDKs read and a `RequestId` (also in the
//! `x-acs-request-id` header). Errors are 4xx/5xx with exactly `{Code, Message, RequestId}`:
//! `MissingParameter.{Name}` and `InvalidParameter.{Name}` (400) name the parameter;
//! signature failures use the model service's codes (`SignatureDoesNotMatch`,
//! `InvalidTimeStamp.Expired`, `SignatureNonceUsed`: 400; `InvalidAccessKeyId.NotFound`: 404);
//! `Forbidden.*` (403) for what a key may not do; `*.NotFound` (404); 503 when the registry
//! or the router cannot take the request. Choices the model leaves open: `QueryToken` of a
//! token the key did not issue answers `TokenStatus: false`; `CloseConnection` of a client
//! that is not online answers `Success: false`; `CreateGroupId` of an existing group is a 409;
//! `SendMessage` publishes at QoS 1, not retained, the payload as sent, only to topics the
//! signing key may publish to, and goes through the router like
//! [`BrokerHandle::publish`](crate::BrokerHandle::publish) (a P2P address reaches its target).
//!
//! Bounds: a request body above `http.max_body_bytes` gets a 413; at most
//! `http.max_connections` connections are open at once (more wait in the kernel's backlog);
//! a connection with nothing read or written for `http.idle_timeout_ms` is closed. Registry
//! actions run on tokio's blocking pool, since their writes commit (fsync) to the store.
//!
//! `GET /metrics` serves every [`Metrics`](crate::Metrics) counter as
//! `mqgate_{name}_total` (Prometheus text format 0.0.4) with gauges of the clients online and
//! of the store; `GET /healthz` answers 200 `ok`, or 503 while shutting down or when the
//! store does not answer.
//!
//! ## Bad input
//!
//! A CONNECT with a protocol level other than 4 (`MQTT`) or 3 (`MQIsdp`), such as an MQTT 5
//! client's, gets CONNACK 1 (unacceptable protocol version) and the connection closes
//! (MQTT-3.1.2-2; counted in `protocol_level_refused` and `connects_refused`). Any other
//! malformed CONNECT, an unknown protocol name included, closes without a CONNACK.
//! A client id the configured rules (`limits.client_id_rules`: MQTT's, or the managed
//! service's) refuse gets CONNACK 2.
//!
//! Malformed packets, a first packet that is not CONNECT, a second CONNECT, PUBLISH to an
//! invalid topic, SUBSCRIBE or UNSUBSCRIBE with an invalid topic filter, packet ids the session does not know, oversize packets (refused from the
//! fixed header, before the body is buffered) and silence past 1.5 x keep-alive each close
//! only that connection, logged with the reason and counted in [`Metrics`](crate::Metrics).
//! A valid filter the broker will not serve (a P2P address, a malformed `$share` group, one
//! deeper than the trie allows) is refused in the SUBACK (0x80) without closing.
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
