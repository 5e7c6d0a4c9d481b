//! The MQTT 3.1.1 control packets as plain values.

use bytes::{Buf, Bytes};
use core::fmt;
use core::num::NonZeroU16;

use crate::string::TopicFrame;
use crate::ByteStr;

/// A packet identifier: never 0 (MQTT-2.3.1-1), so `Option<PacketId>` costs nothing extra.
pub type PacketId = NonZeroU16;

/// Quality of service of a PUBLISH or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum QoS {
    /// At most once: fire and forget.
    #[default]
    AtMostOnce = 0,
    /// At least once: PUBLISH, PUBACK.
    AtLeastOnce = 1,
    /// Exactly once: PUBLISH, PUBREC, PUBREL, PUBCOMP.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a two-bit value, or `None` for 3 (reserved) and above.
    pub const fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Which protocol a CONNECT asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V31,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    #[default]
    V311,
}

impl Protocol {
    /// The protocol name written in CONNECT.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::V31 => "MQIsdp",
            Protocol::V311 => "MQTT",
        }
    }
    /// The protocol level byte written in CONNECT.
    pub const fn level(self) -> u8 {
        match self {
            Protocol::V31 => 3,
            Protocol::V311 => 4,
        }
    }
}

/// The will message a client leaves in CONNECT, published if it goes away abnormally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Topic the will is published to.
    pub topic: ByteStr,
    /// Will payload (binary).
    pub payload: Bytes,
    /// QoS the will is published with.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
}

/// CONNECT: the first packet a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connect {
    /// Protocol name and level.
    pub protocol: Protocol,
    /// Clean session flag: discard any previous session and start a new one.
    pub clean_session: bool,
    /// Keep-alive interval in seconds (0 disables it).
    pub keep_alive: u16,
    /// Client identifier (may be empty; what that means is the server's decision).
    pub client_id: ByteStr,
    /// The will message, if the will flag was set.
    pub will: Option<LastWill>,
    /// User name, if the user name flag was set.
    pub username: Option<ByteStr>,
    /// Password (binary), if the password flag was set.
    pub password: Option<Bytes>,
}

/// CONNACK return codes of MQTT 3.1.1 table 3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted = 0,
    /// 1: the server does not support the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// 2: the client identifier is not allowed.
    IdentifierRejected = 2,
    /// 3: the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 4: the user name or password is malformed or wrong.
    BadUsernameOrPassword = 4,
    /// 5: the client is not authorised to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a byte, or `None` above 5.
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUsernameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }
}

/// CONNACK: the server's answer to CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed a stored session.
    pub session_present: bool,
    /// The verdict.
    pub code: ConnectReturnCode,
}

/// PUBLISH: an application message.
///
/// The flags and the packet id are plain fields; the topic and the payload are behind
/// accessors, because a decoded PUBLISH keeps its whole frame as one [`Bytes`] and reads
/// both from it: one reference count per packet instead of one for the topic and one for
/// the payload. [`Publish::into_parts`] hands them out as shared values without copying.
///
/// ```
/// use bytes::Bytes;
/// use mqgate_codec::{ByteStr, Publish, QoS};
/// let id = 7.try_into().unwrap();
/// let mut p = Publish::new(QoS::AtLeastOnce, Some(id), ByteStr::from_static("a/b"), Bytes::from_static(b"hi"));
/// p.retain = true;
/// assert_eq!((p.topic(), p.payload()), ("a/b", &b"hi"[..]));
/// ```
#[derive(Clone)]
pub struct Publish {
    /// DUP flag: this may be a redelivery.
    pub dup: bool,
    /// Delivery QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Packet identifier: present exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    body: Body,
}

/// Where a PUBLISH's topic and payload live.
#[derive(Clone)]
enum Body {
    /// Built from a topic and a payload.
    Parts { topic: ByteStr, payload: Bytes },
    /// Decoded: `frame` is the PUBLISH from its topic on, its topic checked; the payload
    /// starts at `payload_at`.
    Frame { frame: TopicFrame, payload_at: u32 },
}

impl Publish {
    /// A PUBLISH with `qos` and `packet_id` (which must be `Some` exactly for QoS 1 and 2 to
    /// encode), DUP and RETAIN clear.
    pub fn new(qos: QoS, packet_id: Option<PacketId>, topic: ByteStr, payload: Bytes) -> Self {
        Publish {
            dup: false,
            qos,
            retain: false,
            packet_id,
            body: Body::Parts { topic, payload },
        }
    }

    /// A QoS 0 PUBLISH.
    ///
    /// ```
    /// use mqgate_codec::{ByteStr, Publish, QoS};
    /// let p = Publish::at_most_once(ByteStr::from_static("a/b"), bytes::Bytes::from_static(b"hi"));
    /// assert_eq!(p.qos, QoS::AtMostOnce);
    /// ```
    pub fn at_most_once(topic: ByteStr, payload: Bytes) -> Self {
        Publish::new(QoS::AtMostOnce, None, topic, payload)
    }

    /// A decoded PUBLISH: `frame` starts at the checked topic; the payload starts at
    /// `payload_at`.
    pub(crate) fn from_frame(
        flags: u8,
        qos: QoS,
        packet_id: Option<PacketId>,
        frame: TopicFrame,
        payload_at: u32,
    ) -> Self {
        Publish {
            dup: flags & 0b1000 != 0,
            qos,
            retain: flags & 1 != 0,
            packet_id,
            body: Body::Frame { frame, payload_at },
        }
    }

