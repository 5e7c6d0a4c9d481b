//! MQTT 5.0 control packets: the values, their decoding and their encoding.
//!
//! A connection speaks MQTT 5 when its CONNECT says protocol level 5; from then on every
//! packet in both directions is decoded with [`Decoder::decode_v5`](crate::Decoder::decode_v5)
//! (or [`ConnectionDecoder`](crate::ConnectionDecoder), which switches by itself) and
//! encoded with [`Packet::encode`]. Strings, payloads and property blocks are slices of the
//! receive buffer, as on the 3.1.1 path.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use mqgate_codec::v5::{Packet, Publish, PublishProperties};
//! use mqgate_codec::{ByteStr, Decoder, Properties, Property, PropertyId, QoS};
//!
//! // A stored message's forwardable properties, written to a receiver with its own
//! // subscription identifier and the remaining expiry.
//! let forward = Properties::build([Property::UserProperty("trace", "42")])?.forwardable();
//! let mut publish = Publish::new(QoS::AtLeastOnce, Some(9.try_into().unwrap()),
//!     ByteStr::from_static("a/b"), Bytes::from_static(b"hi"));
//! publish.properties = PublishProperties {
//!     forward,
//!     message_expiry_interval: Some(25),
//!     subscription_identifiers: vec![3.try_into().unwrap()].into(),
//!     ..PublishProperties::default()
//! };
//! let mut wire = BytesMut::new();
//! Packet::Publish(publish.clone()).encode(&mut wire)?;
//! let decoded = Decoder::new(1024).decode_v5(&mut wire).unwrap();
//! assert_eq!(decoded, Some(Packet::Publish(publish)));
//! # Ok::<(), mqgate_codec::EncodeError>(())
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use core::num::NonZeroU32;

use crate::decode::{
    expect_flags, take_bytes, take_filters, take_packet_id, take_str, take_topic_name, take_u16,
    take_u8, ConnectFlags, MAX_REMAINING_LENGTH,
};
use crate::encode::{connect_tail, fields_len, put_ack, put_fields, put_str, str_len};
use crate::properties::{block_len, put_var_int, read_var_int, var_int_len};
pub use crate::properties::{PublishProperties, SubscriptionIdentifiers};
use crate::reason::reason_for;
use crate::{
    ByteStr, DecodeError, EncodeError, PacketId, Properties, PropertyContext, PropertyId, QoS,
    ReasonCode,
};

/// The protocol level byte of MQTT 5.0 in CONNECT.
pub const PROTOCOL_LEVEL: u8 = 5;

/// The will message of an MQTT 5 CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Topic the will is published to.
    pub topic: ByteStr,
    /// Will payload (binary).
    pub payload: Bytes,
    /// QoS the will is published with.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// Will properties: Will Delay Interval, Message Expiry Interval and the forwardable
    /// ones ([`Properties::forwardable`] gives those for the will message).
    pub properties: Properties,
}

/// MQTT 5 CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connect {
    /// Clean Start: discard any previous session.
    pub clean_start: bool,
    /// Keep-alive interval in seconds (0 disables it).
    pub keep_alive: u16,
    /// CONNECT properties (Session Expiry Interval, Receive Maximum, Maximum Packet Size,
    /// Topic Alias Maximum, Request Response/Problem Information, User Property,
    /// Authentication Method and Data).
    pub properties: Properties,
    /// Client identifier (may be empty).
    pub client_id: ByteStr,
    /// The will, if the will flag was set.
    pub will: Option<Will>,
    /// User name, if the user name flag was set.
    pub username: Option<ByteStr>,
    /// Password (binary), if the password flag was set (MQTT 5 allows it without a user name).
    pub password: Option<Bytes>,
}

/// MQTT 5 CONNACK.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAck {
    /// Whether the server resumed a stored session.
    pub session_present: bool,
    /// The verdict.
    pub reason: ReasonCode,
    /// CONNACK properties (what the server supports, assigned client id, ...).
    pub properties: Properties,
}

/// MQTT 5 PUBLISH. Topic, payload and properties are shared slices of the receive buffer
/// when decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// Delivery QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name; empty when the packet names its topic by a Topic Alias only.
    pub topic: ByteStr,
    /// Packet identifier: present exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    /// The properties, forwardable ones as one block and per-delivery ones as values.
    pub properties: PublishProperties,
    /// Application payload.
    pub payload: Bytes,
}

