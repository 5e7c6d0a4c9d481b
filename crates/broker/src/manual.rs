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
//!   transaction of its message, so a resent PUBLISH after a crash is recognised.
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
