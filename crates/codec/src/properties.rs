//! MQTT 5 properties (MQTT 5.0 section 2.2.2): identifiers, types, where each may appear,
//! the duplicate rules, and the variable byte integer that carries their length.
//!
//! A property block stays in its wire encoding ([`Properties`] wraps the checked bytes):
//! a broker forwards most properties without interpreting them, so keeping the bytes is both
//! the zero-copy path and the way the order of User Properties is kept.

use bytes::{BufMut, Bytes, BytesMut};
use core::fmt;
use core::num::{NonZeroU16, NonZeroU32};

use crate::string::check_mqtt_str;
use crate::{DecodeError, EncodeError};

/// The largest value a Variable Byte Integer can hold (four bytes of seven bits).
pub const MAX_VAR_INT: u32 = 268_435_455;

/// Reads a Variable Byte Integer from the front of `b`, advancing it: at most four bytes,
/// minimally encoded (MQTT-1.5.5-1).
pub(crate) fn read_var_int(b: &mut &[u8]) -> Result<u32, DecodeError> {
    let mut value = 0u32;
    for i in 0..4 {
        let (&byte, rest) = b.split_first().ok_or(DecodeError::UnexpectedEnd)?;
        *b = rest;
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(DecodeError::MalformedVarInt);
            }
            return Ok(value);
        }
    }
    Err(DecodeError::MalformedVarInt)
}

/// Bytes the Variable Byte Integer encoding of `v` takes.
#[inline]
pub(crate) const fn var_int_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `v` (at most [`MAX_VAR_INT`]; callers check) as a Variable Byte Integer.
#[inline]
pub(crate) fn put_var_int(buf: &mut BytesMut, mut v: usize) {
    loop {
        let mut byte = (v % 128) as u8;
        v /= 128;
        if v > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if v == 0 {
            break;
        }
    }
}

/// The wire type of a property's value (MQTT 5.0 section 1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyType {
    /// One byte.
    Byte,
    /// Two-byte big-endian integer.
    TwoByteInt,
    /// Four-byte big-endian integer.
    FourByteInt,
    /// Variable Byte Integer (one to four bytes).
    VarInt,
    /// UTF-8 string with a two-byte length.
    Utf8,
    /// Two UTF-8 strings (name, value).
    Utf8Pair,
    /// Binary data with a two-byte length.
    Binary,
}

/// The packet (or part of one) a property block belongs to; each allows its own set of
/// properties (MQTT 5.0 table 2-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyContext {
    /// CONNECT's properties.
    Connect,
    /// The will properties inside CONNECT.
    Will,
    /// CONNACK.
    ConnAck,
    /// PUBLISH.
    Publish,
    /// PUBACK.
    PubAck,
    /// PUBREC.
    PubRec,
    /// PUBREL.
    PubRel,
    /// PUBCOMP.
    PubComp,
    /// SUBSCRIBE.
    Subscribe,
    /// SUBACK.
    SubAck,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// UNSUBACK.
    UnsubAck,
    /// DISCONNECT.
    Disconnect,
    /// AUTH.
    Auth,
}

impl PropertyContext {
    /// The packet type number (the will's is CONNECT's, 1).
    pub const fn packet_type(self) -> u8 {
        use PropertyContext::*;
        match self {
            Connect | Will => 1,
            ConnAck => 2,
            Publish => 3,
            PubAck => 4,
            PubRec => 5,
            PubRel => 6,
            PubComp => 7,
            Subscribe => 8,
            SubAck => 9,
            Unsubscribe => 10,
            UnsubAck => 11,
            Disconnect => 14,
            Auth => 15,
        }
    }

