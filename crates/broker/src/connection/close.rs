//! [`CloseReason`]: why a connection ended, how it is logged and which counter it bumps.

use std::io;
use std::sync::atomic::Ordering;

use mqgate_codec::{DecodeError, EncodeError, ReasonCode};
use mqgate_session::SessionError;
use mqgate_topic::TopicError;
use mqgate_trace::{Action, Info};

use crate::core::inbox::Kick;
use crate::core::persist::{AckFailed, StoreFailed};
use crate::transport::io::StreamError;
use crate::Metrics;

/// Why a connection ended. Every variant but the orderly ones is an abnormal end: the will
/// is published.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CloseReason {
    /// The client sent DISCONNECT.
    #[error("client sent DISCONNECT")]
    Disconnect,
    /// An MQTT 5 client sent DISCONNECT with reason 0x04 (Disconnect with Will Message):
    /// an orderly end whose will is published all the same.
    #[error("client sent DISCONNECT with will")]
    DisconnectWithWill,
    /// An MQTT 5 protocol error the connection itself found (the reason code it answers
    /// with, and what was wrong).
    #[error("MQTT 5 protocol error ({0:?}): {1}")]
    ProtocolV5(ReasonCode, &'static str),
    /// The peer closed the stream without DISCONNECT.
    #[error("peer closed the connection")]
    PeerClosed,
    /// Reading or writing the stream failed.
    #[error("I/O error: {0}")]
    Io(io::Error),
    /// Writing to the client took longer than the backpressure timeout.
    #[error("writing to the client timed out")]
    WriteTimeout,
    /// Bytes that are not a valid MQTT packet.
    #[error("malformed packet: {0}")]
    Malformed(DecodeError),
    /// A packet larger than the configured maximum.
    #[error("oversize packet: {0}")]
    Oversize(DecodeError),
    /// A protocol violation the session detected.
    #[error("protocol violation: {0}")]
    Protocol(SessionError),
    /// The first packet was not CONNECT.
    #[error("first packet was {0}, not CONNECT")]
    NotConnect(&'static str),
    /// A PUBLISH to a topic name that is not valid.
    #[error("PUBLISH to an invalid topic: {0}")]
    InvalidTopic(TopicError),
    /// A SUBSCRIBE or UNSUBSCRIBE with a filter that is not a valid MQTT topic filter
    /// (MQTT-4.7.1: a protocol violation, so the connection closes; a valid filter the broker
    /// will not serve is refused in the SUBACK instead).
    #[error("invalid topic filter {filter:?}: {error}")]
    InvalidFilter { filter: String, error: TopicError },
    /// An outbound packet could not be encoded.
    #[error("cannot encode an outbound packet: {0}")]
    Encode(EncodeError),
    /// Silent for longer than 1.5 times the keep-alive.
    #[error("silent for longer than 1.5 x keep-alive")]
    KeepAlive,
    /// CONNECT did not arrive in time.
    #[error("no CONNECT within the connect timeout")]
    ConnectTimeout,
    /// A newer connection took the client id over.
    #[error("taken over by a newer connection with the same client id")]
    Takeover,
    /// A receiver stayed full longer than the backpressure timeout.
    #[error("receivers stayed full longer than the backpressure timeout")]
    Backpressure,
    /// The HTTP API (`CloseConnection`) closed it.
    #[error("closed through the API")]
    ClosedByApi,
    /// Its login token expired or was revoked.
    #[error("token expired or revoked")]
    TokenInvalid,
    /// Its client id was put on the connect blacklist.
    #[error("client id put on the connect blacklist")]
    Blacklisted,
    /// The broker is shutting down.
    #[error("broker shutting down")]
    Shutdown,
    /// The broker sends its clients to another server.
    #[error("use another server")]
    Redirect,
    /// The store refused a write this connection waited for (no acknowledgement was sent).
    #[error("store write failed: {0}")]
    Store(String),
}

impl From<DecodeError> for CloseReason {
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::PacketTooLarge { .. } => CloseReason::Oversize(error),
            other => CloseReason::Malformed(other),
        }
    }
}