impl Publish {
    /// A PUBLISH without properties, DUP and RETAIN clear.
    pub fn new(qos: QoS, packet_id: Option<PacketId>, topic: ByteStr, payload: Bytes) -> Self {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic,
            packet_id,
            properties: PublishProperties::default(),
            payload,
        }
    }
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP of MQTT 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Packet identifier of the PUBLISH (or PUBREC) acknowledged.
    pub packet_id: PacketId,
    /// Reason code; encoded in the short form when it is Success and there are no
    /// properties.
    pub reason: ReasonCode,
    /// Reason String and User Properties.
    pub properties: Properties,
}

impl Ack {
    /// Reason 0 and no properties: written in the two-byte short form.
    #[inline]
    fn is_short(&self) -> bool {
        self.reason == ReasonCode::Success && self.properties.is_empty()
    }

    /// A successful ack without properties (the two-byte short form).
    pub fn success(packet_id: PacketId) -> Self {
        Ack {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }
    }
}

/// What to do with retained messages when a subscription is made (MQTT 5.0 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist.
    SendAtNewSubscription = 1,
    /// 2: do not send them.
    DoNotSend = 2,
}

/// The subscription options byte of an MQTT 5 SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local: do not deliver the subscriber's own publications.
    pub no_local: bool,
    /// Retain As Published: keep the RETAIN flag of forwarded messages.
    pub retain_as_published: bool,
    /// Retain Handling.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Reads the options byte: reserved bits 6 and 7 and Maximum QoS 3 make a Malformed
    /// Packet (MQTT-3.8.3-5), Retain Handling 3 a Protocol Error.
    pub const fn from_u8(b: u8) -> Result<Self, DecodeError> {
        if b & 0b1100_0000 != 0 {
            return Err(DecodeError::ReservedSubscriptionOptions(b));
        }
        let qos = match QoS::from_u8(b & 0b11) {
            Some(q) => q,
            None => return Err(DecodeError::ReservedSubscriptionOptions(b)),
        };
        let retain_handling = match (b >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtNewSubscription,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::InvalidRetainHandling(b)),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: b & 0b100 != 0,
            retain_as_published: b & 0b1000 != 0,
            retain_handling,
        })
    }

    /// The options byte.
    pub const fn to_u8(self) -> u8 {
        self.qos as u8
            | ((self.no_local as u8) << 2)
            | ((self.retain_as_published as u8) << 3)
            | ((self.retain_handling as u8) << 4)
    }
}

/// One filter of an MQTT 5 SUBSCRIBE with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topic filter, as received (its syntax is checked by `mqgate-topic`).
    pub filter: ByteStr,
    /// The options.
    pub options: SubscriptionOptions,
}

/// MQTT 5 SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Subscription Identifier (at most one) and User Properties.
    pub properties: Properties,
    /// The filters, in order (never empty when decoded).
    pub filters: Vec<Subscription>,
}

impl Subscribe {
    /// The Subscription Identifier, if the SUBSCRIBE carries one.
    pub fn subscription_identifier(&self) -> Option<NonZeroU32> {
        self.properties
            .get(PropertyId::SubscriptionIdentifier)
            .and_then(|p| p.as_u32())
            .and_then(NonZeroU32::new)
    }
}

/// MQTT 5 SUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// Reason String and User Properties.
    pub properties: Properties,
    /// One reason code per filter, in order (Granted QoS 0 to 2 or an error).
    pub reasons: Vec<ReasonCode>,
}

/// MQTT 5 UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// User Properties.
    pub properties: Properties,
    /// The filters (never empty when decoded).
    pub filters: Vec<ByteStr>,
}

/// MQTT 5 UNSUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// Reason String and User Properties.
    pub properties: Properties,
    /// One reason code per filter, in order.
    pub reasons: Vec<ReasonCode>,
}

/// MQTT 5 DISCONNECT (from either side) or AUTH: a reason code and properties, both
/// left out on the wire when they are the default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReasonAndProperties {
    /// Reason code (Normal disconnection, 0x00, by default).
    pub reason: ReasonCode,
    /// The properties.
    pub properties: Properties,
}