    /// The identifiers allowed here, one bit per identifier.
    const fn allowed(self) -> u64 {
        use PropertyContext::*;
        use PropertyId as P;
        const fn bits(ids: &[PropertyId]) -> u64 {
            let mut m = 0u64;
            let mut i = 0;
            while i < ids.len() {
                m |= 1u64 << ids[i] as u8;
                i += 1;
            }
            m
        }
        const FORWARD: u64 = bits(&[
            P::PayloadFormatIndicator,
            P::ContentType,
            P::ResponseTopic,
            P::CorrelationData,
            P::UserProperty,
        ]);
        const ACK: u64 = bits(&[P::ReasonString, P::UserProperty]);
        match self {
            Connect => bits(&[
                P::SessionExpiryInterval,
                P::AuthenticationMethod,
                P::AuthenticationData,
                P::RequestProblemInformation,
                P::RequestResponseInformation,
                P::ReceiveMaximum,
                P::TopicAliasMaximum,
                P::UserProperty,
                P::MaximumPacketSize,
            ]),
            Will => FORWARD | bits(&[P::MessageExpiryInterval, P::WillDelayInterval]),
            ConnAck => bits(&[
                P::SessionExpiryInterval,
                P::AssignedClientIdentifier,
                P::ServerKeepAlive,
                P::AuthenticationMethod,
                P::AuthenticationData,
                P::ResponseInformation,
                P::ServerReference,
                P::ReasonString,
                P::ReceiveMaximum,
                P::TopicAliasMaximum,
                P::MaximumQoS,
                P::RetainAvailable,
                P::UserProperty,
                P::MaximumPacketSize,
                P::WildcardSubscriptionAvailable,
                P::SubscriptionIdentifierAvailable,
                P::SharedSubscriptionAvailable,
            ]),
            Publish => {
                FORWARD
                    | bits(&[
                        P::MessageExpiryInterval,
                        P::TopicAlias,
                        P::SubscriptionIdentifier,
                    ])
            }
            PubAck | PubRec | PubRel | PubComp | SubAck | UnsubAck => ACK,
            Subscribe => bits(&[P::SubscriptionIdentifier, P::UserProperty]),
            Unsubscribe => bits(&[P::UserProperty]),
            Disconnect => bits(&[
                P::SessionExpiryInterval,
                P::ServerReference,
                P::ReasonString,
                P::UserProperty,
            ]),
            Auth => bits(&[
                P::AuthenticationMethod,
                P::AuthenticationData,
                P::ReasonString,
                P::UserProperty,
            ]),
        }
    }
}

macro_rules! property_ids {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $ty:ident, $label:literal;)*) => {
        /// A property identifier with its value (MQTT 5.0 table 2-4).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum PropertyId {
            $($(#[$doc])* $name = $value,)*
        }

        impl PropertyId {
            /// Every identifier the standard defines, in numeric order.
            pub const ALL: &'static [PropertyId] = &[$(PropertyId::$name,)*];

            /// The identifier with value `v`, or `None` for one the standard does not define.
            pub const fn from_u8(v: u8) -> Option<PropertyId> {
                match v {
                    $($value => Some(PropertyId::$name),)*
                    _ => None,
                }
            }

            /// The type of the property's value.
            pub const fn property_type(self) -> PropertyType {
                match self {
                    $(PropertyId::$name => PropertyType::$ty,)*
                }
            }

            /// The property's name as the standard spells it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(PropertyId::$name => $label,)*
                }
            }
        }
    };
}

property_ids! {
    /// 0x01, byte, PUBLISH and will: 0 unspecified bytes, 1 UTF-8 payload.
    PayloadFormatIndicator = 0x01, Byte, "Payload Format Indicator";
    /// 0x02, four-byte integer, PUBLISH and will: lifetime in seconds.
    MessageExpiryInterval = 0x02, FourByteInt, "Message Expiry Interval";
    /// 0x03, UTF-8 string, PUBLISH and will.
    ContentType = 0x03, Utf8, "Content Type";
    /// 0x08, UTF-8 string, PUBLISH and will.
    ResponseTopic = 0x08, Utf8, "Response Topic";
    /// 0x09, binary data, PUBLISH and will.
    CorrelationData = 0x09, Binary, "Correlation Data";
    /// 0x0B, variable byte integer (1 to 268 435 455), PUBLISH (may repeat) and SUBSCRIBE.
    SubscriptionIdentifier = 0x0b, VarInt, "Subscription Identifier";
    /// 0x11, four-byte integer, CONNECT, CONNACK, DISCONNECT.
    SessionExpiryInterval = 0x11, FourByteInt, "Session Expiry Interval";
    /// 0x12, UTF-8 string, CONNACK.
    AssignedClientIdentifier = 0x12, Utf8, "Assigned Client Identifier";
    /// 0x13, two-byte integer, CONNACK.
    ServerKeepAlive = 0x13, TwoByteInt, "Server Keep Alive";
    /// 0x15, UTF-8 string, CONNECT, CONNACK, AUTH.
    AuthenticationMethod = 0x15, Utf8, "Authentication Method";
    /// 0x16, binary data, CONNECT, CONNACK, AUTH.
    AuthenticationData = 0x16, Binary, "Authentication Data";
    /// 0x17, byte (0 or 1), CONNECT.
    RequestProblemInformation = 0x17, Byte, "Request Problem Information";
    /// 0x18, four-byte integer, will.
    WillDelayInterval = 0x18, FourByteInt, "Will Delay Interval";
    /// 0x19, byte (0 or 1), CONNECT.
    RequestResponseInformation = 0x19, Byte, "Request Response Information";
    /// 0x1A, UTF-8 string, CONNACK.
    ResponseInformation = 0x1a, Utf8, "Response Information";
    /// 0x1C, UTF-8 string, CONNACK, DISCONNECT.
    ServerReference = 0x1c, Utf8, "Server Reference";
    /// 0x1F, UTF-8 string, CONNACK, the acks, DISCONNECT, AUTH.
    ReasonString = 0x1f, Utf8, "Reason String";
    /// 0x21, two-byte integer (not 0), CONNECT, CONNACK.
    ReceiveMaximum = 0x21, TwoByteInt, "Receive Maximum";
    /// 0x22, two-byte integer, CONNECT, CONNACK.
    TopicAliasMaximum = 0x22, TwoByteInt, "Topic Alias Maximum";
    /// 0x23, two-byte integer (not 0), PUBLISH.
    TopicAlias = 0x23, TwoByteInt, "Topic Alias";
    /// 0x24, byte (0 or 1), CONNACK.
    MaximumQoS = 0x24, Byte, "Maximum QoS";
    /// 0x25, byte (0 or 1), CONNACK.
    RetainAvailable = 0x25, Byte, "Retain Available";
    /// 0x26, UTF-8 string pair, every packet with properties; may repeat, order kept.
    UserProperty = 0x26, Utf8Pair, "User Property";
    /// 0x27, four-byte integer (not 0), CONNECT, CONNACK.
    MaximumPacketSize = 0x27, FourByteInt, "Maximum Packet Size";
    /// 0x28, byte (0 or 1), CONNACK.
    WildcardSubscriptionAvailable = 0x28, Byte, "Wildcard Subscription Available";
    /// 0x29, byte (0 or 1), CONNACK.
    SubscriptionIdentifierAvailable = 0x29, Byte, "Subscription Identifier Available";
    /// 0x2A, byte (0 or 1), CONNACK.
    SharedSubscriptionAvailable = 0x2a, Byte, "Shared Subscription Available";
}

