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
//!  cluster (`[cluster]`): PUBLISH ─▶ route topic ─▶ every other node's Router; heartbeats
//!  message trace (`[trace]`): CONNECT answered, close, message in, pushed, pushed offline
//!     ─▶ bounded buffer (never waited for) ─▶ writer thread ─▶ trace log ◀─ QueryMqttTrace*
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
//!   it. Memory is bounded per connection; the repository's `docs/delivery.md` states the
//!   bound and the policies.
//! - The broker reads time in one module ([`clock`]): a monotonic clock for every timer, the
//!   wall clock only for times shown or stored; the session and status machines get time as
//!   an argument.
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

// The layers, top down; a module imports only from its own layer or below (see
// docs/architecture.md): the handle and builder; the services (HTTP API, RocketMQ bridge,
// background loops); the listeners' transport; the connection; the core; the foundation
// (configuration, metrics, clocks, errors, the byte stream).
mod handle;

mod amqp;
mod background;
mod bridge;
mod cluster;
mod console;
mod http;

mod transport;

mod connection;

mod auth;
mod core;

pub mod clock;
mod config;
mod error;
mod fd_limit;
mod metrics;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use crate::core::registry::OfflineQueues;
pub use auth::{
    AllowAnonymous, AuthExchange, AuthStep, Authenticated, Authenticator, DenyAll, EnhancedAuth,
    Refusal,
};
pub use bridge::{BoxFuture, BridgeHealth, ClientFailure, Consumed, RocketMqClient};
#[cfg(feature = "rocketmq")]
pub use bridge::{ClientSettings, RustRocketMqClient};
pub use cluster::{ClusterHealth, ClusterNode};
pub use config::{
    AccessKeySettings, AckAfter, AmqpSettings, AuthSettings, BrokerConfig, ClientIdRuleSet,
    ClusterConfig, ConsumeFrom, HttpSettings, Limits, ListenerConfig, Mqtt5Settings, Redirect,
    RocketMqConfig, SessionLimits, StorageKind, StoreSettings, TakeoverPolicy, TlsFiles,
    TraceSettings,
};
pub use error::BrokerError;
pub use fd_limit::raise_open_file_limit;
pub use handle::{Broker, BrokerBuilder, BrokerHandle, Consumer};
pub use metrics::{Metrics, MetricsSnapshot};
pub use transport::listener::ListenerKind;

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod layout_tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::Semaphore;

    use crate::auth::{Access, AllowAnonymous};
    use crate::connection::ConnCtx;
    use crate::core::Core;
    use crate::transport::listener::{connection, Accepted};
    use crate::{BrokerConfig, ListenerKind};

    /// The most a plain TCP connection's task future may take. Tokio adds a 112-byte header and
    /// trailer and rounds the allocation to a multiple of 128, so up to 656 bytes the task
    /// takes 768. The figure depends on the compiler (benches/README.md has the measured
    /// ones): the guard leaves one more step of headroom, so a compiler update does not fail
    /// it, while a value kept across an `.await` by mistake (a few hundred bytes) does.
    const LIMIT: usize = 784;

    /// Every connection's task is allocated at the size of its whole future: a TCP
    /// connection's must not carry the TLS and WebSocket states, nor the handshake's or the
    /// close's (they are boxed). The figure is bytes of the future itself, not a timing.
    #[tokio::test]
    async fn a_tcp_connection_task_stays_small() {
        let (_tx, shutdown) = tokio::sync::watch::channel(false);
        let config = BrokerConfig::ephemeral();
        let session = config.session.session_config();
        let store = Arc::new(mqgate_store::MemoryStore::new());
        let rules = config.client_id_rules();
        let core = Core::start(store, &config.limits, &session, rules, None, shutdown)
            .expect("core starts");
        let access = Access::only(Box::new(AllowAnonymous));
        let ctx = Arc::new(ConnCtx::new(
            &config,
            Arc::new(core),
            Arc::new(access),
            None,
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("address");
        let stream = TcpStream::connect(addr).await.expect("connect");
        let permit = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a permit");
        let task = connection(Box::new(Accepted {
            kind: ListenerKind::Tcp,
            tls: None,
            ws_path: Arc::from("/mqtt"),
            stream,
            peer: addr,
            ctx,
            permit,
        }));
        let size = std::mem::size_of_val(&task);
        println!("a TCP connection's task future is {size} bytes");
        assert!(
            size <= LIMIT,
            "a TCP connection's task future is {size} bytes, over {LIMIT}. Every idle \
             connection pays for it (rounded up to 128 bytes with tokio's 112-byte header). \
             Re-measure with `cargo test -p mqgate-broker --release --lib \
             a_tcp_connection_task_stays_small -- --nocapture` in both debug and release; if a \
             new compiler moved the figure, find what grew (a value kept across an .await in \
             connection/online.rs or transport/listener.rs), box it, or raise LIMIT with the \
             measured figures in the commit and benches/README.md"
        );
    }
}
