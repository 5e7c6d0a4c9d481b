//! Status events: every connection's connect / disconnect / tcpclean, fanned out to
//! in-process listeners (a broadcast channel) and to the log; in a cluster also to the
//! other nodes (the presence topic), whose events come back here for this node's listeners.

use std::sync::Arc;

use mqgate_session::Message;
use mqgate_status::{ChannelIdSource, SequenceSource, StatusEvent};
use tokio::sync::broadcast;

/// The cluster's side of the status events (`docs/cluster.md`, presence): where this node's
/// events go to the other nodes, and what the cluster knows of clients on other nodes.
pub(crate) trait Presence: Send + Sync + std::fmt::Debug {
    /// An event this node emitted, for the other nodes; a connect with the client's will, so
    /// another node can publish it if this one dies. Never blocks.
    fn emitted(&self, event: &StatusEvent, will: Option<CarriedWill>);
    /// The node that holds `client_id` now, when the cluster's view says a live node other
    /// than this one does.
    fn held_elsewhere(&self, client_id: &str) -> Option<String>;
}

/// A client's will, carried in its connect event so that another node can publish it when
/// the client's node dies.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CarriedWill {
    /// The will as a message (no id yet: 0; its expiry counted from `published_at_ms`).
    pub(crate) message: Message,
    /// Whether it is retained.
    pub(crate) retain: bool,
    /// How long it waits once the connection is lost, in seconds (MQTT 5: the Will Delay
    /// Interval, at most the Session Expiry Interval; 0 for a session that ends with its
    /// connection, and for MQTT 3.1.1).
    pub(crate) delay_s: u32,
}

/// Where status events go. Emitting never blocks a connection: a listener that lags behind
/// by more than the channel's capacity loses the oldest events and is told so by
/// [`broadcast::error::RecvError::Lagged`].
#[derive(Debug)]
pub(crate) struct StatusHub {
    /// Every event: this node's and, in a cluster, the other nodes'.
    sender: broadcast::Sender<StatusEvent>,
    /// This node's own events only (what it sends to shared destinations, RocketMQ's status
    /// topics, so each event is sent there once in a cluster).
    own: broadcast::Sender<StatusEvent>,
    pub(crate) sequence: Arc<SequenceSource>,
    /// Every connection's channel id (no system call per connect).
    pub(crate) channels: ChannelIdSource,
    /// The cluster, when this node is one of several.
    pub(crate) presence: Option<Arc<dyn Presence>>,
}

impl StatusHub {
    /// # Errors
    /// The operating system has no randomness for the channel ids' prefix.
    pub(crate) fn new(capacity: usize) -> std::io::Result<Self> {
        let (sender, _) = broadcast::channel(capacity.max(1));
        let (own, _) = broadcast::channel(capacity.max(1));
        Ok(StatusHub {
            sender,
            own,
            sequence: Arc::new(SequenceSource::new()),
            channels: ChannelIdSource::new().map_err(std::io::Error::other)?,
            presence: None,
        })
    }

    /// Sends `event` (this node's) to the log sink, to every subscribed listener and, in a
    /// cluster, to the other nodes.
    pub(crate) fn emit(&self, event: Option<StatusEvent>) {
        let Some(event) = event else { return };
        self.emit_with_will(event, None);
    }

    /// Whether a connect should carry its client's will ([`emit_with_will`]): in a cluster.
    ///
    /// [`emit_with_will`]: Self::emit_with_will
    pub(crate) fn carries_wills(&self) -> bool {
        self.presence.is_some()
    }

    /// [`emit`](Self::emit) for a connect whose client left a will: in a cluster the other
    /// nodes keep it, to publish it if this node dies.
    pub(crate) fn emit_with_will(&self, event: StatusEvent, will: Option<CarriedWill>) {
        tracing::info!(target: "mqgate::status", event = %event.to_json());
        if let Some(presence) = &self.presence {
            presence.emitted(&event, will);
        }
        // No listener is not an error: events are fire-and-forget.
        if self.own.receiver_count() > 0 {
            let _ = self.own.send(event.clone());
        }
        let _ = self.sender.send(event);
    }

    /// Sends `event`, which another node of the cluster emitted, to this node's listeners
    /// (not to [`subscribe_own`](Self::subscribe_own)'s: that node sent it there).
    pub(crate) fn deliver(&self, event: StatusEvent) {
        tracing::debug!(target: "mqgate::status", event = %event.to_json(), "from another node");
        let _ = self.sender.send(event);
    }

    /// A new listener, receiving every event (in a cluster, every node's) from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.sender.subscribe()
    }

    /// A new listener, receiving this node's own events from now on.
    pub(crate) fn subscribe_own(&self) -> broadcast::Receiver<StatusEvent> {
        self.own.subscribe()
    }
}