impl PropertyId {
    /// Whether the property may appear in `ctx` (MQTT 5.0 table 2-4).
    pub const fn allowed_in(self, ctx: PropertyContext) -> bool {
        ctx.allowed() & (1u64 << self as u8) != 0
    }

    /// Whether the property may appear more than once in `ctx`: User Property anywhere,
    /// Subscription Identifier in PUBLISH.
    pub const fn may_repeat(self, ctx: PropertyContext) -> bool {
        matches!(self, PropertyId::UserProperty)
            || (matches!(self, PropertyId::SubscriptionIdentifier)
                && matches!(ctx, PropertyContext::Publish))
    }

    /// Whether a broker forwards the property of a PUBLISH unchanged to its receivers
    /// (Payload Format Indicator, Content Type, Response Topic, Correlation Data, User
    /// Property), as opposed to the per-delivery ones (Topic Alias, Message Expiry Interval,
    /// Subscription Identifier).
    pub const fn is_forwardable(self) -> bool {
        matches!(
            self,
            PropertyId::PayloadFormatIndicator
                | PropertyId::ContentType
                | PropertyId::ResponseTopic
                | PropertyId::CorrelationData
                | PropertyId::UserProperty
        )
    }
}

/// One property with its value, borrowed from the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Property<'a> {
    /// A property of type byte.
    Byte(PropertyId, u8),
    /// A property of type two-byte integer.
    TwoByteInt(PropertyId, u16),
    /// A property of type four-byte integer.
    FourByteInt(PropertyId, u32),
    /// A property of type variable byte integer (the Subscription Identifier).
    VarInt(PropertyId, u32),
    /// A property of type UTF-8 string.
    Utf8(PropertyId, &'a str),
    /// The User Property: name and value.
    UserProperty(&'a str, &'a str),
    /// A property of type binary data.
    Binary(PropertyId, &'a [u8]),
}

impl<'a> Property<'a> {
    /// The identifier.
    pub const fn id(&self) -> PropertyId {
        match *self {
            Property::Byte(id, _)
            | Property::TwoByteInt(id, _)
            | Property::FourByteInt(id, _)
            | Property::VarInt(id, _)
            | Property::Utf8(id, _)
            | Property::Binary(id, _) => id,
            Property::UserProperty(..) => PropertyId::UserProperty,
        }
    }

    /// The integer value of a byte, two-byte, four-byte or variable byte integer property.
    pub fn as_u32(&self) -> Option<u32> {
        match *self {
            Property::Byte(_, v) => Some(v.into()),
            Property::TwoByteInt(_, v) => Some(v.into()),
            Property::FourByteInt(_, v) | Property::VarInt(_, v) => Some(v),
            _ => None,
        }
    }

    /// The value of a UTF-8 string property.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Property::Utf8(_, s) => Some(s),
            _ => None,
        }
    }

    /// The value of a binary data property.
    pub fn as_binary(&self) -> Option<&'a [u8]> {
        match *self {
            Property::Binary(_, b) => Some(b),
            _ => None,
        }
    }

    /// Reads one property from the front of `b`, advancing it, and checks its value.
    fn read(b: &mut &'a [u8]) -> Result<Property<'a>, DecodeError> {
        let (&raw_id, rest) = b.split_first().ok_or(DecodeError::UnexpectedEnd)?;
        *b = rest;
        // An identifier is a Variable Byte Integer, but every defined one fits in a byte:
        // a continuation bit is an unknown identifier.
        let id = PropertyId::from_u8(raw_id).ok_or(DecodeError::InvalidPropertyId(raw_id))?;
        let p = match id.property_type() {
            PropertyType::Byte => Property::Byte(id, take::<1>(b)?[0]),
            PropertyType::TwoByteInt => Property::TwoByteInt(id, u16::from_be_bytes(take(b)?)),
            PropertyType::FourByteInt => Property::FourByteInt(id, u32::from_be_bytes(take(b)?)),
            PropertyType::VarInt => Property::VarInt(id, read_var_int(b)?),
            PropertyType::Utf8 => Property::Utf8(id, take_str(b)?),
            PropertyType::Utf8Pair => Property::UserProperty(take_str(b)?, take_str(b)?),
            PropertyType::Binary => Property::Binary(id, take_binary(b)?),
        };
        p.check_value()?;
        Ok(p)
    }

    /// The value rules of MQTT 5.0 section 3: a Protocol Error when broken.
    fn check_value(&self) -> Result<(), DecodeError> {
        use PropertyId as P;
        let ok = match *self {
            Property::Byte(_, v) => v <= 1,
            Property::TwoByteInt(P::ReceiveMaximum | P::TopicAlias, v) => v != 0,
            Property::FourByteInt(P::MaximumPacketSize, v) => v != 0,
            Property::VarInt(_, v) => v != 0,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(DecodeError::InvalidPropertyValue(self.id() as u8))
        }
    }

    /// Whether the value has the wire type of the identifier (always so when read).
    fn type_matches(&self) -> bool {
        let t = self.id().property_type();
        matches!(
            (self, t),
            (Property::Byte(..), PropertyType::Byte)
                | (Property::TwoByteInt(..), PropertyType::TwoByteInt)
                | (Property::FourByteInt(..), PropertyType::FourByteInt)
                | (Property::VarInt(..), PropertyType::VarInt)
                | (Property::Utf8(..), PropertyType::Utf8)
                | (Property::UserProperty(..), PropertyType::Utf8Pair)
                | (Property::Binary(..), PropertyType::Binary)
        )
    }

    /// The wire length of the property, identifier included.
    pub(crate) fn encoded_len(&self) -> usize {
        1 + match *self {
            Property::Byte(..) => 1,
            Property::TwoByteInt(..) => 2,
            Property::FourByteInt(..) => 4,
            Property::VarInt(_, v) => var_int_len(v as usize),
            Property::Utf8(_, s) => 2 + s.len(),
            Property::UserProperty(k, v) => 4 + k.len() + v.len(),
            Property::Binary(_, b) => 2 + b.len(),
        }
    }

    /// Writes the property; callers checked the lengths.
    pub(crate) fn put(&self, buf: &mut BytesMut) {
        buf.put_u8(self.id() as u8);
        match *self {
            Property::Byte(_, v) => buf.put_u8(v),
            Property::TwoByteInt(_, v) => buf.put_u16(v),
            Property::FourByteInt(_, v) => buf.put_u32(v),
            Property::VarInt(_, v) => put_var_int(buf, v as usize),
            Property::Utf8(_, s) => put_field(buf, s.as_bytes()),
            Property::UserProperty(k, v) => {
                put_field(buf, k.as_bytes());
                put_field(buf, v.as_bytes());
            }
            Property::Binary(_, b) => put_field(buf, b),
        }
    }
}

