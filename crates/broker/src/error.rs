//! [`BrokerError`]: what can go wrong starting or driving the broker.

use std::io;

/// Errors of the broker runtime. Errors of one connection never surface here: they close
/// that connection, are logged with a reason and counted in [`Metrics`](crate::Metrics).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// A socket or file operation failed (binding a listener, reading a PEM or config file).
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    /// The configuration did not parse or is inconsistent; the text says where.
    #[error("configuration error: {0}")]
    Config(String),
    /// The store could not be opened or read (a corrupt or newer-format data file, say); the
    /// text names the file. The broker never starts empty over unreadable state.
    #[error("store error: {0}")]
    Store(String),
    /// The RocketMQ bridge could not start: its client did not start, or an inflow consumer
    /// could not subscribe (the text says which).
    #[error("RocketMQ bridge error: {0}")]
    RocketMq(String),
    /// The cluster (`[cluster]`) could not start: no name server reachable, the RocketMQ
    /// client did not start, RocketMQ did not take the node's first heartbeat, or a consumer
    /// could not subscribe (the text says which).
    #[error("cluster error: {0}")]
    Cluster(String),
    /// The TLS certificate or key could not be loaded.
    #[error("TLS setup error: {0}")]
    Tls(String),
    /// A topic given to the embedding API is not a valid topic name for publishing.
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    /// A filter given to the embedding API is not a valid subscription filter.
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// The broker is shutting down or stopped.
    #[error("broker is shut down")]
    Shutdown,
    /// A receiver stayed full longer than the backpressure timeout.
    #[error("receivers stayed full longer than the backpressure timeout")]
    Backpressure,
}
