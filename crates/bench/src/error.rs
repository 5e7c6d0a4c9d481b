//! The one error type of the generator.

use std::net::SocketAddr;

/// Why a run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The target is not a loopback address and `--allow-non-loopback` was not given.
    #[error(
        "refusing to target {0}: only 127.0.0.0/8 and ::1 are allowed without --allow-non-loopback"
    )]
    NotLoopback(SocketAddr),
    /// A socket operation failed (connect, read, write, bind).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The broker sent bytes our codec refuses.
    #[error("malformed packet from the broker: {0}")]
    Decode(#[from] mqgate_codec::DecodeError),
    /// A packet we built could not be encoded (a topic or payload too long).
    #[error("cannot encode a packet: {0}")]
    Encode(#[from] mqgate_codec::EncodeError),
    /// The broker refused a CONNECT, answered something else, or closed the connection.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The broker ended an MQTT 5 connection with DISCONNECT (its reason code).
    #[error("the broker sent DISCONNECT {0}")]
    Disconnected(String),
    /// The AMQP broker sent bytes `mqgate-amqp` refuses.
    #[error("malformed AMQP frame from the broker: {0}")]
    AmqpDecode(#[from] mqgate_amqp::DecodeError),
    /// An AMQP frame we built could not be encoded (a name over 255 bytes).
    #[error("cannot encode an AMQP frame: {0}")]
    AmqpEncode(#[from] mqgate_amqp::EncodeError),
    /// The AMQP broker closed a channel or the connection, or answered out of order.
    #[error("AMQP: {0}")]
    Protocol(String),
    /// The run's time bound ran out before the connections were set up.
    #[error("setup did not finish within the run's time bound")]
    SetupTimeout,
    /// A scenario's parameters are inconsistent (zero messages, zero subscribers, ...).
    #[error("invalid run parameters: {0}")]
    InvalidPlan(&'static str),
    /// A results file line is not a run report.
    #[error("line {line}: not a run report: {reason}")]
    BadReport {
        /// 1-based line number in the results file.
        line: usize,
        /// What the JSON parser said.
        reason: String,
    },
}
