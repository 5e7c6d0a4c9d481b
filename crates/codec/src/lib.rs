//! # mqgate-codec
//!
//! MQTT 3.1.1 control packets (all 14 types, and CONNECT at protocol level 3, MQTT 3.1):
//! plain value types, a streaming decoder and an exact-size encoder. No I/O, no async, no
//! allocation on the PUBLISH decode path beyond reference counts.
//!
//! ## The I/O contract
//!
//! ```text
//!  socket ──read──▶ BytesMut ──Decoder::decode──▶ Packet ──▶ your state machine
//!                      ▲   (Ok(None): read more)
//!  socket ◀─write── BytesMut ◀──Packet::encode── Packet ◀── your state machine
//! ```
//!
//! - [`Decoder::decode`] looks at the fixed header first. A packet larger than the configured
//!   maximum is refused as soon as its header arrives, before its body is buffered; an
//!   incomplete one returns `Ok(None)` and leaves the buffer untouched; a complete one is
//!   split off the buffer, and its strings and payload are [`bytes::Bytes`] slices of it.
//! - [`Packet::encode`] computes the exact length, reserves it once and writes.
//!   [`Publish::encode_header`] writes everything but the payload, for vectored writes.
//! - Anything the standard calls malformed is a [`DecodeError`] (`Copy + Eq`), never a panic.
//!
//! ```
//! use bytes::BytesMut;
//! use mqgate_codec::{Decoder, Packet};
//!
//! // Bytes as they came off a socket: a QoS 0 PUBLISH to "a/b" with payload "hi".
//! let mut rx = BytesMut::from(&[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'][..]);
//! let decoder = Decoder::new(64 * 1024);
//! while let Some(packet) = decoder.decode(&mut rx).expect("well-formed input") {
//!     if let Packet::Publish(p) = packet {
//!         assert_eq!(p.topic(), "a/b");
//!         assert_eq!(p.payload(), b"hi");
//!     }
//! }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod connection;
mod decode;
mod encode;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod packet;
mod properties;
mod reason;
mod string;
pub mod v5;

pub use connection::{AnyPacket, ConnectionDecoder, ProtocolVersion};
pub use decode::{decode_body, read_fixed_header, Decoder, FixedHeader, MAX_REMAINING_LENGTH};
pub use error::{DecodeError, EncodeError, ErrorKind};
pub use packet::{
    ConnAck, Connect, ConnectReturnCode, LastWill, Packet, PacketId, Protocol, Publish, QoS,
    SubAck, Subscribe, SubscribeFilter, SubscribeReturnCode, Unsubscribe,
};
pub use properties::{
    Properties, Property, PropertyContext, PropertyId, PropertyIter, PropertyType, MAX_VAR_INT,
};
pub use reason::ReasonCode;
pub use string::ByteStr;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v5;
