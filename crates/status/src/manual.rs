//! The rules this crate implements, and why (SPEC.md section 4).
//!
//! This module has no code; it is the design rationale, kept next to the
//! code it explains, in the manner of rustls's `manual`.
//!
//! # Channel ids
//!
//! Every TCP connection gets a [`ChannelId`](crate::ChannelId): 128 random
//! bits, written as 32 lowercase hex characters. The SPEC asks for ids that
//! are unique for the broker's life *and across restarts and nodes*. A counter
//! cannot give that without coordination (it restarts at zero, and two nodes
//! count the same numbers); 128 random bits collide with negligible
//! probability, need no state, and look like the ids the model service emits
//! (`2b9b1281046046faafe5e0b458e4....`).
//!
//! # Events of a connection
//!
//! A connection produces, in this order:
//!
//! 1. exactly one `connect`, when its CONNECT was accepted;
//! 2. at most one `disconnect`, only if the client sent an MQTT DISCONNECT;
//! 3. exactly one `tcpclean`, when the TCP connection closed for any reason
//!    (client close, keep-alive timeout, protocol error, client-id takeover,
//!    broker shutdown).
//!
//! [`ConnectionEvents`](crate::ConnectionEvents) makes the rule hard to
//! break: its constructor returns the `connect`, and its other methods return
//! an event only the first time and never after `tcpclean`. A driver that
//! also calls `finish` from `Drop` cannot lose the `tcpclean`.
//!
//! # The JSON body
//!
//! ```text
//! {"clientId":"GID_test@@@0001","time":1566356567883,"eventType":"tcpclean",
//!  "channelId":"2b9b1281046046faafe5e0b458e4a1c7","clientIp":"192.168.1.20:57322","seq":12}
//! ```
//!
//! The first five keys are the model service's. `seq` is ours: events of one
//! client in the same millisecond are otherwise unordered. Readers accept
//! bodies without `seq` (it reads as 0) and ignore keys they do not know.
//!
//! # Deciding who is online
//!
//! Events travel through queues and consumers: they arrive late, out of
//! order and more than once. The rules of the [`Reconciler`](crate::Reconciler):
//!
//! - Events of one client are ordered by `time`, then `seq`.
//! - A client can have several channels at once (it flaps, or is being
//!   taken over), so **an offline event counts only against the channel it
//!   names**: it may change the state of that channel and of no other.
//! - **A client is online when some channel has a `connect` and no
//!   `tcpclean`.**
//! - **`tcpclean`, not `disconnect`, proves a channel closed.** A
//!   `disconnect` says the client asked to leave; until the TCP connection is
//!   gone the client is still there.
//!
//! The reconciler keeps, per channel, the earliest stamp it has seen of each
//! event type. Merging an event into that record is commutative and
//! idempotent, so the state after any arrival order, with any duplicates, is
//! the state after the events sorted by `(time, seq)`. In particular a
//! `tcpclean` that arrives *before* its channel's `connect` leaves a tombstone,
//! and the late `connect` is matched to it and does not bring the client
//! online.
//!
//! # Worked example: a client that flaps
//!
//! A phone `GID_app@@@phone` on a train connects on channel `A` at t = 1 000.
//! At t = 4 000 it enters a tunnel; the socket is dead but the broker does not
//! know yet. At t = 5 000 the phone, on a new socket, connects again: channel
//! `B`. The broker notices `A` is dead only when its keep-alive expires, at
//! t = 5 100. The events, in the order they happened:
//!
//! | time | event | channel |
//! |---|---|---|
//! | 1 000 | connect | A |
//! | 5 000 | connect | B |
//! | 5 100 | tcpclean | A |
//!
//! A consumer that keeps only "the last event of the client" sees `tcpclean`
//! last and wrongly marks the phone offline, although it is connected on `B`.
//! The reconciler instead sees `A` closed and `B` open: online, since 5 000.
//!
//! Now the consumer receives the same events in another order, `tcpclean A`
//! first (another partition was faster), then `connect B`, then `connect A`.
//! After `tcpclean A` the reconciler has a tombstone for `A` and the client is
//! offline. `connect B` makes it online. The late `connect A` is merged into
//! `A`'s tombstone and changes nothing. Same answer: online through `B`,
//! since 5 000. Any order, any duplicates, the same answer: that is what the
//! crate's property tests check, for every permutation of short histories of
//! several flapping clients and for many random permutations and duplications
//! of longer ones.
//!
//! # Bounded memory
//!
//! Closed channels are remembered as tombstones so that their late events
//! are recognised. [`Reconciler::forget_before`](crate::Reconciler::forget_before)
//! drops tombstones older than a configurable horizon and raises a watermark:
//! an event older than the watermark for a channel the reconciler does not
//! remember is refused as [`TooLate`](crate::Applied::TooLate), because it may
//! belong to a channel already closed and forgotten. The horizon must
//! therefore exceed the longest delay of the event pipeline. Open channels are
//! never forgotten: they are the answer.
//!
//! # Online since
//!
//! [`online_since`](crate::Reconciler::online_since) is the `connect` time of
//! the oldest channel still open. After a flap it is the time of the new
//! connection, not of the first one: the reconciler answers from the channels
//! that are up, so the answer does not depend on how long tombstones are kept.
