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
//! written. The defaults: 64 handles,
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
//! invalid topic, SUBSCRIBE or UNSUBSCRIBE with an invalid topic filter, packet ids the session does not know, oversize packets (refused from the
//! fixed header, before the body is buffered) and silence past 1.5 x keep-alive each close
//! only that connection, logged with the reason and counted in [`Metrics`](crate::Metrics).
//! A valid filter the broker will not serve (a P2P address, a malformed `$share` group, one
//! deeper than the trie allows) is refused in the SUBACK (0x80) without closing.