fn put_field(buf: &mut BytesMut, b: &[u8]) {
    buf.put_u16(b.len() as u16);
    buf.put_slice(b);
}

fn take<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], DecodeError> {
    let (head, rest) = b
        .split_first_chunk::<N>()
        .ok_or(DecodeError::UnexpectedEnd)?;
    *b = rest;
    Ok(*head)
}

fn take_binary<'a>(b: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len = usize::from(u16::from_be_bytes(take(b)?));
    if b.len() < len {
        return Err(DecodeError::UnexpectedEnd);
    }
    let (head, rest) = b.split_at(len);
    *b = rest;
    Ok(head)
}

fn take_str<'a>(b: &mut &'a [u8]) -> Result<&'a str, DecodeError> {
    let raw = take_binary(b)?;
    check_mqtt_str(raw)?;
    core::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)
}

/// Bit 63 of [`Properties::present`]: a Subscription Identifier appears more than once
/// (identifiers are at most 0x2A, so the bit is free).
const SUB_ID_REPEATED: u64 = 1 << 63;

/// What one pass over a property block found.
struct Scan {
    /// One bit per identifier present, and [`SUB_ID_REPEATED`].
    present: u64,
}

/// Checks every property of `raw` and the rules of `ctx` (allowed identifiers, duplicates,
/// Authentication Data only with a method); `None` checks only values and duplicates with
/// Subscription Identifier allowed to repeat (a block not yet placed in a packet).
fn scan(raw: &[u8], ctx: Option<PropertyContext>) -> Result<Scan, DecodeError> {
    let mut rest = raw;
    let mut present = 0u64;
    while !rest.is_empty() {
        let p = Property::read(&mut rest)?;
        let id = p.id();
        let bit = 1u64 << id as u8;
        if let Some(ctx) = ctx {
            if !id.allowed_in(ctx) {
                return Err(DecodeError::PropertyNotAllowed {
                    id: id as u8,
                    packet_type: ctx.packet_type(),
                });
            }
        }
        if present & bit != 0 {
            let repeat_ok = match ctx {
                Some(ctx) => id.may_repeat(ctx),
                None => id.may_repeat(PropertyContext::Publish),
            };
            if !repeat_ok {
                return Err(DecodeError::DuplicateProperty(id as u8));
            }
            if id == PropertyId::SubscriptionIdentifier {
                present |= SUB_ID_REPEATED;
            }
        }
        present |= bit;
    }
    let data = 1u64 << PropertyId::AuthenticationData as u8;
    let method = 1u64 << PropertyId::AuthenticationMethod as u8;
    if present & data != 0 && present & method == 0 {
        return Err(DecodeError::AuthDataWithoutMethod);
    }
    Ok(Scan { present })
}