/// Any MQTT 5 control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (1), boxed as on the 3.1.1 path.
    Connect(Box<Connect>),
    /// CONNACK (2).
    ConnAck(ConnAck),
    /// PUBLISH (3).
    Publish(Publish),
    /// PUBACK (4).
    PubAck(Ack),
    /// PUBREC (5).
    PubRec(Ack),
    /// PUBREL (6).
    PubRel(Ack),
    /// PUBCOMP (7).
    PubComp(Ack),
    /// SUBSCRIBE (8).
    Subscribe(Subscribe),
    /// SUBACK (9).
    SubAck(SubAck),
    /// UNSUBSCRIBE (10).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (11).
    UnsubAck(UnsubAck),
    /// PINGREQ (12).
    PingReq,
    /// PINGRESP (13).
    PingResp,
    /// DISCONNECT (14).
    Disconnect(ReasonAndProperties),
    /// AUTH (15).
    Auth(ReasonAndProperties),
}

impl Packet {
    /// The packet type number of the fixed header (1 to 15).
    pub const fn packet_type(&self) -> u8 {
        match self {
            Packet::Connect(_) => 1,
            Packet::ConnAck(_) => 2,
            Packet::Publish(_) => 3,
            Packet::PubAck(_) => 4,
            Packet::PubRec(_) => 5,
            Packet::PubRel(_) => 6,
            Packet::PubComp(_) => 7,
            Packet::Subscribe(_) => 8,
            Packet::SubAck(_) => 9,
            Packet::Unsubscribe(_) => 10,
            Packet::UnsubAck(_) => 11,
            Packet::PingReq => 12,
            Packet::PingResp => 13,
            Packet::Disconnect(_) => 14,
            Packet::Auth(_) => 15,
        }
    }

    /// The packet's name as the standard spells it.
    pub const fn name(&self) -> &'static str {
        crate::packet::PACKET_NAMES[self.packet_type() as usize]
    }
}

// ---------------------------------------------------------------- decoding

/// Decodes one MQTT 5 packet from its first byte and its body (everything after the fixed
/// header). [`Decoder::decode_v5`](crate::Decoder::decode_v5) is the streaming form.
pub fn decode_body(byte1: u8, mut body: Bytes) -> Result<Packet, DecodeError> {
    let packet_type = byte1 >> 4;
    let packet = match packet_type {
        1 => {
            expect_flags(byte1, 0)?;
            Packet::Connect(Box::new(decode_connect(&mut body)?))
        }
        2 => {
            expect_flags(byte1, 0)?;
            let flags = take_u8(&mut body)?;
            if flags & 0xfe != 0 {
                return Err(DecodeError::InvalidConnAckFlags(flags));
            }
            let reason = reason_for(2, take_u8(&mut body)?)?;
            let properties = take_properties(&mut body, PropertyContext::ConnAck)?;
            Packet::ConnAck(ConnAck {
                session_present: flags & 1 != 0,
                reason,
                properties,
            })
        }
        3 => return decode_publish(byte1 & 0x0f, body).map(Packet::Publish),
        4 => {
            expect_flags(byte1, 0)?;
            Packet::PubAck(decode_ack(4, &mut body, PropertyContext::PubAck)?)
        }
        5 => {
            expect_flags(byte1, 0)?;
            Packet::PubRec(decode_ack(5, &mut body, PropertyContext::PubRec)?)
        }
        6 => {
            expect_flags(byte1, 0b0010)?;
            Packet::PubRel(decode_ack(6, &mut body, PropertyContext::PubRel)?)
        }
        7 => {
            expect_flags(byte1, 0)?;
            Packet::PubComp(decode_ack(7, &mut body, PropertyContext::PubComp)?)
        }
        8 => {
            expect_flags(byte1, 0b0010)?;
            let packet_id = take_packet_id(&mut body)?;
            let properties = take_properties(&mut body, PropertyContext::Subscribe)?;
            let filters = take_filters(&mut body, |filter, body| {
                let options = SubscriptionOptions::from_u8(take_u8(body)?)?;
                Ok(Subscription { filter, options })
            })?;
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        }
        9 | 11 => {
            expect_flags(byte1, 0)?;
            let packet_id = take_packet_id(&mut body)?;
            let ctx = if packet_type == 9 {
                PropertyContext::SubAck
            } else {
                PropertyContext::UnsubAck
            };
            let properties = take_properties(&mut body, ctx)?;
            let reasons = body
                .iter()
                .map(|&b| reason_for(packet_type, b))
                .collect::<Result<Vec<_>, _>>()?;
            if reasons.is_empty() {
                return Err(DecodeError::UnexpectedEnd);
            }
            body.advance(body.len());
            if packet_type == 9 {
                Packet::SubAck(SubAck {
                    packet_id,
                    properties,
                    reasons,
                })
            } else {
                Packet::UnsubAck(UnsubAck {
                    packet_id,
                    properties,
                    reasons,
                })
            }
        }
        10 => {
            expect_flags(byte1, 0b0010)?;
            let packet_id = take_packet_id(&mut body)?;
            let properties = take_properties(&mut body, PropertyContext::Unsubscribe)?;
            let filters = take_filters(&mut body, |filter, _| Ok(filter))?;
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters,
            })
        }
        12 => {
            expect_flags(byte1, 0)?;
            Packet::PingReq
        }
        13 => {
            expect_flags(byte1, 0)?;
            Packet::PingResp
        }
        14 => {
            expect_flags(byte1, 0)?;
            Packet::Disconnect(decode_reason_and_properties(
                14,
                &mut body,
                PropertyContext::Disconnect,
            )?)
        }
        15 => {
            expect_flags(byte1, 0)?;
            Packet::Auth(decode_reason_and_properties(
                15,
                &mut body,
                PropertyContext::Auth,
            )?)
        }
        t => return Err(DecodeError::ReservedPacketType(t)),
    };
    if body.has_remaining() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(packet)
}

