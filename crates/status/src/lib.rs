//! Client status for mqgate: connection life-cycle events (`connect`,
//! `disconnect`, `tcpclean`), the channel ids that name connections, and the
//! [`Reconciler`] that decides who is online from an event stream that
//! arrives late, out of order and duplicated.
//!
//! # Contract
//!
//! Sans I/O, like the rest of mqgate's protocol crates: nothing here reads
//! the clock, touches a socket or spawns a task. Time is an argument in
//! milliseconds since the Unix epoch. The only system call is
//! [`ChannelId::generate`], which asks the operating system for 16 random
//! bytes (and returns an error instead of panicking when it cannot).
//!
//! ```text
//!  broker, one task per connection          consumers (any process)
//!  ───────────────────────────────          ───────────────────────
//!  ConnectionEvents::connect(.., now) ─┐
//!  .on_disconnect_packet(now)         ├─▶ StatusEvent ─▶ sinks ─▶ Reconciler::apply
//!  .finish(now) (also from Drop)     ─┘    (to_json)    (RocketMQ,   .is_online(id)
//!                                                        listeners)  .online_channels(id)
//!                                                                    .online_since(id)
//! ```
//!
//! The broker owns one [`ConnectionEvents`] per connection and fans the
//! events it returns out to its sinks; a consumer feeds whatever it receives
//! to a [`Reconciler`]. The rules, and a worked example of a client that
//! flaps, follow the example below.
//!
//! ```
//! use std::sync::Arc;
//! use mqgate_status::{ChannelId, ConnectionEvents, Reconciler, SequenceSource};
//!
//! let sequence = Arc::new(SequenceSource::new());
//! let (mut events, connect) = ConnectionEvents::connect(
//!     "GID_shop@@@tag-0042", ChannelId::generate()?, "10.0.0.5:40000".parse()?, sequence, 1_000,
//! );
//! let mut reconciler = Reconciler::default();
//! let _ = reconciler.apply(&connect);
//! assert!(reconciler.is_online("GID_shop@@@tag-0042"));
//!
//! let tcpclean = events.finish(2_000).into_iter().next();
//! let body = tcpclean.as_ref().map(|event| event.to_json()).unwrap_or_default();
//! let _ = reconciler.apply(&mqgate_status::StatusEvent::from_json(body.as_bytes())?);
//! assert!(!reconciler.is_online("GID_shop@@@tag-0042"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
#![doc = include_str!("rules.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod channel_id;
mod emitter;
mod error;
mod event;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod json;
mod reconciler;

pub use channel_id::{ChannelId, ChannelIdSource};
pub use emitter::{ConnectionEvents, SequenceSource};
pub use error::StatusError;
pub use event::{EventType, StatusEvent};
pub use reconciler::{Applied, Reconciler, ReconcilerConfig};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
