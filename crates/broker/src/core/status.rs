//! Status events: every connection's connect / disconnect / tcpclean, fanned out to
//! in-process listeners (a broadcast channel) and to the log.

use std::sync::Arc;

use mqgate_status::{ChannelIdSource, SequenceSource, StatusEvent};
use tokio::sync::broadcast;

/// Where status events go. Emitting never blocks a connection: a listener that lags behind
/// by more than the channel's capacity loses the oldest events and is told so by
/// [`broadcast::error::RecvError::Lagged`].
#[derive(Debug)]
pub(crate) struct StatusHub {
    sender: broadcast::Sender<StatusEvent>,
    pub(crate) sequence: Arc<SequenceSource>,
    /// Every connection's channel id (no system call per connect).
    pub(crate) channels: ChannelIdSource,
}

impl StatusHub {
    /// # Errors
    /// The operating system has no randomness for the channel ids' prefix.
    pub(crate) fn new(capacity: usize) -> std::io::Result<Self> {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Ok(StatusHub {
            sender,
            sequence: Arc::new(SequenceSource::new()),
            channels: ChannelIdSource::new().map_err(std::io::Error::other)?,
        })
    }

    /// Sends `event` to the log sink and to every subscribed listener.
    pub(crate) fn emit(&self, event: Option<StatusEvent>) {
        let Some(event) = event else { return };
        tracing::info!(target: "mqgate::status", event = %event.to_json());
        // No listener is not an error: events are fire-and-forget.
        let _ = self.sender.send(event);
    }

    /// A new listener, receiving events emitted from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.sender.subscribe()
    }
}