/// A property block: its Variable Byte Integer length, then the block, checked for `ctx`.
fn take_properties(body: &mut Bytes, ctx: PropertyContext) -> Result<Properties, DecodeError> {
    let raw = take_property_block(body)?;
    Properties::from_wire(raw, Some(ctx))
}

fn take_property_block(body: &mut Bytes) -> Result<Bytes, DecodeError> {
    let mut view: &[u8] = body;
    let len = read_var_int(&mut view)? as usize;
    let header = body.len() - view.len();
    if view.len() < len {
        return Err(DecodeError::UnexpectedEnd);
    }
    body.advance(header);
    Ok(body.split_to(len))
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP: packet id, then optionally a reason code, then
/// optionally properties (MQTT 5.0 3.4.2.1).
fn decode_ack(packet_type: u8, body: &mut Bytes, ctx: PropertyContext) -> Result<Ack, DecodeError> {
    let packet_id = take_packet_id(body)?;
    let ReasonAndProperties { reason, properties } =
        decode_reason_and_properties(packet_type, body, ctx)?;
    Ok(Ack {
        packet_id,
        reason,
        properties,
    })
}

/// DISCONNECT and AUTH: optionally a reason code, then optionally properties.
fn decode_reason_and_properties(
    packet_type: u8,
    body: &mut Bytes,
    ctx: PropertyContext,
) -> Result<ReasonAndProperties, DecodeError> {
    let reason = if body.has_remaining() {
        reason_for(packet_type, take_u8(body)?)?
    } else {
        ReasonCode::Success
    };
    let properties = if body.has_remaining() {
        take_properties(body, ctx)?
    } else {
        Properties::new()
    };
    Ok(ReasonAndProperties { reason, properties })
}

/// Decodes the complete frame at the front of `buf` (`frame_len` bytes, of which
/// `header_len` are the fixed header) and removes it from `buf`: the general path of
/// [`decode_body`], with two shortcuts for the bulk of the traffic. A PUBLISH is decoded
/// straight into the result; an ack, a ping, a DISCONNECT or an AUTH without properties
/// holds no bytes of the buffer, so it is parsed in place and skipped, without the
/// reference counting of a split and its drop.
#[inline]
pub(crate) fn decode_frame(
    byte1: u8,
    header_len: usize,
    frame_len: usize,
    buf: &mut BytesMut,
) -> Result<Packet, DecodeError> {
    if byte1 >> 4 == 3 {
        let mut frame = buf.split_to(frame_len).freeze();
        frame.advance(header_len);
        return decode_publish(byte1 & 0x0f, frame).map(Packet::Publish);
    }
    let body = buf
        .get(header_len..frame_len)
        .ok_or(DecodeError::UnexpectedEnd)?;
    if let Some(packet) = decode_in_place(byte1, body) {
        buf.advance(frame_len);
        return packet;
    }
    let mut frame = buf.split_to(frame_len).freeze();
    frame.advance(header_len);
    decode_body(byte1, frame)
}

/// The packets [`decode_frame`] parses from a borrowed body: those whose body has no
/// property bytes (at most an empty property block), with exactly the result
/// [`decode_body`] gives them; `None` for every other packet.
fn decode_in_place(byte1: u8, body: &[u8]) -> Option<Result<Packet, DecodeError>> {
    let packet_type = byte1 >> 4;
    // The body, less an empty property block after the fields in front of it.
    let without_empty_block = |fields: usize| match body.split_at_checked(fields) {
        None => Some(body),
        Some((front, [])) | Some((front, [0])) => Some(front),
        Some(_) => None,
    };
    Some(match packet_type {
        4..=7 => {
            let fields = without_empty_block(3)?;
            let (&id, rest) = fields.split_first_chunk::<2>()?;
            let flags = if packet_type == 6 { 0b0010 } else { 0 };
            expect_flags(byte1, flags).and_then(|()| {
                let packet_id =
                    PacketId::new(u16::from_be_bytes(id)).ok_or(DecodeError::ZeroPacketId)?;
                let reason = match rest.first() {
                    Some(&code) => reason_for(packet_type, code)?,
                    None => ReasonCode::Success,
                };
                let ack = Ack {
                    packet_id,
                    reason,
                    properties: Properties::new(),
                };
                Ok(match packet_type {
                    4 => Packet::PubAck(ack),
                    5 => Packet::PubRec(ack),
                    6 => Packet::PubRel(ack),
                    _ => Packet::PubComp(ack),
                })
            })
        }
        12 | 13 if body.is_empty() => expect_flags(byte1, 0).map(|()| {
            if packet_type == 12 {
                Packet::PingReq
            } else {
                Packet::PingResp
            }
        }),
        14 | 15 => {
            let fields = without_empty_block(1)?;
            expect_flags(byte1, 0).and_then(|()| {
                let reason = match fields.first() {
                    Some(&code) => reason_for(packet_type, code)?,
                    None => ReasonCode::Success,
                };
                let value = ReasonAndProperties {
                    reason,
                    properties: Properties::new(),
                };
                Ok(if packet_type == 14 {
                    Packet::Disconnect(value)
                } else {
                    Packet::Auth(value)
                })
            })
        }
        _ => return None,
    })
}

#[inline]
fn decode_publish(flags: u8, mut body: Bytes) -> Result<Publish, DecodeError> {
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQos)?;
    let topic_raw = take_bytes(&mut body)?;
    let topic = if topic_raw.is_empty() {
        ByteStr::default()
    } else {
        ByteStr::topic_name(topic_raw)?
    };
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce | QoS::ExactlyOnce => Some(take_packet_id(&mut body)?),
    };
    let properties = if body.first() == Some(&0) {
        // No properties (most PUBLISHes): nothing to split off and read.
        body.advance(1);
        PublishProperties::default()
    } else {
        PublishProperties::decode(take_property_block(&mut body)?)?
    };
    if topic.is_empty() && properties.topic_alias.is_none() {
        return Err(DecodeError::EmptyTopicWithoutAlias);
    }
    Ok(Publish {
        dup: flags & 0b1000 != 0,
        qos,
        retain: flags & 1 != 0,
        topic,
        packet_id,
        properties,
        payload: body,
    })
}