impl From<StreamError> for CloseReason {
    fn from(error: StreamError) -> Self {
        match error {
            StreamError::Io(error) => CloseReason::Io(error),
            StreamError::WriteTimeout => CloseReason::WriteTimeout,
            StreamError::Decode(error) => CloseReason::from(error),
            StreamError::Encode(error) => CloseReason::Encode(error),
        }
    }
}

impl From<StoreFailed> for CloseReason {
    fn from(error: StoreFailed) -> Self {
        CloseReason::Store(error.0)
    }
}

impl From<AckFailed> for CloseReason {
    fn from(error: AckFailed) -> Self {
        match error {
            AckFailed::Store(error) => error.into(),
            // The RocketMQ sender stopped before it took the copy: the broker shuts down.
            AckFailed::Outflow => CloseReason::Shutdown,
        }
    }
}

impl CloseReason {
    /// Why a kicked connection closes (a dropped sender counts as a takeover: only the
    /// registry holds it).
    pub(crate) fn kicked(kick: Kick) -> Self {
        match kick {
            Kick::Closed => CloseReason::ClosedByApi,
            Kick::TokenInvalid => CloseReason::TokenInvalid,
            Kick::Blacklisted => CloseReason::Blacklisted,
            Kick::Shutdown => CloseReason::Shutdown,
            Kick::Takeover => CloseReason::Takeover,
            Kick::Redirect => CloseReason::Redirect,
        }
    }

    /// Whether the session's will goes out (the broker's own shutdown is no client's fault,
    /// and nobody would receive the will anyway; a redirected client is moving, not gone).
    pub(crate) fn publishes_will(&self) -> bool {
        !matches!(self, CloseReason::Shutdown | CloseReason::Redirect)
    }

    /// The reason code of the DISCONNECT the broker sends an MQTT 5 client before it closes
    /// the connection this way; `None` when the client ended it (or the stream is gone).
    pub(crate) fn disconnect_reason(&self) -> Option<ReasonCode> {
        Some(match self {
            CloseReason::Disconnect
            | CloseReason::DisconnectWithWill
            | CloseReason::PeerClosed
            | CloseReason::Io(_)
            | CloseReason::WriteTimeout
            | CloseReason::NotConnect(_)
            | CloseReason::ConnectTimeout => return None,
            CloseReason::Malformed(error) => error.reason_code(),
            CloseReason::Oversize(_) => ReasonCode::PacketTooLarge,
            CloseReason::Protocol(_) => ReasonCode::ProtocolError,
            CloseReason::ProtocolV5(code, _) => *code,
            CloseReason::InvalidTopic(_) => ReasonCode::TopicNameInvalid,
            CloseReason::InvalidFilter { .. } => ReasonCode::TopicFilterInvalid,
            CloseReason::Encode(_) => ReasonCode::ImplementationSpecificError,
            CloseReason::KeepAlive => ReasonCode::KeepAliveTimeout,
            CloseReason::Takeover => ReasonCode::SessionTakenOver,
            CloseReason::Backpressure => ReasonCode::ServerBusy,
            CloseReason::ClosedByApi | CloseReason::Blacklisted => ReasonCode::AdministrativeAction,
            CloseReason::TokenInvalid => ReasonCode::NotAuthorized,
            CloseReason::Shutdown => ReasonCode::ServerShuttingDown,
            // 0x9D instead when the redirect is permanent: see `Online::finish`.
            CloseReason::Redirect => ReasonCode::UseAnotherServer,
            CloseReason::Store(_) => ReasonCode::UnspecifiedError,
        })
    }

