//! [`Message`]: one application message, shared by every session it is delivered to.

use bytes::Bytes;
use mqgate_codec::{ByteStr, QoS};
use serde::{Deserialize, Serialize};

/// A message's unique id, given by whoever accepted it into the broker, for tracing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(pub u128);

/// An application message as the router hands it to sessions.
///
/// It is wrapped in an `Arc` once and shared by every receiver; sessions never copy it.
///
/// ```
/// use std::sync::Arc;
/// use mqgate_codec::{ByteStr, QoS};
/// use mqgate_session::{Message, MessageId};
///
/// let message = Arc::new(Message {
///     id: MessageId(7),
///     topic: ByteStr::from_static("shop/tag-0042/price"),
///     payload: bytes::Bytes::from_static(b"9.99"),
///     qos: QoS::AtLeastOnce,
///     retain: false,
///     published_at_ms: 1_700_000_000_000,
/// });
/// assert_eq!(message.size(), 19 + 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Unique id, for tracing.
    pub id: MessageId,
    /// Topic name the receivers see.
    #[serde(with = "serde_byte_str")]
    pub topic: ByteStr,
    /// Payload, passed through untouched.
    pub payload: Bytes,
    /// QoS the message was published with; a delivery uses the lower of this and the
    /// subscription's granted QoS.
    #[serde(with = "serde_qos")]
    pub qos: QoS,
    /// RETAIN flag as receivers see it: set only when the broker replays a retained message
    /// to a new subscription (MQTT-3.3.1-8, -9).
    pub retain: bool,
    /// When the broker accepted the message (ms since the epoch); the queue's age limit counts
    /// from here.
    pub published_at_ms: u64,
}

impl Message {
    /// Bytes the message counts for in the queue's byte limit: topic plus payload.
    pub fn size(&self) -> usize {
        self.topic.len().saturating_add(self.payload.len())
    }

    /// Whether the message is older than `ttl_ms` at `now`. A timestamp in the future (clock
    /// skew between nodes) counts as age 0.
    pub fn is_expired(&self, now: u64, ttl_ms: u64) -> bool {
        now.saturating_sub(self.published_at_ms) >= ttl_ms
    }
}

/// Serde for [`ByteStr`] as a plain string, checked on the way in.
pub(crate) mod serde_byte_str {
    use mqgate_codec::ByteStr;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &ByteStr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ByteStr, D::Error> {
        ByteStr::try_from(String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// Serde for [`QoS`] as its number, 0 to 2.
pub(crate) mod serde_qos {
    use mqgate_codec::QoS;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &QoS, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*value as u8)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<QoS, D::Error> {
        let n = u8::deserialize(d)?;
        QoS::from_u8(n).ok_or_else(|| D::Error::custom(format_args!("QoS {n} is not 0, 1 or 2")))
    }
}
