//! # mqgate-session
//!
//! Everything an MQTT 3.1.1 broker knows about one client, between and during its
//! connections, as a state machine with no I/O and no clock: QoS 0, 1 and 2 both ways, packet
//! ids, the in-flight window, the offline queue with its limits, the will and the keep-alive.
//! An MQTT 5 client runs on the same state machine: see [`Session::handle_publish_v5`],
//! [`Session::connect_with`] and [`Session::poll_transmit_with_message`].
//!
//! ## The contract
//!
//! ```text
//!            connect(&Connect, now) ─┐          ┌─▶ poll_transmit() -> Packet   (encode, write)
//!   handle_packet(Packet, now) ──────┤          ├─▶ poll_event()    -> Event    (route, subscribe, close)
//!   handle_delivery(Arc<Message>,    ├─▶ Session┤
//!                   granted, now) ───┤          └─▶ poll_timeout()  -> Option<u64 ms>
//!   inbound_done / subscribed /      │
//!   unsubscribed / handle_timeout ───┤
//!   connection_lost(now) -> will ────┘
//! ```
//!
//! - Time is milliseconds as a `u64`, passed into every input that needs it; the session
//!   never reads a clock, so tests run days of retention in microseconds. The driver's clock
//!   must never go back: keep-alive deadlines and pacing are measured on it. A queued
//!   message's age is `now` minus its [`Message::published_at_ms`], a stored wall-clock
//!   time, so the clock should also read about Unix time (mqgate's broker passes a monotonic
//!   clock that starts at the wall-clock time of the process's first reading).
//! - After every batch of inputs the driver drains [`Session::poll_transmit`] (and writes it
//!   all at once), then [`Session::poll_event`], then re-arms its timer from
//!   [`Session::poll_timeout`] and calls [`Session::handle_timeout`] when it fires.
//! - The session sends the CONNACK: [`Session::connect`] is called only for an accepted
//!   connection and puts the CONNACK first in `poll_transmit`, before any resent message.
//! - Inbound QoS 1 and 2 messages are acknowledged only once the broker calls
//!   [`Session::inbound_done`] with the event's token, that is, once the message is safe.
//! - A [`SessionError`] is a protocol violation: the driver closes the connection and calls
//!   [`Session::connection_lost`]. Nothing a peer sends can make the session panic.
//! - Messages are [`Arc<Message>`](Message), shared by all receivers; a QoS 0 delivery
//!   allocates nothing.
//!
//! ```
//! use std::sync::Arc;
//! use mqgate_codec::{ByteStr, Connect, Packet, PacketId, Publish, QoS};
//! use mqgate_session::{Event, Session, SessionConfig};
//!
//! let mut session = Session::new(ByteStr::from_static("GID_shop@@@tag-0042"), SessionConfig::default());
//! let outcome = session.connect(&Connect { keep_alive: 30, ..Connect::default() }, 0)?;
//! assert!(!outcome.session_present);
//!
//! // The client publishes at QoS 1.
//! let id = PacketId::new(7).unwrap();
//! let publish = Publish::new(QoS::AtLeastOnce, Some(id),
//!     ByteStr::from_static("a/b"), bytes::Bytes::from_static(b"hi"));
//! session.handle_packet(Packet::Publish(publish), 10)?;
//! let Some(Event::Publish { token: Some(token), .. }) = session.poll_event() else { panic!() };
//! // ... the broker routes the message, then:
//! session.inbound_done(token);
//! assert!(matches!(session.poll_transmit(), Some(Packet::ConnAck(_))));
//! assert_eq!(session.poll_transmit(), Some(Packet::PubAck(id)));
//! // Keep-alive 30 s: the client is dropped after 45 s of silence.
//! assert_eq!(session.poll_timeout(), Some(10 + 45_000));
//! # Ok::<(), mqgate_session::SessionError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backlog;
mod config;
mod delivery;
mod error;
mod event;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod inbound;
mod message;
mod outbound;
mod persist;
mod queue;
mod session;
mod thin;

pub use backlog::{PageEntry, QueueCounters, QueuePage, QueueRead};
pub use config::{FullPolicy, Pacing, QueueBounds, SessionConfig};
pub use error::{RestoreError, SessionError};
pub use event::{ConnectOutcome, DeliveryOutcome, DropReason, Event, InboundToken};
pub use message::{Message, MessageId};
pub use persist::{InFlightRef, InFlightStage, PersistentSession, QueuedRef, SessionRecord};
pub use session::{OutgoingMessage, Session, Subscription, PROTOCOL_V311};

// The README's example runs as a doctest, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