fn decode_connect(body: &mut Bytes) -> Result<Connect, DecodeError> {
    let name = take_bytes(body)?;
    let level = take_u8(body)?;
    match (&name[..], level) {
        (b"MQTT", PROTOCOL_LEVEL) => {}
        (b"MQTT", l) | (b"MQIsdp", l) => return Err(DecodeError::UnsupportedProtocolLevel(l)),
        _ => return Err(DecodeError::InvalidProtocolName),
    }
    let flags = ConnectFlags::read(take_u8(body)?)?;
    let keep_alive = take_u16(body)?;
    let properties = take_properties(body, PropertyContext::Connect)?;
    let client_id = take_str(body)?;
    let will = match flags.will {
        Some((qos, retain)) => Some(Will {
            properties: take_properties(body, PropertyContext::Will)?,
            topic: take_topic_name(body)?,
            payload: take_bytes(body)?,
            qos,
            retain,
        }),
        None => None,
    };
    let (username, password) = flags.take_login(body)?;
    Ok(Connect {
        clean_start: flags.clean,
        keep_alive,
        properties,
        client_id,
        will,
        username,
        password,
    })
}

// ---------------------------------------------------------------- encoding

/// The remaining length of an ack, DISCONNECT or AUTH in its shortest form: `fixed` bytes
/// (the packet id or nothing), then the reason code unless it is 0 and there are no
/// properties, then the properties unless there are none.
fn short_form_len(fixed: usize, reason: ReasonCode, props: &Properties) -> usize {
    if !props.is_empty() {
        fixed + 1 + props.wire_len()
    } else if reason != ReasonCode::Success {
        fixed + 1
    } else {
        fixed
    }
}