/// A checked MQTT 5 property block in its wire encoding (without the length in front).
///
/// Decoding keeps the block as a slice of the packet (no copy, order kept); reading it is
/// an iteration over the bytes. Building one writes the bytes once:
///
/// ```
/// use mqgate_codec::{Properties, Property, PropertyId};
/// let props = Properties::build([
///     Property::Utf8(PropertyId::ReasonString, "maintenance"),
///     Property::UserProperty("region", "eu"),
///     Property::UserProperty("region", "us"),
/// ])?;
/// assert_eq!(props.get(PropertyId::ReasonString).and_then(|p| p.as_str()), Some("maintenance"));
/// assert_eq!(props.user_properties().collect::<Vec<_>>(), [("region", "eu"), ("region", "us")]);
/// // Twice a property that may appear once is refused.
/// assert!(Properties::build([Property::FourByteInt(PropertyId::SessionExpiryInterval, 1); 2]).is_err());
/// # Ok::<(), mqgate_codec::EncodeError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Properties {
    raw: Bytes,
    present: u64,
}

impl Properties {
    /// No properties.
    pub const fn new() -> Self {
        Properties {
            raw: Bytes::new(),
            present: 0,
        }
    }

    /// A block of `props`, in their order, checked for values, types and duplicates (which
    /// packet may carry it is checked when the packet is encoded).
    ///
    /// # Errors
    /// [`EncodeError::InvalidProperties`] with the error a decoder would report, or
    /// [`EncodeError::FieldTooLong`] for a string or binary value over 65 535 bytes.
    pub fn build<'a>(props: impl IntoIterator<Item = Property<'a>>) -> Result<Self, EncodeError> {
        let mut buf = BytesMut::new();
        for p in props {
            for field in match p {
                Property::Utf8(_, s) => [s.len(), 0],
                Property::UserProperty(k, v) => [k.len(), v.len()],
                Property::Binary(_, b) => [b.len(), 0],
                _ => [0, 0],
            } {
                if field > usize::from(u16::MAX) {
                    return Err(EncodeError::FieldTooLong(field));
                }
            }
            if !p.type_matches() {
                return Err(EncodeError::InvalidProperties(
                    DecodeError::InvalidPropertyValue(p.id() as u8),
                ));
            }
            if let Property::VarInt(id, v) = p {
                if v > MAX_VAR_INT {
                    return Err(EncodeError::InvalidProperties(
                        DecodeError::InvalidPropertyValue(id as u8),
                    ));
                }
            }
            buf.reserve(p.encoded_len());
            p.put(&mut buf);
        }
        Properties::from_wire(buf.freeze(), None).map_err(EncodeError::InvalidProperties)
    }

    /// Checks `raw` (a property block without its length) for `ctx`, or for values and
    /// duplicates only when `ctx` is `None`.
    ///
    /// ```
    /// use mqgate_codec::{DecodeError, Properties, PropertyContext};
    /// // Topic Alias (0x23) = 5: fine in PUBLISH, not in CONNECT.
    /// let raw = bytes::Bytes::from_static(&[0x23, 0x00, 0x05]);
    /// assert!(Properties::from_wire(raw.clone(), Some(PropertyContext::Publish)).is_ok());
    /// assert_eq!(
    ///     Properties::from_wire(raw, Some(PropertyContext::Connect)),
    ///     Err(DecodeError::PropertyNotAllowed { id: 0x23, packet_type: 1 })
    /// );
    /// ```
    pub fn from_wire(raw: Bytes, ctx: Option<PropertyContext>) -> Result<Self, DecodeError> {
        let Scan { present } = scan(&raw, ctx)?;
        Ok(Properties { raw, present })
    }

    /// The wire encoding (without the length in front), shared, not copied.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// Whether the block is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Whether a property with identifier `id` is present.
    pub fn contains(&self, id: PropertyId) -> bool {
        self.present & (1u64 << id as u8) != 0
    }

    /// The properties in the order they were written.
    pub fn iter(&self) -> PropertyIter<'_> {
        PropertyIter { rest: &self.raw }
    }

    /// The first property with identifier `id`.
    pub fn get(&self, id: PropertyId) -> Option<Property<'_>> {
        if !self.contains(id) {
            return None;
        }
        self.iter().find(|p| p.id() == id)
    }

    /// The User Properties, name and value, in order.
    pub fn user_properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().filter_map(|p| match p {
            Property::UserProperty(k, v) => Some((k, v)),
            _ => None,
        })
    }

    /// The properties a broker forwards with a message (see
    /// [`PropertyId::is_forwardable`]), in their order, in their wire encoding: a slice of
    /// this block when they are contiguous in it, otherwise a copy of just them. For a will,
    /// this is what the will message carries.
    pub fn forwardable(&self) -> Bytes {
        forwardable(&self.raw)
    }

    /// Checks that this block may be written in `ctx`.
    pub(crate) fn check_for(&self, ctx: PropertyContext) -> Result<(), EncodeError> {
        let extra = self.present & !SUB_ID_REPEATED & !ctx.allowed();
        if extra != 0 {
            return Err(EncodeError::PropertyNotAllowed(extra.trailing_zeros() as u8));
        }
        if self.present & SUB_ID_REPEATED != 0 && ctx != PropertyContext::Publish {
            return Err(EncodeError::InvalidProperties(
                DecodeError::DuplicateProperty(PropertyId::SubscriptionIdentifier as u8),
            ));
        }
        Ok(())
    }

    /// The block's length on the wire with its Variable Byte Integer length in front.
    pub(crate) fn wire_len(&self) -> usize {
        block_len(self.raw.len())
    }

    /// Writes the length and the block.
    pub(crate) fn put(&self, buf: &mut BytesMut) {
        put_var_int(buf, self.raw.len());
        buf.put_slice(&self.raw);
    }
}

