//! # mqgate-broker
//!
//! The reference broker: the thin tokio runtime that composes the sans-I/O crates
//! (`mqgate-codec`, `mqgate-topic`, `mqgate-session`, `mqgate-status`) into an MQTT 3.1.1
//! broker you can run (the `mqgate` binary) or embed ([`Broker::builder`]).
//!
//! ```text
//!  listener (TCP | TLS | WS | WSS) ─accept─▶ one task per connection
//!     socket bytes ─▶ Decoder ─▶ Session::handle_packet ─▶ events
//!        Publish ─▶ Router: P2P address? registry[client] : trie.match ─▶ receivers' inboxes
//!                   (QoS 1/2 acknowledged only once every inbox took it)
//!        Subscribe ─▶ trie + retained ─▶ SUBACK, retained messages
//!     inbox ─▶ Session::handle_delivery ─▶ poll_transmit ─▶ one write
//!     connect / disconnect / tcpclean ─▶ status broadcast + log (+ RocketMQ status rules)
//!  CONNECT ─▶ Authenticator ─▶ grants ─▶ every PUBLISH / SUBSCRIBE checked
//!  HTTP API (axum) ─▶ signature (mqgate-auth) ─▶ registries, live registry, router
//!  RocketMQ bridge (`[rocketmq]`): outflow PUBLISH ─▶ RocketMQ; RocketMQ consumer ─▶ Router
//! ```
//!
//! ## The contract
//!
//! - Every listener binds 127.0.0.1 unless configured otherwise.
//! - One task owns each connection and its session while the client is online; the
//!   subscription trie and retained index are shared behind read-write locks never held
//!   across an `.await`; the client registry is sharded.
//! - Nothing a peer sends can panic the broker or affect another connection: bad input
//!   closes that connection with a logged reason and a [`Metrics`] counter.
//! - A QoS 1 or 2 message is acknowledged to its publisher only after every receiver took
//!   it. Memory is bounded per connection; see [`manual`] for the bound and the policies.
//! - The broker reads the clock in exactly one place ([`clock::unix_time_ms`]); the session
//!   and status machines get time as an argument.
//!
//! ```no_run
//! use mqgate_broker::{Broker, BrokerConfig, ListenerKind};
//! # async fn example() -> Result<(), mqgate_broker::BrokerError> {
//! let broker = Broker::builder().config(BrokerConfig::ephemeral()).build();
//! let handle = broker.start().await?;
//! println!("MQTT on {:?}", handle.local_addr(ListenerKind::Tcp));
//! handle.publish("news/all", "hello", mqgate_codec::QoS::AtLeastOnce, true).await?;
//! handle.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod bridge;
pub mod clock;
mod close;
mod config;
mod connection;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod handle;
mod handshake;
mod http;
mod inbox;
mod io;
mod listener;
pub mod manual;
mod metrics;
mod persist;
mod registry;
mod router;
mod shared;
mod status;
mod tls;
mod ws;

pub use auth::{
    AccessKeySettings, AllowAnonymous, AuthSettings, Authenticated, Authenticator, DenyAll,
    HttpSettings, Refusal,
};
#[cfg(feature = "rocketmq")]
pub use bridge::RustRocketMqClient;
pub use bridge::{
    AckAfter, BoxFuture, BridgeHealth, ClientFailure, ConsumeFrom, Consumed, RocketMqClient,
    RocketMqConfig,
};
pub use config::{
    BrokerConfig, ClientIdRuleSet, Limits, ListenerConfig, SessionLimits, StorageKind,
    TakeoverPolicy, TlsFiles,
};
pub use error::BrokerError;
pub use handle::{Broker, BrokerBuilder, BrokerHandle, Consumer};
pub use listener::ListenerKind;
pub use metrics::{Metrics, MetricsSnapshot};

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