fn put_short_form(buf: &mut BytesMut, reason: ReasonCode, props: &Properties) {
    if !props.is_empty() {
        buf.put_u8(reason as u8);
        props.put(buf);
    } else if reason != ReasonCode::Success {
        buf.put_u8(reason as u8);
    }
}

fn check_reason(packet_type: u8, reason: ReasonCode) -> Result<(), EncodeError> {
    if reason.allowed_in(packet_type) {
        Ok(())
    } else {
        Err(EncodeError::ReasonCodeNotAllowed(reason as u8))
    }
}

fn check_list<T>(list: &[T]) -> Result<(), EncodeError> {
    if list.is_empty() {
        Err(EncodeError::EmptyList)
    } else {
        Ok(())
    }
}

impl Publish {
    /// Checks the packet id against the QoS, the topic, and the properties' values.
    #[inline]
    fn check(&self) -> Result<(), EncodeError> {
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, None) | (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(_)) => {}
            _ => return Err(EncodeError::PacketIdMismatch),
        }
        if self.topic.is_empty() && self.properties.topic_alias.is_none() {
            return Err(EncodeError::EmptyTopicWithoutAlias);
        }
        self.properties.check()
    }

    /// The exact number of bytes [`Publish::encode`] writes.
    ///
    /// # Errors
    /// As [`Publish::encode`].
    #[inline]
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let (_, remaining) = self.lengths()?;
        Ok(1 + var_int_len(remaining) + remaining)
    }

    /// Appends the PUBLISH's wire form to `buf`, reserving the exact length once: what
    /// [`Packet::encode`] writes for it.
    ///
    /// # Errors
    /// A packet id that does not fit the QoS, an empty topic without a Topic Alias, a
    /// Subscription Identifier out of range, or a packet over the largest remaining length.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use mqgate_codec::v5::{Packet, Publish};
    /// use mqgate_codec::{ByteStr, QoS};
    /// let publish = Publish::new(QoS::AtMostOnce, None, ByteStr::from_static("a"), Bytes::from_static(b"x"));
    /// let (mut alone, mut general) = (BytesMut::new(), BytesMut::new());
    /// publish.encode(&mut alone)?;
    /// assert_eq!(publish.encoded_len()?, alone.len());
    /// Packet::Publish(publish).encode(&mut general)?;
    /// assert_eq!(alone, general);
    /// assert_eq!(&alone[..], &[0x30, 5, 0, 1, b'a', 0, b'x']);
    /// # Ok::<(), mqgate_codec::EncodeError>(())
    /// ```
    #[inline]
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let (props_len, remaining) = self.lengths()?;
        buf.reserve(1 + var_int_len(remaining) + remaining);
        self.put_header(buf, remaining, props_len);
        buf.put_slice(&self.payload);
        Ok(())
    }

    /// Writes everything but the payload, for a vectored write of a large payload
    /// (as [`crate::Publish::encode_header`] does on the 3.1.1 path).
    pub fn encode_header(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let (props_len, remaining) = self.lengths()?;
        buf.reserve(1 + var_int_len(remaining) + remaining - self.payload.len());
        self.put_header(buf, remaining, props_len);
        Ok(())
    }

    /// The property block's length and the remaining length, the packet checked and the
    /// remaining length within what the fixed header can express.
    #[inline]
    fn lengths(&self) -> Result<(usize, usize), EncodeError> {
        self.check()?;
        let props_len = self.properties.raw_len();
        let remaining = self.remaining_len(props_len)?;
        if remaining > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge(remaining));
        }
        Ok((props_len, remaining))
    }

    fn remaining_len(&self, props_len: usize) -> Result<usize, EncodeError> {
        let id_len = if self.packet_id.is_some() { 2 } else { 0 };
        if props_len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge(props_len));
        }
        Ok(str_len(self.topic.len())? + id_len + block_len(props_len) + self.payload.len())
    }

    #[inline]
    fn put_header(&self, buf: &mut BytesMut, remaining: usize, props_len: usize) {
        let flags = (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain);
        buf.put_u8(0x30 | flags);
        put_var_int(buf, remaining);
        put_str(buf, self.topic.as_bytes());
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        if props_len == 0 {
            // The property length of a PUBLISH without properties.
            buf.put_u8(0);
        } else {
            self.properties.put(buf, props_len);
        }
    }
}

