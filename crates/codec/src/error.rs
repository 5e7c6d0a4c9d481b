//! The codec's errors. Every variant is `Copy + Eq` so a driver can count, log and
//! compare them without allocating; none carries an `io::Error` (the codec does no I/O).

/// Why a byte stream is not a valid MQTT 3.1.1 or MQTT 5 packet.
///
/// A driver closes the connection on any of these (except that
/// [`DecodeError::UnsupportedProtocolLevel`] deserves a CONNACK with return code 1 first,
/// as MQTT-3.1.2-2 asks). Under MQTT 5 the driver tells the peer why first:
/// [`DecodeError::kind`] says whether the standard calls the input a Malformed Packet or a
/// Protocol Error, and [`DecodeError::reason_code`] gives the reason code for the CONNACK or
/// DISCONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet type nibble is 0 or 15, which MQTT 3.1.1 reserves.
    #[error("reserved packet type {0}")]
    ReservedPacketType(u8),
    /// The fixed header's flag nibble is not the one the standard fixes for this packet type
    /// (MQTT-2.2.2-1, MQTT-2.2.2-2).
    #[error("invalid fixed-header flags {flags:#06b} for packet type {packet_type}")]
    InvalidFlags {
        /// The packet type nibble.
        packet_type: u8,
        /// The flag nibble that was received.
        flags: u8,
    },
    /// A QoS field holds 3 (both bits set), which is reserved (MQTT-3.3.1-4).
    #[error("QoS 3 is reserved")]
    InvalidQos,
    /// The remaining length does not terminate within four bytes, or is not minimally
    /// encoded (a trailing zero byte after a continuation).
    #[error("remaining length malformed (over 4 bytes or not minimal)")]
    MalformedRemainingLength,
    /// The fixed header announces a packet larger than the configured maximum; it was
    /// refused before any of its body was buffered.
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// The whole packet's size as announced (fixed header included).
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A field (a length-prefixed string, a packet id, a flag byte) runs past the end of the
    /// packet as its remaining length delimits it.
    #[error("a field runs past the end of the packet")]
    UnexpectedEnd,
    /// Bytes remain after the last field of a packet whose length is fully determined by its
    /// fields.
    #[error("trailing bytes after the last field")]
    TrailingBytes,
    /// A string is not well-formed UTF-8 (MQTT-1.5.3-1).
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A string contains U+0000 (MQTT-1.5.3-2).
    #[error("string contains U+0000")]
    NullCharacter,
    /// A packet identifier is 0 where a non-zero one is required (MQTT-2.3.1-1).
    #[error("packet identifier 0")]
    ZeroPacketId,
    /// CONNECT names a protocol other than `MQTT` (level 4) or `MQIsdp` (level 3).
    #[error("unknown protocol name")]
    InvalidProtocolName,
    /// CONNECT names a protocol level this codec does not speak. The server answers with
    /// CONNACK return code 1 and closes (MQTT-3.1.2-2).
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolLevel(u8),
    /// CONNECT flags break a rule of MQTT-3.1.2: the reserved bit is set, will QoS or retain
    /// is set without the will flag, or the will QoS is 3.
    #[error("invalid CONNECT flags {0:#010b}")]
    InvalidConnectFlags(u8),
    /// CONNECT sets the password flag without the user name flag (MQTT-3.1.2-22).
    #[error("password without user name")]
    PasswordWithoutUsername,
    /// CONNACK's acknowledge flags have reserved bits set (MQTT-3.2.2-1).
    #[error("invalid CONNACK flags {0:#010b}")]
    InvalidConnAckFlags(u8),
    /// CONNACK carries a return code above 5.
    #[error("invalid CONNACK return code {0}")]
    InvalidConnectReturnCode(u8),
    /// A PUBLISH topic name is empty (MQTT-4.7.3-1).
    #[error("empty topic name")]
    EmptyTopicName,
    /// A PUBLISH topic name contains `+` or `#` (MQTT-3.3.2-2).
    #[error("wildcard in topic name")]
    WildcardInTopicName,
    /// A SUBSCRIBE or UNSUBSCRIBE topic filter is empty (MQTT-4.7.3-1).
    #[error("empty topic filter")]
    EmptyTopicFilter,
    /// A SUBSCRIBE or UNSUBSCRIBE carries no topic filter (MQTT-3.8.3-3, MQTT-3.10.3-2).
    #[error("no topic filter in SUBSCRIBE or UNSUBSCRIBE")]
    NoTopicFilters,
    /// A SUBSCRIBE's requested-QoS byte is above 2 or has reserved bits set (MQTT-3-8.3-4).
    #[error("invalid requested QoS byte {0:#04x}")]
    InvalidRequestedQos(u8),
    /// A SUBACK return code is neither 0, 1, 2 nor 0x80 (MQTT-3.9.3-2).
    #[error("invalid SUBACK return code {0:#04x}")]
    InvalidSubAckReturnCode(u8),
    /// MQTT 5: a Variable Byte Integer (a property length, a Subscription Identifier) does
    /// not end within four bytes or is not minimally encoded (MQTT-1.5.5-1).
    #[error("variable byte integer malformed (over 4 bytes or not minimal)")]
    MalformedVarInt,
    /// MQTT 5: a property identifier the standard does not define.
    #[error("unknown property identifier {0:#04x}")]
    InvalidPropertyId(u8),
    /// MQTT 5: a property the standard does not allow in this packet (a Malformed Packet,
    /// MQTT 5.0 section 2.2.2.2).
    #[error("property {id:#04x} is not allowed in packet type {packet_type}")]
    PropertyNotAllowed {
        /// The property identifier.
        id: u8,
        /// The packet type nibble (1 to 15; the will properties count as CONNECT's).
        packet_type: u8,
    },
    /// MQTT 5: a property that may appear once appears twice (a Protocol Error; only User
    /// Property, and Subscription Identifier in PUBLISH, may repeat).
    #[error("property {0:#04x} appears more than once")]
    DuplicateProperty(u8),
    /// MQTT 5: a property's value is one the standard forbids (a Protocol Error): 0 for
    /// Receive Maximum, Maximum Packet Size, Topic Alias or Subscription Identifier; a
    /// value other than 0 or 1 for a flag such as Payload Format Indicator or Maximum QoS.
    #[error("invalid value for property {0:#04x}")]
    InvalidPropertyValue(u8),
    /// MQTT 5: Authentication Data without an Authentication Method (a Protocol Error).
    #[error("authentication data without an authentication method")]
    AuthDataWithoutMethod,
    /// MQTT 5: a reason code not defined for this packet type.
    #[error("invalid reason code {code:#04x} for packet type {packet_type}")]
    InvalidReasonCode {
        /// The packet type nibble.
        packet_type: u8,
        /// The reason code byte received.
        code: u8,
    },
    /// MQTT 5: a SUBSCRIBE's subscription options byte has a reserved bit (6 or 7) set
    /// (MQTT-3.8.3-5, a Malformed Packet) or Maximum QoS 3.
    #[error("reserved bits set in subscription options {0:#04x}")]
    ReservedSubscriptionOptions(u8),
    /// MQTT 5: a SUBSCRIBE's subscription options ask for Retain Handling 3 (a Protocol Error).
    #[error("retain handling 3 in subscription options {0:#04x}")]
    InvalidRetainHandling(u8),
    /// MQTT 5: a PUBLISH has an empty topic name and no Topic Alias (a Protocol Error).
    #[error("empty topic name without a topic alias")]
    EmptyTopicWithoutAlias,
}

