//! Errors: protocol violations ([`SessionError`]) and bad stored state ([`RestoreError`]).

use crate::MessageId;

/// A protocol violation or a driver mistake. The driver answers any of them by closing the
/// connection and calling [`Session::connection_lost`](crate::Session::connection_lost); the
/// session itself stays consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// A packet was handed to a session with no open connection (read after
    /// `connection_lost`, or before `connect`).
    #[error("no connection is open")]
    NotConnected,
    /// `connect` was called while a connection is open: for a client-id takeover, end the old
    /// connection with `connection_lost` first.
    #[error("the session already has an open connection")]
    AlreadyConnected,
    /// The client sent a second CONNECT on one connection (MQTT-3.1.0-2).
    #[error("second CONNECT on one connection")]
    SecondConnect,
    /// The client sent a packet that only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP).
    #[error("a client may not send {0}")]
    UnexpectedPacket(&'static str),
    /// The client sent a packet after its DISCONNECT (MQTT-3.14.4-1).
    #[error("{0} after DISCONNECT")]
    AfterDisconnect(&'static str),
    /// An acknowledgement (PUBACK, PUBREC, PUBCOMP, PUBREL) names a packet id that nothing in
    /// the matching stage is waiting for.
    #[error("{packet} for unknown packet id {packet_id}")]
    UnknownPacketId {
        /// The packet's name, for example `"PUBACK"`.
        packet: &'static str,
        /// The packet id it carried.
        packet_id: u16,
    },
    /// A QoS 1 or 2 PUBLISH without a packet id (the codec never produces one).
    #[error("QoS 1 or 2 PUBLISH without a packet id")]
    MissingPacketId,
}

/// Stored session state that cannot be restored as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// A queue or in-flight entry refers to a message the message table does not hold.
    #[error("message {0:?} is referenced but not stored")]
    UnknownMessage(MessageId),
    /// Two in-flight entries use the same packet id.
    #[error("packet id {0} is in flight twice")]
    DuplicatePacketId(u16),
    /// An in-flight entry whose QoS and stage do not fit together (QoS 0 in flight, or a QoS 1
    /// message awaiting PUBCOMP).
    #[error("in-flight packet id {0} has an impossible QoS and stage")]
    InvalidInFlight(u16),
}