impl Connect {
    fn check(&self) -> Result<(), EncodeError> {
        self.properties.check_for(PropertyContext::Connect)?;
        if let Some(w) = &self.will {
            w.properties.check_for(PropertyContext::Will)?;
        }
        Ok(())
    }

    /// The fields after the will properties: will topic and payload, user name, password.
    fn tail(&self) -> [Option<&[u8]>; 4] {
        connect_tail(
            self.will.as_ref().map(|w| (&w.topic, &w.payload)),
            self.username.as_ref(),
            self.password.as_ref(),
        )
    }

    fn remaining_len(&self) -> Result<usize, EncodeError> {
        // "MQTT", level, flags, keep alive.
        let will_props = self.will.as_ref().map_or(0, |w| w.properties.wire_len());
        Ok(6 + 1
            + 1
            + 2
            + self.properties.wire_len()
            + str_len(self.client_id.len())?
            + will_props
            + fields_len(&self.tail())?)
    }

    fn put_body(&self, buf: &mut BytesMut) {
        put_str(buf, b"MQTT");
        buf.put_u8(PROTOCOL_LEVEL);
        let flags = ConnectFlags {
            clean: self.clean_start,
            will: self.will.as_ref().map(|w| (w.qos, w.retain)),
            username: self.username.is_some(),
            password: self.password.is_some(),
        };
        buf.put_u8(flags.to_u8());
        buf.put_u16(self.keep_alive);
        self.properties.put(buf);
        put_str(buf, self.client_id.as_bytes());
        if let Some(w) = &self.will {
            w.properties.put(buf);
        }
        put_fields(buf, &self.tail());
    }
}

impl Packet {
    /// Checks what the types do not: which properties and reason codes the packet may
    /// carry, lists not empty, the PUBLISH rules.
    fn check(&self) -> Result<(), EncodeError> {
        match self {
            Packet::Connect(c) => c.check(),
            Packet::ConnAck(c) => {
                check_reason(2, c.reason)?;
                c.properties.check_for(PropertyContext::ConnAck)
            }
            Packet::Publish(p) => p.check(),
            Packet::PubAck(a) => check_ack(4, a, PropertyContext::PubAck),
            Packet::PubRec(a) => check_ack(5, a, PropertyContext::PubRec),
            Packet::PubRel(a) => check_ack(6, a, PropertyContext::PubRel),
            Packet::PubComp(a) => check_ack(7, a, PropertyContext::PubComp),
            Packet::Subscribe(s) => {
                check_list(&s.filters)?;
                s.properties.check_for(PropertyContext::Subscribe)
            }
            Packet::SubAck(s) => {
                check_list(&s.reasons)?;
                s.reasons.iter().try_for_each(|r| check_reason(9, *r))?;
                s.properties.check_for(PropertyContext::SubAck)
            }
            Packet::Unsubscribe(u) => {
                check_list(&u.filters)?;
                u.properties.check_for(PropertyContext::Unsubscribe)
            }
            Packet::UnsubAck(u) => {
                check_list(&u.reasons)?;
                u.reasons.iter().try_for_each(|r| check_reason(11, *r))?;
                u.properties.check_for(PropertyContext::UnsubAck)
            }
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(d) => {
                check_reason(14, d.reason)?;
                d.properties.check_for(PropertyContext::Disconnect)
            }
            Packet::Auth(a) => {
                check_reason(15, a.reason)?;
                a.properties.check_for(PropertyContext::Auth)
            }
        }
    }