    /// What the Reason String of the broker's DISCONNECT says.
    pub(crate) fn reason_string(&self) -> String {
        match self {
            CloseReason::ProtocolV5(_, what) => (*what).to_owned(),
            other => other.to_string(),
        }
    }

    /// The trace's action and reason for a connection that ended this way: `disconnect` when
    /// the client sent DISCONNECT, `close` otherwise.
    pub(crate) fn trace(&self) -> (Action, Info) {
        let info = match self {
            CloseReason::Disconnect | CloseReason::DisconnectWithWill => {
                return (Action::Disconnect, Info::DisconnectedByClient)
            }
            CloseReason::PeerClosed => Info::ClosedByClient,
            CloseReason::Io(_) | CloseReason::WriteTimeout => Info::SocketError,
            CloseReason::Malformed(_)
            | CloseReason::Oversize(_)
            | CloseReason::Protocol(_)
            | CloseReason::ProtocolV5(..)
            | CloseReason::NotConnect(_)
            | CloseReason::InvalidTopic(_)
            | CloseReason::InvalidFilter { .. } => Info::InvalidParam,
            CloseReason::KeepAlive | CloseReason::ConnectTimeout => Info::NoHeart,
            CloseReason::Takeover => Info::ClientIdConflict,
            CloseReason::TokenInvalid | CloseReason::Blacklisted => Info::NotAuthorized,
            CloseReason::Encode(_)
            | CloseReason::Backpressure
            | CloseReason::ClosedByApi
            | CloseReason::Shutdown
            | CloseReason::Redirect
            | CloseReason::Store(_) => Info::ClosedByServer,
        };
        (Action::Close, info)
    }

    /// Logs the reason at a level that fits it and bumps its counter.
    pub(crate) fn report(&self, client: &str, metrics: &Metrics) {
        let counter = match self {
            CloseReason::Disconnect
            | CloseReason::DisconnectWithWill
            | CloseReason::PeerClosed
            | CloseReason::Shutdown => {
                tracing::debug!(client, reason = %self, "connection closed");
                return;
            }
            CloseReason::Redirect => {
                tracing::info!(client, reason = %self, "connection closed");
                return;
            }
            CloseReason::Io(_)
            | CloseReason::WriteTimeout
            | CloseReason::Encode(_)
            | CloseReason::Store(_) => {
                tracing::info!(client, reason = %self, "connection closed");
                return;
            }
            CloseReason::Malformed(_) => &metrics.malformed_packets,
            CloseReason::Oversize(_) => &metrics.oversize_packets,
            CloseReason::Protocol(_) | CloseReason::ProtocolV5(..) | CloseReason::NotConnect(_) => {
                &metrics.protocol_errors
            }
            CloseReason::InvalidTopic(_) | CloseReason::InvalidFilter { .. } => {
                &metrics.invalid_topics
            }
            CloseReason::KeepAlive => &metrics.keep_alive_expired,
            CloseReason::ConnectTimeout => &metrics.connect_timeouts,
            CloseReason::Takeover => &metrics.takeovers,
            CloseReason::Backpressure => &metrics.backpressure_timeouts,
            CloseReason::ClosedByApi | CloseReason::Blacklisted => &metrics.api_disconnects,
            CloseReason::TokenInvalid => &metrics.token_disconnects,
        };
        tracing::warn!(client, reason = %self, "connection closed");
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Checks that every filter of a SUBSCRIBE or UNSUBSCRIBE is a valid MQTT topic filter.
///
/// # Errors
/// [`CloseReason::InvalidFilter`] naming the first invalid one.
pub(crate) fn check_filters<'a>(
    filters: impl IntoIterator<Item = &'a str>,
) -> Result<(), CloseReason> {
    for filter in filters {
        if let Err(error) = mqgate_topic::TopicFilter::validate(filter) {
            return Err(CloseReason::InvalidFilter {
                filter: filter.chars().take(128).collect(),
                error,
            });
        }
    }
    Ok(())
}