/// A block of `len` bytes with its length in front.
pub(crate) const fn block_len(len: usize) -> usize {
    var_int_len(len) + len
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Properties {
    type Item = Property<'a>;
    type IntoIter = PropertyIter<'a>;
    fn into_iter(self) -> PropertyIter<'a> {
        self.iter()
    }
}

/// The properties of a checked block, in order (from [`Properties::iter`]).
#[derive(Debug, Clone)]
pub struct PropertyIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PropertyIter<'a> {
    type Item = Property<'a>;
    fn next(&mut self) -> Option<Property<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        // The block was checked when built; an error cannot happen, and ends the iteration
        // rather than panicking if it did.
        Property::read(&mut self.rest).ok()
    }
}

/// The forwardable properties of a checked block (see [`Properties::forwardable`]).
fn forwardable(raw: &Bytes) -> Bytes {
    let mut rest: &[u8] = raw;
    let mut first = None;
    let mut end = 0;
    let mut gap = false;
    let mut broken = false;
    while !rest.is_empty() {
        let start = raw.len() - rest.len();
        let Ok(p) = Property::read(&mut rest) else {
            break;
        };
        let stop = raw.len() - rest.len();
        if p.id().is_forwardable() {
            if first.is_none() {
                first = Some(start);
            } else if gap {
                broken = true;
            }
            end = stop;
            gap = false;
        } else if first.is_some() {
            gap = true;
        }
    }
    let Some(first) = first else {
        return Bytes::new();
    };
    if !broken {
        return raw.slice(first..end);
    }
    let mut out = BytesMut::with_capacity(end - first);
    let mut rest: &[u8] = raw;
    while !rest.is_empty() {
        let before = rest;
        let Ok(p) = Property::read(&mut rest) else {
            break;
        };
        if p.id().is_forwardable() {
            out.put_slice(&before[..before.len() - rest.len()]);
        }
    }
    out.freeze()
}