/// How MQTT 5 classifies a [`DecodeError`], which decides the reason code a server sends
/// before closing the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The bytes cannot be parsed as the standard says (reason code 0x81).
    MalformedPacket,
    /// The bytes parse but break a rule of the protocol (reason code 0x82).
    ProtocolError,
    /// The packet exceeds the maximum packet size (reason code 0x95).
    PacketTooLarge,
    /// CONNECT asks for a protocol level not spoken here (reason code 0x84).
    UnsupportedProtocolVersion,
}

impl DecodeError {
    /// Whether MQTT 5 calls this a Malformed Packet, a Protocol Error, or one of the two
    /// errors with a reason code of their own.
    ///
    /// ```
    /// use mqgate_codec::{DecodeError, ErrorKind};
    /// assert_eq!(DecodeError::DuplicateProperty(0x01).kind(), ErrorKind::ProtocolError);
    /// assert_eq!(DecodeError::MalformedVarInt.kind(), ErrorKind::MalformedPacket);
    /// ```
    pub const fn kind(&self) -> ErrorKind {
        match self {
            DecodeError::PacketTooLarge { .. } => ErrorKind::PacketTooLarge,
            DecodeError::UnsupportedProtocolLevel(_) | DecodeError::InvalidProtocolName => {
                ErrorKind::UnsupportedProtocolVersion
            }
            DecodeError::DuplicateProperty(_)
            | DecodeError::InvalidPropertyValue(_)
            | DecodeError::AuthDataWithoutMethod
            | DecodeError::InvalidRetainHandling(_)
            | DecodeError::EmptyTopicWithoutAlias
            | DecodeError::NoTopicFilters => ErrorKind::ProtocolError,
            _ => ErrorKind::MalformedPacket,
        }
    }

