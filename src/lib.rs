//! # mqgate
//!
//! A self-hosted, embeddable MQTT 3.1.1 broker modelled on the managed
//! "Message Queue for MQTT" cloud services, built as a workspace of reusable
//! crates. This facade re-exports each crate behind a cargo feature of the
//! same name, so `mqgate = { version = "0.1", default-features = false,
//! features = ["codec"] }` pulls in only the codec.
//!
//! | module | crate | what it is |
//! |---|---|---|
//! | [`codec`] | `mqgate-codec` | MQTT 3.1.1 packets: streaming zero-copy decode, exact-size encode |
//! | [`topic`] | `mqgate-topic` | topic names and filters, client ids, subscription trie, shared groups, P2P addresses |
//! | [`session`] | `mqgate-session` | one client's session as a sans-I/O state machine |
//! | [`status`] | `mqgate-status` | connect / disconnect / tcpclean events and the reconciler |
//! | [`rocketmq`] | `mqgate-rocketmq` | MQTT <-> RocketMQ mapping |
//! | [`auth`] | `mqgate-auth` | logins, tokens, device credentials, grants, OpenAPI signatures |
//! | [`store`] | `mqgate-store` | durable sessions, offline queues, retained messages, registries (redb) |
//! | [`trace`] | `mqgate-trace` | message trace records in a segmented log, and the OpenAPI's trace queries |
//! | [`broker`] | `mqgate-broker` | the reference broker: listeners, routing, status, embedding API |
//! | [`amqp`] | `mqgate-amqp` | the cloud SDK endpoint's protocol core: AMQP 0-9-1 frames, connection state machine, SDK login |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "amqp")]
#[doc(inline)]
pub use mqgate_amqp as amqp;
#[cfg(feature = "auth")]
#[doc(inline)]
pub use mqgate_auth as auth;
#[cfg(feature = "broker")]
#[doc(inline)]
pub use mqgate_broker as broker;
#[cfg(feature = "codec")]
#[doc(inline)]
pub use mqgate_codec as codec;
#[cfg(feature = "rocketmq")]
#[doc(inline)]
pub use mqgate_rocketmq as rocketmq;
#[cfg(feature = "session")]
#[doc(inline)]
pub use mqgate_session as session;
#[cfg(feature = "status")]
#[doc(inline)]
pub use mqgate_status as status;
#[cfg(feature = "store")]
#[doc(inline)]
pub use mqgate_store as store;
#[cfg(feature = "topic")]
#[doc(inline)]
pub use mqgate_topic as topic;
#[cfg(feature = "trace")]
#[doc(inline)]
pub use mqgate_trace as trace;