    /// The remaining length (everything after the fixed header).
    fn remaining_len(&self) -> Result<usize, EncodeError> {
        Ok(match self {
            Packet::Connect(c) => c.remaining_len()?,
            Packet::ConnAck(c) => 2 + c.properties.wire_len(),
            Packet::Publish(p) => p.remaining_len(p.properties.raw_len())?,
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                short_form_len(2, a.reason, &a.properties)
            }
            Packet::Subscribe(s) => s
                .filters
                .iter()
                .try_fold(2 + s.properties.wire_len(), |acc, f| {
                    Ok::<_, EncodeError>(acc + str_len(f.filter.len())? + 1)
                })?,
            Packet::SubAck(s) => 2 + s.properties.wire_len() + s.reasons.len(),
            Packet::Unsubscribe(u) => u
                .filters
                .iter()
                .try_fold(2 + u.properties.wire_len(), |acc, f| {
                    Ok::<_, EncodeError>(acc + str_len(f.len())?)
                })?,
            Packet::UnsubAck(u) => 2 + u.properties.wire_len() + u.reasons.len(),
            Packet::PingReq | Packet::PingResp => 0,
            Packet::Disconnect(d) | Packet::Auth(d) => short_form_len(0, d.reason, &d.properties),
        })
    }

    /// The exact number of bytes [`Packet::encode`] writes.
    #[inline]
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        match self {
            Packet::Publish(p) => p.encoded_len(),
            other => other.encoded_len_other(),
        }
    }

    /// [`Packet::encoded_len`] of a packet other than PUBLISH.
    #[inline(never)]
    fn encoded_len_other(&self) -> Result<usize, EncodeError> {
        self.check()?;
        let remaining = self.remaining_len()?;
        if remaining > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge(remaining));
        }
        Ok(1 + var_int_len(remaining) + remaining)
    }

    /// Appends the packet's wire form to `buf`, reserving the exact length once. Acks,
    /// DISCONNECT and AUTH take their shortest form (no reason code when it is 0 and there
    /// are no properties, no property length when there are none).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use mqgate_codec::v5::{Ack, Packet};
    /// use mqgate_codec::ReasonCode;
    /// let mut buf = BytesMut::new();
    /// let mut ack = Ack::success(7.try_into().unwrap());
    /// Packet::PubAck(ack.clone()).encode(&mut buf).unwrap();
    /// ack.reason = ReasonCode::NoMatchingSubscribers;
    /// Packet::PubAck(ack).encode(&mut buf).unwrap();
    /// assert_eq!(&buf[..], &[0x40, 2, 0, 7, 0x40, 3, 0, 7, 0x10]);
    /// ```
    #[inline]
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        // The bulk of the traffic, checked and written without the general match: PUBLISH,
        // and the acks in their short form (reason 0, no properties: 4 bytes, as in 3.1.1).
        match self {
            Packet::Publish(p) => p.encode(buf),
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a)
                if a.is_short() =>
            {
                put_ack(buf, self.first_byte(), a.packet_id);
                Ok(())
            }
            other => other.encode_other(buf),
        }
    }

    /// The fixed header's first byte: the packet type and the flags the standard fixes.
    #[inline]
    fn first_byte(&self) -> u8 {
        match self {
            Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => {
                (self.packet_type() << 4) | 0b0010
            }
            _ => self.packet_type() << 4,
        }
    }

    /// [`Packet::encode`] of a packet other than PUBLISH.
    #[inline(never)]
    fn encode_other(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.check()?;
        let remaining = self.remaining_len()?;
        if remaining > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge(remaining));
        }
        buf.reserve(1 + var_int_len(remaining) + remaining);
        buf.put_u8(self.first_byte());
        put_var_int(buf, remaining);
        match self {
            Packet::Connect(c) => c.put_body(buf),
            Packet::ConnAck(c) => {
                buf.put_u8(u8::from(c.session_present));
                buf.put_u8(c.reason as u8);
                c.properties.put(buf);
            }
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                buf.put_u16(a.packet_id.get());
                put_short_form(buf, a.reason, &a.properties);
            }
            Packet::Subscribe(s) => {
                buf.put_u16(s.packet_id.get());
                s.properties.put(buf);
                for f in &s.filters {
                    put_str(buf, f.filter.as_bytes());
                    buf.put_u8(f.options.to_u8());
                }
            }
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reasons,
            })
            | Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reasons,
            }) => {
                buf.put_u16(packet_id.get());
                properties.put(buf);
                for r in reasons {
                    buf.put_u8(*r as u8);
                }
            }
            Packet::Unsubscribe(u) => {
                buf.put_u16(u.packet_id.get());
                u.properties.put(buf);
                for f in &u.filters {
                    put_str(buf, f.as_bytes());
                }
            }
            Packet::Disconnect(d) | Packet::Auth(d) => put_short_form(buf, d.reason, &d.properties),
            Packet::Publish(_) | Packet::PingReq | Packet::PingResp => {}
        }
        Ok(())
    }
}

fn check_ack(packet_type: u8, a: &Ack, ctx: PropertyContext) -> Result<(), EncodeError> {
    check_reason(packet_type, a.reason)?;
    a.properties.check_for(ctx)
}