    /// The MQTT 5 reason code a server sends for this error (in CONNACK while connecting,
    /// in DISCONNECT afterwards).
    ///
    /// ```
    /// use mqgate_codec::{DecodeError, ReasonCode};
    /// assert_eq!(DecodeError::InvalidPropertyId(0x7f).reason_code(), ReasonCode::MalformedPacket);
    /// assert_eq!(u8::from(DecodeError::InvalidPropertyValue(0x23).reason_code()), 0x82);
    /// ```
    pub const fn reason_code(&self) -> crate::ReasonCode {
        match self.kind() {
            ErrorKind::MalformedPacket => crate::ReasonCode::MalformedPacket,
            ErrorKind::ProtocolError => crate::ReasonCode::ProtocolError,
            ErrorKind::PacketTooLarge => crate::ReasonCode::PacketTooLarge,
            ErrorKind::UnsupportedProtocolVersion => crate::ReasonCode::UnsupportedProtocolVersion,
        }
    }
}

/// Why a packet value cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The packet's remaining length would exceed 268 435 455 bytes, the most the
    /// four-byte variable length can say.
    #[error("packet too large to encode ({0} bytes remaining length)")]
    PacketTooLarge(usize),
    /// A string or binary field is longer than the 65 535 bytes its two-byte length allows.
    #[error("field of {0} bytes is longer than 65535")]
    FieldTooLong(usize),
    /// A PUBLISH with QoS 1 or 2 has no packet identifier, or one with QoS 0 has one.
    #[error("PUBLISH packet identifier does not agree with its QoS")]
    PacketIdMismatch,
    /// A SUBSCRIBE, SUBACK or UNSUBSCRIBE has an empty list, which the standard forbids.
    #[error("empty topic filter or return-code list")]
    EmptyList,
    /// MQTT 5: the properties break a rule a decoder enforces (the error it would report).
    #[error("invalid properties: {0}")]
    InvalidProperties(DecodeError),
    /// MQTT 5: a property not allowed in the packet it is written in.
    #[error("property {0:#04x} is not allowed in this packet")]
    PropertyNotAllowed(u8),
    /// MQTT 5: a reason code not defined for the packet it is written in.
    #[error("reason code {0:#04x} is not allowed in this packet")]
    ReasonCodeNotAllowed(u8),
    /// MQTT 5: a PUBLISH with an empty topic name and no topic alias.
    #[error("empty topic name without a topic alias")]
    EmptyTopicWithoutAlias,
}
