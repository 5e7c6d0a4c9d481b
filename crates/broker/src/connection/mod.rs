//! The connection layer: from an accepted byte stream to an online client ([`handshake`]),
//! the task that serves it while it is online ([`online`]), and why it ended ([`close`]).
//!
//! A connection uses the core (routing, the registry, the store writer, status events), the
//! access rules, and, when a RocketMQ bridge runs, its outflow through the [`Outflow`] seam;
//! [`ConnCtx`] holds exactly that, shared by every connection of one broker.

pub(crate) mod close;
pub(crate) mod enhanced;
pub(crate) mod handshake;
pub(crate) mod online;
pub(crate) mod v5;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mqgate_session::{Message, SessionConfig};
use mqgate_topic::ClientIdRules;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, watch};

use crate::auth::{Access, EnhancedMethods};
use crate::config::{BrokerConfig, Limits, Mqtt5Settings, TakeoverPolicy};
use crate::core::Core;
use crate::Metrics;

/// Resolves once the copy of a message sent elsewhere (RocketMQ) was accepted there; an error
/// means it never will be.
pub(crate) type Completion = oneshot::Receiver<()>;

/// A boxed future of the outflow seam.
pub(crate) type OutflowFuture<'a> = Pin<Box<dyn Future<Output = Option<Completion>> + Send + 'a>>;

/// Where a client's PUBLISH is copied besides the broker's own subscribers (the RocketMQ
/// bridge's outflow rules, the cluster's route topic, or both: [`Outflows`]).
pub(crate) trait Outflow: Send + Sync + 'static {
    /// Hands over the copy of `message` published by its origin (with the PUBLISH's RETAIN
    /// flag `retain`), waiting while the outflow is full. When the publisher's
    /// acknowledgement must wait for the copy to be accepted, returns the completion to
    /// await first.
    fn outflow<'a>(
        &'a self,
        message: &'a Message,
        retain: bool,
        clean_session: bool,
    ) -> OutflowFuture<'a>;

    /// Whether a message on `topic` goes out this way (an outflow rule covers it).
    fn covers(&self, topic: &str) -> bool;
}

/// Two outflows at once (the RocketMQ bridge and the cluster): each gets the copy, in turn;
/// the acknowledgement waits for both where either needs it.
pub(crate) struct Outflows(pub(crate) Arc<dyn Outflow>, pub(crate) Arc<dyn Outflow>);

impl Outflow for Outflows {
    fn outflow<'a>(
        &'a self,
        message: &'a Message,
        retain: bool,
        clean_session: bool,
    ) -> OutflowFuture<'a> {
        Box::pin(async move {
            let first = self.0.outflow(message, retain, clean_session).await;
            let second = self.1.outflow(message, retain, clean_session).await;
            match (first, second) {
                (None, None) => None,
                (Some(one), None) | (None, Some(one)) => Some(one),
                (Some(first), Some(second)) => {
                    let (done, both) = oneshot::channel();
                    tokio::spawn(async move {
                        if first.await.is_ok() && second.await.is_ok() {
                            let _ = done.send(());
                        }
                    });
                    Some(both)
                }
            }
        })
    }

    fn covers(&self, topic: &str) -> bool {
        self.0.covers(topic) || self.1.covers(topic)
    }
}

/// What serves the streams a listener accepts.
pub(crate) trait Serve: Send + Sync + Sized + 'static {
    /// Serves one stream (plain, TLS or WebSocket) from `peer` until it closes.
    fn serve<S>(self: Arc<Self>, stream: S, peer: SocketAddr) -> impl Future<Output = ()> + Send
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// How long a transport handshake (TLS, WebSocket) may take.
    fn connect_timeout(&self) -> Duration;

    /// Where accepted and refused connections are counted.
    fn metrics(&self) -> &Metrics;

    /// Becomes `true` when the listeners must stop accepting.
    fn shutdown(&self) -> watch::Receiver<bool>;
}

/// What every connection of one broker uses.
pub(crate) struct ConnCtx {
    pub(crate) core: Arc<Core>,
    pub(crate) access: Arc<Access>,
    pub(crate) outflow: Option<Arc<dyn Outflow>>,
    pub(crate) limits: Limits,
    pub(crate) session_config: SessionConfig,
    pub(crate) client_id_rules: ClientIdRules,
    pub(crate) takeover: TakeoverPolicy,
    /// What MQTT 5 clients are told in the CONNACK.
    pub(crate) mqtt5: Mqtt5Settings,
    /// The MQTT 5 enhanced authentication methods an embedder registered.
    pub(crate) enhanced: EnhancedMethods,
}

impl std::fmt::Debug for ConnCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnCtx")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ConnCtx {
    /// The context of `config`'s connections.
    pub(crate) fn new(
        config: &BrokerConfig,
        core: Arc<Core>,
        access: Arc<Access>,
        outflow: Option<Arc<dyn Outflow>>,
    ) -> Self {
        ConnCtx {
            core,
            access,
            outflow,
            limits: config.limits.clone(),
            session_config: config.session.session_config(),
            client_id_rules: config.client_id_rules(),
            takeover: config.takeover,
            mqtt5: config.mqtt5.clone(),
            enhanced: EnhancedMethods::default(),
        }
    }
}

impl Serve for ConnCtx {
    fn serve<S>(self: Arc<Self>, stream: S, peer: SocketAddr) -> impl Future<Output = ()> + Send
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        handshake::serve(stream, peer, self)
    }

    fn connect_timeout(&self) -> Duration {
        self.limits.connect_timeout
    }

    fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    fn shutdown(&self) -> watch::Receiver<bool> {
        self.core.shutdown.clone()
    }
}