    /// The topic name (non-empty, no wildcards when decoded).
    pub fn topic(&self) -> &str {
        match &self.body {
            Body::Parts { topic, .. } => topic.as_str(),
            Body::Frame { frame, .. } => frame.topic(),
        }
    }

    /// The application payload, passed through untouched.
    pub fn payload(&self) -> &[u8] {
        match &self.body {
            Body::Parts { payload, .. } => payload,
            Body::Frame { frame, payload_at } => frame
                .frame()
                .get(*payload_at as usize..)
                .unwrap_or_default(),
        }
    }

    /// Topic and payload bytes with one look at how they are stored (the encoder's view).
    pub(crate) fn wire_parts(&self) -> (&[u8], &[u8]) {
        match &self.body {
            Body::Parts { topic, payload } => (topic.as_bytes(), payload),
            Body::Frame { frame, payload_at } => (
                frame.topic_bytes(),
                frame
                    .frame()
                    .get(*payload_at as usize..)
                    .unwrap_or_default(),
            ),
        }
    }

    /// The topic as a shared [`ByteStr`] (a reference count, not a copy).
    pub fn shared_topic(&self) -> ByteStr {
        match &self.body {
            Body::Parts { topic, .. } => topic.clone(),
            Body::Frame { frame, .. } => frame.shared_topic(),
        }
    }

    /// The payload as a shared [`Bytes`] (a reference count, not a copy).
    pub fn shared_payload(&self) -> Bytes {
        match &self.body {
            Body::Parts { payload, .. } => payload.clone(),
            Body::Frame { frame, payload_at } => frame.frame().slice(*payload_at as usize..),
        }
    }

    /// The payload, giving up the rest without a reference count.
    pub fn into_payload(self) -> Bytes {
        match self.body {
            Body::Parts { payload, .. } => payload,
            Body::Frame { frame, payload_at } => {
                let mut frame = frame.into_frame();
                frame.advance(payload_at as usize);
                frame
            }
        }
    }

    /// The topic and the payload, shared with the receive buffer, not copied: for a decoded
    /// PUBLISH one more reference count (the topic's).
    pub fn into_parts(self) -> (ByteStr, Bytes) {
        match self.body {
            Body::Parts { topic, payload } => (topic, payload),
            Body::Frame { frame, payload_at } => {
                let topic = frame.shared_topic();
                let mut frame = frame.into_frame();
                frame.advance(payload_at as usize);
                (topic, frame)
            }
        }
    }
}

impl PartialEq for Publish {
    /// Equal when the flags, packet id, topic and payload are, however they are stored.
    fn eq(&self, other: &Self) -> bool {
        self.dup == other.dup
            && self.qos == other.qos
            && self.retain == other.retain
            && self.packet_id == other.packet_id
            && self.topic() == other.topic()
            && self.payload() == other.payload()
    }
}

impl Eq for Publish {}

impl fmt::Debug for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publish")
            .field("dup", &self.dup)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("topic", &self.topic())
            .field("packet_id", &self.packet_id)
            .field(
                "payload",
                &format_args!("b\"{}\"", self.payload().escape_ascii()),
            )
            .finish()
    }
}

/// One filter of a SUBSCRIBE with the QoS the client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// Topic filter, as received (syntax beyond "non-empty" is checked by `mqgate-topic`).
    pub filter: ByteStr,
    /// Requested maximum QoS.
    pub qos: QoS,
}

/// SUBSCRIBE: one or more filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// The filters, in order (never empty when decoded).
    pub filters: Vec<SubscribeFilter>,
}

/// One return code of a SUBACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscribeReturnCode {
    /// Subscribed with this maximum QoS.
    Success(QoS),
    /// 0x80: refused.
    Failure,
}

/// SUBACK: one return code per filter of the SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// Return codes, in the SUBSCRIBE's order.
    pub return_codes: Vec<SubscribeReturnCode>,
}

/// UNSUBSCRIBE: one or more filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// The filters (never empty when decoded).
    pub filters: Vec<ByteStr>,
}

/// Any MQTT 3.1.1 control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (1). Boxed: it is rare and large, and every other packet is small, so the
    /// enum stays small where it is moved around on the hot path.
    Connect(Box<Connect>),
    /// CONNACK (2).
    ConnAck(ConnAck),
    /// PUBLISH (3).
    Publish(Publish),
    /// PUBACK (4).
    PubAck(PacketId),
    /// PUBREC (5).
    PubRec(PacketId),
    /// PUBREL (6).
    PubRel(PacketId),
    /// PUBCOMP (7).
    PubComp(PacketId),
    /// SUBSCRIBE (8).
    Subscribe(Subscribe),
    /// SUBACK (9).
    SubAck(SubAck),
    /// UNSUBSCRIBE (10).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (11).
    UnsubAck(PacketId),
    /// PINGREQ (12).
    PingReq,
    /// PINGRESP (13).
    PingResp,
    /// DISCONNECT (14).
    Disconnect,
}

impl Packet {
    /// The packet type number of the fixed header (1 to 14).
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
            Packet::Disconnect => 14,
        }
    }

    /// The packet's name as the standard spells it, for logs and metrics labels.
    pub const fn name(&self) -> &'static str {
        PACKET_NAMES[self.packet_type() as usize]
    }
}

/// The packet names by type number (0 is reserved; 15, AUTH, is MQTT 5 only).
pub(crate) const PACKET_NAMES: [&str; 16] = [
    "RESERVED",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];