/// The properties of a PUBLISH, split the way a broker uses them: the forwardable ones as
/// one wire-encoded block (what a stored message keeps), and the per-delivery ones as
/// values (a broker sets them for each receiver).
///
/// ```
/// use bytes::Bytes;
/// use mqgate_codec::v5::PublishProperties;
/// use mqgate_codec::{Properties, Property, PropertyId};
/// let forward = Properties::build([
///     Property::Utf8(PropertyId::ContentType, "text/plain"),
///     Property::UserProperty("k", "v"),
/// ])?.forwardable();
/// let props = PublishProperties {
///     forward,
///     message_expiry_interval: Some(30),
///     topic_alias: None,
///     subscription_identifiers: vec![7.try_into().unwrap()].into(),
/// };
/// assert_eq!(props.forwarded().user_properties().collect::<Vec<_>>(), [("k", "v")]);
/// # Ok::<(), mqgate_codec::EncodeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// Payload Format Indicator, Content Type, Response Topic, Correlation Data and User
    /// Properties in their wire encoding, in the order received (without the length in
    /// front). Decoding slices it out of the packet when these properties are contiguous,
    /// and copies only them otherwise. The encoder writes it as it is, without parsing it
    /// again: it must be such a block, as decoding or [`Properties::forwardable`] made it
    /// (see [`PublishProperties::check_forward`] for bytes from elsewhere).
    pub forward: Bytes,
    /// Message Expiry Interval in seconds.
    pub message_expiry_interval: Option<u32>,
    /// Topic Alias.
    pub topic_alias: Option<NonZeroU16>,
    /// Subscription Identifiers (server to client only), in order.
    pub subscription_identifiers: SubscriptionIdentifiers,
}

/// The Subscription Identifiers of a PUBLISH, in order: a list that takes one word in the
/// packet and allocates only when it is not empty. Most PUBLISHes carry none, and a
/// PUBLISH value small enough is moved between the decoder, the broker and the encoder
/// without a call to `memcpy`.
///
/// ```
/// use core::num::NonZeroU32;
/// use mqgate_codec::v5::SubscriptionIdentifiers;
/// let mut ids = SubscriptionIdentifiers::default();
/// assert!(ids.is_empty());
/// ids.push(NonZeroU32::new(7).unwrap());
/// assert_eq!(ids, vec![NonZeroU32::new(7).unwrap()]);
/// assert_eq!(ids.iter().map(|id| id.get()).collect::<Vec<_>>(), [7]);
/// ```
#[derive(Debug, Clone, Default)]
// One word, where a `Vec` or a boxed slice takes three or two: the extra allocation is made
// only for a PUBLISH that has identifiers.
#[allow(clippy::box_collection)]
pub struct SubscriptionIdentifiers(Option<Box<Vec<NonZeroU32>>>);

impl SubscriptionIdentifiers {
    /// Appends an identifier.
    pub fn push(&mut self, id: NonZeroU32) {
        self.0.get_or_insert_with(Box::default).push(id);
    }

    /// The identifiers as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[NonZeroU32] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl core::ops::Deref for SubscriptionIdentifiers {
    type Target = [NonZeroU32];
    #[inline]
    fn deref(&self) -> &[NonZeroU32] {
        self.as_slice()
    }
}

impl From<Vec<NonZeroU32>> for SubscriptionIdentifiers {
    fn from(ids: Vec<NonZeroU32>) -> Self {
        SubscriptionIdentifiers((!ids.is_empty()).then(|| Box::new(ids)))
    }
}

impl From<SubscriptionIdentifiers> for Vec<NonZeroU32> {
    fn from(ids: SubscriptionIdentifiers) -> Self {
        ids.0.map_or_else(Vec::new, |ids| *ids)
    }
}

impl FromIterator<NonZeroU32> for SubscriptionIdentifiers {
    fn from_iter<I: IntoIterator<Item = NonZeroU32>>(iter: I) -> Self {
        Vec::from_iter(iter).into()
    }
}

impl Extend<NonZeroU32> for SubscriptionIdentifiers {
    fn extend<I: IntoIterator<Item = NonZeroU32>>(&mut self, iter: I) {
        for id in iter {
            self.push(id);
        }
    }
}

impl<'a> IntoIterator for &'a SubscriptionIdentifiers {
    type Item = &'a NonZeroU32;
    type IntoIter = core::slice::Iter<'a, NonZeroU32>;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl PartialEq for SubscriptionIdentifiers {
    fn eq(&self, other: &Self) -> bool {
        self.is_empty() && other.is_empty() || self.as_slice() == other.as_slice()
    }
}

impl Eq for SubscriptionIdentifiers {}

