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
/// let message = Arc::new(
///     Message::new(
///         MessageId(7),
///         ByteStr::from_static("shop/tag-0042/price"),
///         bytes::Bytes::from_static(b"9.99"),
///         QoS::AtLeastOnce,
///         1_700_000_000_000,
///     )
///     .with_origin(ByteStr::from_static("GID_shop@@@tag-0042")),
/// );
/// assert_eq!(message.size(), 19 + 4);
/// assert_eq!(message.id.to_string(), "00000000000000000000000000000007");
/// ```
///
/// The fields, who sets them and who reads them, and the stored layout are described in the
/// repository's `docs/records.md`: this is the one form of a message on every path (memory,
/// the store, a message crossing to another node).
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
    /// Client id of the client that published it; empty when the broker itself published
    /// (its HTTP and embedding APIs, the RocketMQ inflow).
    #[serde(default = "empty_byte_str", with = "serde_byte_str")]
    pub origin: ByteStr,
    /// When the message expires (ms since the epoch), from an MQTT 5 Message Expiry
    /// Interval; `None` for a message that does not expire by itself (every 3.1.1 message).
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
    /// MQTT 5 properties forwarded unchanged, in their wire encoding and the order received
    /// (payload format indicator, content type, response topic, correlation data, user
    /// properties); empty for a 3.1.1 message. Per-delivery properties (topic alias,
    /// subscription identifiers, the remaining expiry) are never part of it.
    #[serde(default)]
    pub properties: Bytes,
}

fn empty_byte_str() -> ByteStr {
    ByteStr::from_static("")
}

impl Message {
    /// A copy whose topic, payload, origin and properties own their bytes: for a message
    /// that outlives the packet it came in (queued for a persistent session, retained), so
    /// it does not keep alive the larger read buffer they were sliced from.
    ///
    /// ```
    /// use mqgate_codec::{ByteStr, QoS};
    /// use mqgate_session::{Message, MessageId};
    /// let chunk = bytes::Bytes::from(vec![b'x'; 16 * 1024]);
    /// let m = Message::new(MessageId(1), ByteStr::from_static("t"), chunk.slice(..3), QoS::AtLeastOnce, 0);
    /// let owned = m.detached();
    /// assert_eq!(owned, m);
    /// assert!(!chunk.as_ptr_range().contains(&owned.payload.as_ptr()));
    /// ```
    #[must_use]
    pub fn detached(&self) -> Message {
        Message {
            topic: self.topic.detached(),
            payload: bytes::Bytes::copy_from_slice(&self.payload),
            origin: self.origin.detached(),
            properties: bytes::Bytes::copy_from_slice(&self.properties),
            ..self.clone()
        }
    }
}

impl std::fmt::Display for MessageId {
    /// 32 uppercase hex digits (as RocketMQ shows its ids): the form in which every API and
    /// record shows a message id.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032X}", self.0)
    }
}

impl Message {
    /// A message as a 3.1.1 publish makes it: not retained, no origin, no expiry, no MQTT 5
    /// properties.
    pub fn new(
        id: MessageId,
        topic: ByteStr,
        payload: Bytes,
        qos: QoS,
        published_at_ms: u64,
    ) -> Self {
        Message {
            id,
            topic,
            payload,
            qos,
            retain: false,
            published_at_ms,
            origin: empty_byte_str(),
            expires_at_ms: None,
            properties: Bytes::new(),
        }
    }

    /// The same message, published by the client `origin`.
    #[must_use]
    pub fn with_origin(mut self, origin: ByteStr) -> Self {
        self.origin = origin;
        self
    }

    /// Bytes the message counts for in the queue's byte limit: topic plus payload.
    pub fn size(&self) -> usize {
        self.topic.len().saturating_add(self.payload.len())
    }

    /// Whether the message is older than `ttl_ms` at `now`, or past its own MQTT 5 expiry
    /// ([`expires_at_ms`](Self::expires_at_ms)). A timestamp in the future (clock skew
    /// between nodes) counts as age 0. A message whose expiry is its publish instant (a
    /// Message Expiry Interval of 0) is always expired here, whatever `now` says: it reaches
    /// the receivers it is sent to at once, never one that finds it in a queue.
    pub fn is_expired(&self, now: u64, ttl_ms: u64) -> bool {
        now.saturating_sub(self.published_at_ms) >= ttl_ms
            || self
                .expires_at_ms
                .is_some_and(|at| now >= at || at <= self.published_at_ms)
    }

    /// The MQTT 5 Message Expiry Interval a delivery at `now` carries: the whole seconds
    /// left, rounded up, and never more than the interval the message was published with
    /// (a `now` a little behind the clock that stamped the message must not lengthen it);
    /// `None` for a message that does not expire.
    pub fn remaining_expiry_s(&self, now: u64) -> Option<u32> {
        let at = self.expires_at_ms?;
        let whole = at.saturating_sub(self.published_at_ms);
        let left = at.saturating_sub(now).min(whole);
        Some(u32::try_from(left.div_ceil(1000)).unwrap_or(u32::MAX))
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
