//! # mqgate-codec
//!
//! MQTT 3.1.1 control packets (all 14 types, and CONNECT at protocol level 3, MQTT 3.1) and
//! MQTT 5.0 control packets (all 15, in [`v5`]): plain value types, a streaming decoder and
//! an exact-size encoder. No I/O, no async, no allocation on the PUBLISH decode path beyond
//! reference counts.
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
//!
//! ## MQTT 5
//!
//! The protocol level of a connection's CONNECT decides how the rest of it is read:
//! [`ConnectionDecoder`] looks at it and decodes every later packet as [`Packet`] (3.1.1) or
//! [`v5::Packet`], handing out an [`AnyPacket`]; [`Decoder::decode_v5`] is the MQTT 5 decoder
//! on its own. [`Decoder::decode`] stays the 3.1.1 decoder, untouched by MQTT 5.
//!
//! - Properties stay in their wire encoding: [`Properties`] is a checked block (identifiers,
//!   types, which packet may carry which, the duplicate and value rules) that is iterated as
//!   [`Property`] values, and built with [`Properties::build`].
//! - A PUBLISH splits its properties as a broker uses them ([`v5::PublishProperties`]): the
//!   forwardable ones (Payload Format Indicator, Content Type, Response Topic, Correlation
//!   Data, User Properties, in the order received) as one wire-encoded [`bytes::Bytes`], a
//!   slice of the packet when they are contiguous in it, ready to be stored with the message;
//!   Topic Alias, Message Expiry Interval and Subscription Identifiers as values, set per
//!   delivery. The encoder writes the stored block as it is, without parsing it again.
//! - [`ReasonCode`] has every reason code with its value and name; [`DecodeError::kind`] and
//!   [`DecodeError::reason_code`] say whether an input is a Malformed Packet or a Protocol
//!   Error, so a server can answer with the right code before closing.
//!
//! ```
//! use bytes::BytesMut;
//! use mqgate_codec::{AnyPacket, ConnectionDecoder, ReasonCode};
//! use mqgate_codec::v5::Packet;
//!
//! // CONNECT at level 5, then a PUBLISH with a User Property, then a PUBACK with a reason.
//! let mut rx = BytesMut::from(&[
//!     0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 0,
//!     0x30, 12, 0, 1, b't', 7, 0x26, 0, 1, b'k', 0, 1, b'v', b'!',
//!     0x40, 3, 0, 1, 0x10,
//! ][..]);
//! let mut conn = ConnectionDecoder::new(64 * 1024);
//! let mut seen = Vec::new();
//! while let Some(AnyPacket::V5(packet)) = conn.decode(&mut rx)? {
//!     match &packet {
//!         Packet::Publish(p) => {
//!             // The bytes to store as the message's properties, shared with `rx`.
//!             assert_eq!(&p.properties.forward[..], &[0x26, 0, 1, b'k', 0, 1, b'v']);
//!             let forwarded = p.properties.forwarded();
//!             assert_eq!(forwarded.user_properties().collect::<Vec<_>>(), [("k", "v")]);
//!         }
//!         Packet::PubAck(ack) => assert_eq!(ack.reason, ReasonCode::NoMatchingSubscribers),
//!         _ => {}
//!     }
//!     seen.push(packet.name());
//! }
//! assert_eq!(seen, ["CONNECT", "PUBLISH", "PUBACK"]);
//! # Ok::<(), mqgate_codec::DecodeError>(())
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