impl core::hash::Hash for SubscriptionIdentifiers {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq<Vec<NonZeroU32>> for SubscriptionIdentifiers {
    fn eq(&self, other: &Vec<NonZeroU32>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> PartialEq<[NonZeroU32; N]> for SubscriptionIdentifiers {
    fn eq(&self, other: &[NonZeroU32; N]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PublishProperties {
    /// Whether there is no property at all (the PUBLISH of most clients): cheaper than a
    /// comparison with the default value.
    ///
    /// ```
    /// use mqgate_codec::v5::PublishProperties;
    /// let mut props = PublishProperties::default();
    /// assert!(props.is_empty());
    /// props.message_expiry_interval = Some(0);
    /// assert!(!props.is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.forward.is_empty()
            && self.message_expiry_interval.is_none()
            && self.topic_alias.is_none()
            && self.subscription_identifiers.is_empty()
    }

    /// The forwardable block as [`Properties`], to read (a reference count, not a copy).
    pub fn forwarded(&self) -> Properties {
        let present = scan(&self.forward, None).map_or(0, |s| s.present);
        Properties {
            raw: self.forward.clone(),
            present,
        }
    }

    /// Checks that `forward` holds only forwardable properties, well formed, with no
    /// duplicate that the standard forbids.
    pub fn check_forward(forward: &[u8]) -> Result<(), DecodeError> {
        let Scan { present } = scan(forward, Some(PropertyContext::Publish))?;
        let per_delivery = (1u64 << PropertyId::MessageExpiryInterval as u8)
            | (1u64 << PropertyId::TopicAlias as u8)
            | (1u64 << PropertyId::SubscriptionIdentifier as u8);
        if present & per_delivery != 0 {
            return Err(DecodeError::PropertyNotAllowed {
                id: (present & per_delivery).trailing_zeros() as u8,
                packet_type: 3,
            });
        }
        Ok(())
    }

    /// Reads a PUBLISH's property block in one pass.
    pub(crate) fn decode(raw: Bytes) -> Result<Self, DecodeError> {
        let mut rest: &[u8] = &raw;
        let mut out = PublishProperties::default();
        let mut present = 0u64;
        let (mut first, mut end, mut gap, mut broken) = (None, 0, false, false);
        while !rest.is_empty() {
            let start = raw.len() - rest.len();
            let p = Property::read(&mut rest)?;
            let id = p.id();
            if !id.allowed_in(PropertyContext::Publish) {
                return Err(DecodeError::PropertyNotAllowed {
                    id: id as u8,
                    packet_type: 3,
                });
            }
            let bit = 1u64 << id as u8;
            if present & bit != 0 && !id.may_repeat(PropertyContext::Publish) {
                return Err(DecodeError::DuplicateProperty(id as u8));
            }
            present |= bit;
            match p {
                Property::FourByteInt(PropertyId::MessageExpiryInterval, v) => {
                    out.message_expiry_interval = Some(v);
                }
                Property::TwoByteInt(PropertyId::TopicAlias, v) => {
                    out.topic_alias = NonZeroU16::new(v);
                }
                Property::VarInt(PropertyId::SubscriptionIdentifier, v) => {
                    if let Some(v) = NonZeroU32::new(v) {
                        out.subscription_identifiers.push(v);
                    }
                }
                _ => {}
            }
            if id.is_forwardable() {
                if first.is_none() {
                    first = Some(start);
                } else if gap {
                    broken = true;
                }
                end = raw.len() - rest.len();
                gap = false;
            } else if first.is_some() {
                gap = true;
            }
        }
        out.forward = match first {
            None => Bytes::new(),
            Some(first) if !broken => raw.slice(first..end),
            Some(_) => forwardable(&raw),
        };
        Ok(out)
    }

    /// The length of the property block without its length in front.
    #[inline]
    pub(crate) fn raw_len(&self) -> usize {
        let mut len = self.forward.len();
        if self.message_expiry_interval.is_some() {
            len += 5;
        }
        if self.topic_alias.is_some() {
            len += 3;
        }
        for id in &self.subscription_identifiers {
            len += 1 + var_int_len(id.get() as usize);
        }
        len
    }

    /// Checks the values the type system does not (Subscription Identifier range).
    #[inline]
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self
            .subscription_identifiers
            .iter()
            .any(|id| id.get() > MAX_VAR_INT)
        {
            return Err(EncodeError::InvalidProperties(
                DecodeError::InvalidPropertyValue(PropertyId::SubscriptionIdentifier as u8),
            ));
        }
        Ok(())
    }

    /// Writes the block with its length: Message Expiry Interval, Topic Alias, `forward`,
    /// then the Subscription Identifiers. The standard leaves the order free; identifiers
    /// last is the order a client that misreads the length of one (rumqttc 0.25 counts its
    /// identifier byte twice and stops reading properties early) still reads whole.
    pub(crate) fn put(&self, buf: &mut BytesMut, raw_len: usize) {
        put_var_int(buf, raw_len);
        if let Some(v) = self.message_expiry_interval {
            buf.put_u8(PropertyId::MessageExpiryInterval as u8);
            buf.put_u32(v);
        }
        if let Some(v) = self.topic_alias {
            buf.put_u8(PropertyId::TopicAlias as u8);
            buf.put_u16(v.get());
        }
        buf.put_slice(&self.forward);
        for id in &self.subscription_identifiers {
            buf.put_u8(PropertyId::SubscriptionIdentifier as u8);
            put_var_int(buf, id.get() as usize);
        }
    }
}
