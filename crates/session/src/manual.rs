//! The rules this crate implements, in prose: the MQTT 3.1.1 session rules and mqgate's
//! offline-message rules (SPEC.md section 3). Nothing here is code.
//!
//! # Offline messages: QoS × cleanSession
//!
//! What happens to a message depends on the QoS it is delivered at (the lower of the
//! publish QoS and the subscription's granted QoS) and on the cleanSession flag of the
//! receiver's last CONNECT:
//!
//! | QoS | cleanSession = 1 | cleanSession = 0 |
//! |---|---|---|
//! | 0 | no offline delivery; one attempt while online | no offline delivery; one attempt while online |
//! | 1 | no offline delivery; delivery guaranteed while online | kept while offline and delivered; online and offline delivery guaranteed |
//! | 2 | no offline delivery; exactly once while online | **beyond the model service**: kept while offline and delivered exactly once |
//!
//! In terms of [`DeliveryOutcome`](crate::DeliveryOutcome):
//!
//! - QoS 0, online: `Sent`, immediately, whatever the window (QoS 0 uses no packet id).
//!   It is never queued, online or offline, so it cannot delay or evict QoS 1 and 2 traffic.
//!   The broker's write path is its only buffer; the broker stops feeding a slow client.
//! - QoS 0, offline: `Dropped(Offline)`.
//! - QoS 1 or 2, online: `Sent` when nothing is queued and the in-flight window has room,
//!   otherwise `Queued` behind the queue (a clean session queues while online too: that is
//!   how a slow client is not flooded).
//! - QoS 1 or 2, offline, cleanSession = 1: `Dropped(CleanSession)`.
//! - QoS 1 or 2, offline, cleanSession = 0: `Queued` (or the queue's policy, below).
//!
//! "Offline" starts at DISCONNECT or at [`connection_lost`](crate::Session::connection_lost),
//! whichever comes first.
//!
//! # Sessions and connections
//!
//! - CONNECT with cleanSession = 1 discards any stored session (each message in it is reported
//!   as `Dropped(SessionDiscarded)`), and the state it builds lasts until the connection ends
//!   (MQTT-3.1.2-6). The CONNACK's session-present flag is 0.
//! - CONNECT with cleanSession = 0 resumes the stored session if there is one
//!   (session-present 1, MQTT-3.2.2-2) or starts one. On resume, before anything else, every
//!   PUBLISH not yet acknowledged is sent again with DUP = 1 and the same packet id, and every
//!   PUBREL owed is sent again, in the order they were first sent (MQTT-4.4.0-1, 4.6.0-1).
//!   Then the queue is released under the pacing.
//! - The will is kept for the connection and returned by `connection_lost` unless the client
//!   sent DISCONNECT first (MQTT-3.1.2-8, -10). A keep-alive expiry is an abnormal end.
//! - Keep-alive: a connection from which nothing arrives for 1.5 × its keep-alive is closed
//!   (MQTT-3.1.2-24). 0 disables the check. Any packet resets the timer; PINGREQ is answered
//!   with PINGRESP inside the session.
//! - A second CONNECT, a packet only servers send, any packet after DISCONNECT and an
//!   acknowledgement for a packet id nothing waits for are protocol violations: the driver
//!   closes the connection (MQTT-4.8.0-1).
//!
//! # Inbound QoS
//!
//! - QoS 0: the PUBLISH is routed; nothing is sent back.
//! - QoS 1: routed; the PUBACK goes out only when the broker calls
//!   [`inbound_done`](crate::Session::inbound_done), so a message is acknowledged only once it
//!   is safe. A repeat is routed again and acknowledged again, as at least once allows.
//!   (MQTT 3.1.1 asks clients to repeat only after reconnecting; a client that repeats on the
//!   same connection can get a second PUBACK after it has reused the id, which the protocol
//!   cannot tell apart.)
//! - QoS 2: the packet id enters the awaiting-PUBREL set at the first PUBLISH. A repeat with
//!   that id before PUBREL is never routed again; it is answered with another PUBREC once the
//!   first copy is safe. PUBREL removes the id and is answered with PUBCOMP; after that the id
//!   names a new message (MQTT-4.3.3-2). Once the broker has polled the PUBLISH event, the id
//!   is part of the saved record even before the message is safe (the broker saves it with
//!   the message's store writes), so the state moves with the session to the next
//!   connection. A message the broker could not keep is reported with
//!   [`inbound_failed`](crate::Session::inbound_failed): the id is released and the resend is
//!   routed as a new message.
//! - PUBACKs and PUBRECs leave in the order the PUBLISHes arrived (MQTT-4.6.0-2, -3), even if
//!   the broker makes messages safe in another order.
//! - A PUBREL for an id not in the set is a violation on a new session. On a resumed session
//!   it is answered with PUBCOMP: it is the client repeating a PUBREL whose PUBCOMP was lost
//!   with the previous connection, and refusing it would make that client reconnect forever.
//! - An id whose message the broker had not made safe is not part of the persistent state: the
//!   PUBREC was never sent, so the client still owns the message and will send it again.
//!
//! # Outbound QoS
//!
//! - Packet ids go 1, 2, … 65 535, 1, … skipping ids still in flight (MQTT-2.3.1-2).
//! - At most `inflight_window` messages are unacknowledged at once; the rest wait in the queue.
//! - QoS 1: PUBLISH, then PUBACK frees the id. QoS 2: PUBLISH, PUBREC (the message is
//!   released and never sent again), PUBREL, then PUBCOMP frees the id. A repeated PUBREC is
//!   answered with the PUBREL again.
//! - Each PUBACK and first PUBREC is reported as [`Event::Acknowledged`](crate::Event::Acknowledged),
//!   a point of the message trace.
//!
//! # Limits and policies
//!
//! - `max_queued_messages` and `max_queued_bytes` (topic + payload) bound the queue. When a new
//!   message would exceed one, [`FullPolicy::DropOldest`](crate::FullPolicy::DropOldest) evicts
//!   the oldest messages (each reported as `Dropped(QueueFull)`) and
//!   [`FullPolicy::RefuseNew`](crate::FullPolicy::RefuseNew) answers `Refused`, so the broker
//!   can push back on the publisher. A message larger than the byte limit alone is
//!   `Dropped(TooLarge)`.
//! - `message_ttl_ms`: a queued message older than this (counted from
//!   `published_at_ms`) is dropped, reported as `Dropped(Expired)`, when it reaches the head
//!   of the queue, when a client resumes, when a new message is queued behind it and on
//!   restore. Messages already in flight are not expired: the client may have them.
//! - The in-flight window is at least 1.
//!
//! # Pacing after a reconnect
//!
//! - [`Pacing::Window`](crate::Pacing::Window) (default): queued messages go out as fast as the
//!   in-flight window frees up, which never floods a slow client.
//! - [`Pacing::Batches`](crate::Pacing::Batches): at most `size` queued messages per
//!   `interval_ms`, and still never more than the window. The first batch starts at CONNECT.
//!   [`Pacing::MODEL_SERVICE`](crate::Pacing::MODEL_SERVICE) is the model service's 30
//!   messages per 5 s. Pacing applies to messages released from the queue; once the queue is
//!   empty, new messages are sent as soon as the window allows.
//!
//! # Persistence
//!
//! [`Session::persistent_state`](crate::Session::persistent_state) is the state MQTT-3.1.2-4
//! lists for the server: subscriptions, queued QoS 1 and 2 messages, in-flight messages with
//! their packet ids and stage, the inbound awaiting-PUBREL ids, plus the packet id counter.
//! [`Session::record`](crate::Session::record) is the same with messages by id only, for a
//! store that keeps each message once however many sessions hold it.
//! [`Session::record_without_queue`](crate::Session::record_without_queue) leaves the queue
//! out, for a store that keeps the queue itself entry by entry (the broker saves it whenever
//! it changed, before writing to the client); the bodies it needs besides the queue's are
//! [`Session::inflight_messages`](crate::Session::inflight_messages).
