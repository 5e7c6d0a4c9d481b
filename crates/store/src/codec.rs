//! The on-disk encoding of a [`Message`]: a fixed header, the variable fields, then the
//! payload.
//!
//! Messages are the bulk of what a store writes, so they get a compact hand-written layout
//! instead of a self-describing format; the rarely written records (sessions, registries) are
//! JSON. The layout, and why a message has one encoding on every path, is described in the
//! repository's `docs/records.md`.
//!
//! Layout 2 (written): version (1) + id (16) + published_at_ms (8) + expires_at_ms (8, 0 for
//! none) + qos (1) + retain (1) + topic length (2) + origin length (2) + properties length (4),
//! then topic, origin, properties and payload. Layout 1 (older stores: version, id,
//! published_at_ms, qos, retain, topic length, topic, payload) is still read.

use bytes::Bytes;
use mqgate_codec::{ByteStr, QoS};
use mqgate_session::{Message, MessageId};

use crate::StoreError;

/// The layout this build writes; the version byte comes first so the layout can change
/// without a new table.
const MESSAGE_LAYOUT: u8 = 2;
/// The layout older builds wrote, still read.
const MESSAGE_LAYOUT_1: u8 = 1;
/// Header of layout 2, up to the variable fields.
const HEADER_LEN: usize = 1 + 16 + 8 + 8 + 1 + 1 + 2 + 2 + 4;
/// Header of layout 1.
const HEADER_LEN_1: usize = 1 + 16 + 8 + 1 + 1 + 2;

/// Encodes a message for storage (layout 2).
///
/// ```
/// use mqgate_codec::{ByteStr, QoS};
/// use mqgate_session::{Message, MessageId};
/// use mqgate_store::codec::{decode_message, encode_message};
///
/// let message = Message::new(
///     MessageId(42),
///     ByteStr::from_static("a/b"),
///     bytes::Bytes::from_static(b"hi"),
///     QoS::AtLeastOnce,
///     7,
/// )
/// .with_origin(ByteStr::from_static("GID_a@@@1"));
/// assert_eq!(decode_message(&encode_message(&message))?, message);
/// # Ok::<(), mqgate_store::StoreError>(())
/// ```
pub fn encode_message(message: &Message) -> Vec<u8> {
    // Topics and client ids longer than u16::MAX, and properties longer than u32::MAX, cannot
    // come from an MQTT packet; clamp rather than panic.
    let topic = clamp(message.topic.as_bytes(), usize::from(u16::MAX));
    let origin = clamp(message.origin.as_bytes(), usize::from(u16::MAX));
    let properties = clamp(&message.properties, u32::MAX as usize);
    let mut out = Vec::with_capacity(
        HEADER_LEN + topic.len() + origin.len() + properties.len() + message.payload.len(),
    );
    out.push(MESSAGE_LAYOUT);
    out.extend_from_slice(&message.id.0.to_be_bytes());
    out.extend_from_slice(&message.published_at_ms.to_be_bytes());
    out.extend_from_slice(&message.expires_at_ms.unwrap_or(0).to_be_bytes());
    out.push(message.qos as u8);
    out.push(u8::from(message.retain));
    out.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    out.extend_from_slice(&(origin.len() as u16).to_be_bytes());
    out.extend_from_slice(&(properties.len() as u32).to_be_bytes());
    out.extend_from_slice(topic);
    out.extend_from_slice(origin);
    out.extend_from_slice(properties);
    out.extend_from_slice(&message.payload);
    out
}

fn clamp(bytes: &[u8], max: usize) -> &[u8] {
    bytes.get(..max).unwrap_or(bytes)
}

/// Decodes a stored message, of either layout. Any input is safe: malformed bytes give
/// [`StoreError::Corrupt`], never a panic.
///
/// # Errors
/// [`StoreError::Corrupt`] when the bytes are not a message this version or an older one
/// wrote.
pub fn decode_message(bytes: &[u8]) -> Result<Message, StoreError> {
    match bytes.first() {
        Some(&MESSAGE_LAYOUT) => decode_layout_2(bytes),
        Some(&MESSAGE_LAYOUT_1) => decode_layout_1(bytes),
        Some(_) => Err(bad("unknown message layout")),
        None => Err(bad("empty")),
    }
}

/// The publication time of a stored message, of either layout, without decoding the rest.
///
/// # Errors
/// [`StoreError::Corrupt`] when the bytes are not a message this version or an older one
/// wrote.
pub(crate) fn published_at_ms(bytes: &[u8]) -> Result<u64, StoreError> {
    match bytes.split_first() {
        Some((&(MESSAGE_LAYOUT | MESSAGE_LAYOUT_1), header)) => {
            Ok(common(header)?.0.published_at_ms)
        }
        Some(_) => Err(bad("unknown message layout")),
        None => Err(bad("empty")),
    }
}

fn bad(reason: &str) -> StoreError {
    StoreError::corrupt("messages", reason)
}

/// The fields every layout shares, read from the front of the header (after the version).
struct Common {
    id: MessageId,
    published_at_ms: u64,
}

fn common(header: &[u8]) -> Result<(Common, &[u8]), StoreError> {
    let (id, header) = take::<16>(header).ok_or_else(|| bad("id"))?;
    let (published, header) = take::<8>(header).ok_or_else(|| bad("timestamp"))?;
    let common = Common {
        id: MessageId(u128::from_be_bytes(id)),
        published_at_ms: u64::from_be_bytes(published),
    };
    Ok((common, header))
}

fn qos_and_retain(qos: u8, retain: u8) -> Result<(QoS, bool), StoreError> {
    let qos = QoS::from_u8(qos).ok_or_else(|| bad("QoS is not 0, 1 or 2"))?;
    let retain = match retain {
        0 => false,
        1 => true,
        _ => return Err(bad("retain flag is not 0 or 1")),
    };
    Ok((qos, retain))
}

fn utf8(bytes: &[u8], what: &str) -> Result<ByteStr, StoreError> {
    ByteStr::try_from(Bytes::copy_from_slice(bytes)).map_err(|_| bad(what))
}

fn decode_layout_2(bytes: &[u8]) -> Result<Message, StoreError> {
    let (header, rest) = bytes
        .split_at_checked(HEADER_LEN)
        .ok_or_else(|| bad("shorter than the header"))?;
    let (common, header) = common(&header[1..])?;
    let (expires, header) = take::<8>(header).ok_or_else(|| bad("expiry"))?;
    let [qos, retain, t_hi, t_lo, o_hi, o_lo, p0, p1, p2, p3] = header else {
        return Err(bad("header length"));
    };
    let (qos, retain) = qos_and_retain(*qos, *retain)?;
    let topic_len = usize::from(u16::from_be_bytes([*t_hi, *t_lo]));
    let origin_len = usize::from(u16::from_be_bytes([*o_hi, *o_lo]));
    let properties_len = usize::try_from(u32::from_be_bytes([*p0, *p1, *p2, *p3]))
        .map_err(|_| bad("properties longer than memory"))?;
    let (topic, rest) = rest
        .split_at_checked(topic_len)
        .ok_or_else(|| bad("topic longer than the record"))?;
    let (origin, rest) = rest
        .split_at_checked(origin_len)
        .ok_or_else(|| bad("origin longer than the record"))?;
    let (properties, payload) = rest
        .split_at_checked(properties_len)
        .ok_or_else(|| bad("properties longer than the record"))?;
    let expires_at_ms = match u64::from_be_bytes(expires) {
        0 => None,
        at => Some(at),
    };
    Ok(Message {
        id: common.id,
        topic: utf8(topic, "topic is not valid MQTT UTF-8")?,
        payload: Bytes::copy_from_slice(payload),
        qos,
        retain,
        published_at_ms: common.published_at_ms,
        origin: utf8(origin, "origin is not valid MQTT UTF-8")?,
        expires_at_ms,
        properties: Bytes::copy_from_slice(properties),
    })
}

fn decode_layout_1(bytes: &[u8]) -> Result<Message, StoreError> {
    let (header, rest) = bytes
        .split_at_checked(HEADER_LEN_1)
        .ok_or_else(|| bad("shorter than the header"))?;
    let (common, header) = common(&header[1..])?;
    let [qos, retain, len_hi, len_lo] = header else {
        return Err(bad("header length"));
    };
    let (qos, retain) = qos_and_retain(*qos, *retain)?;
    let topic_len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]));
    let (topic, payload) = rest
        .split_at_checked(topic_len)
        .ok_or_else(|| bad("topic longer than the record"))?;
    let mut message = Message::new(
        common.id,
        utf8(topic, "topic is not valid MQTT UTF-8")?,
        Bytes::copy_from_slice(payload),
        qos,
        common.published_at_ms,
    );
    message.retain = retain;
    Ok(message)
}

fn take<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = bytes.split_at_checked(N)?;
    Some((head.try_into().ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_message() -> impl Strategy<Value = Message> {
        (
            any::<u128>(),
            "[a-z/+#$ é]{0,40}",
            proptest::collection::vec(any::<u8>(), 0..200),
            0u8..3,
            any::<bool>(),
            any::<u64>(),
            (
                "[A-Za-z0-9_@ é]{0,20}",
                proptest::option::of(1u64..),
                proptest::collection::vec(any::<u8>(), 0..40),
            ),
        )
            .prop_map(
                |(id, topic, payload, qos, retain, at, (origin, expires, properties))| Message {
                    id: MessageId(id),
                    topic: ByteStr::try_from(topic).unwrap(),
                    payload: payload.into(),
                    qos: QoS::from_u8(qos).unwrap(),
                    retain,
                    published_at_ms: at,
                    origin: ByteStr::try_from(origin).unwrap(),
                    expires_at_ms: expires,
                    properties: properties.into(),
                },
            )
    }

    /// Layout 1 as older builds wrote it, byte by byte.
    fn layout_1(message: &Message) -> Vec<u8> {
        let mut out = vec![1];
        out.extend_from_slice(&message.id.0.to_be_bytes());
        out.extend_from_slice(&message.published_at_ms.to_be_bytes());
        out.push(message.qos as u8);
        out.push(u8::from(message.retain));
        out.extend_from_slice(&(message.topic.len() as u16).to_be_bytes());
        out.extend_from_slice(message.topic.as_bytes());
        out.extend_from_slice(&message.payload);
        out
    }

    proptest! {
        #[test]
        fn round_trip(message in arb_message()) {
            prop_assert_eq!(decode_message(&encode_message(&message)).unwrap(), message);
        }

        /// A record an older build wrote reads back with the new fields at their defaults.
        #[test]
        fn layout_1_still_reads(message in arb_message()) {
            let old = Message {
                origin: ByteStr::from_static(""),
                expires_at_ms: None,
                properties: Bytes::new(),
                ..message
            };
            prop_assert_eq!(decode_message(&layout_1(&old)).unwrap(), old);
        }

        /// The same function the `store_message` fuzz target calls.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            crate::fuzzing::decode_stored_message(&bytes);
        }

        #[test]
        fn truncations_are_errors_or_shorter_payloads(message in arb_message(), cut in 0usize..400) {
            let encoded = encode_message(&message);
            let cut = cut.min(encoded.len());
            if let Ok(decoded) = decode_message(&encoded[..cut]) {
                // Only the payload, which runs to the end, may be cut without notice.
                prop_assert_eq!(decoded.topic, message.topic);
                prop_assert_eq!(decoded.origin, message.origin);
                prop_assert_eq!(decoded.properties, message.properties);
                prop_assert!(cut >= encoded.len() - message.payload.len());
            }
        }
    }

    #[test]
    fn the_publication_time_reads_alone_from_either_layout() {
        let message = Message::new(
            MessageId(9),
            ByteStr::from_static("t"),
            Bytes::from_static(b"payload"),
            QoS::AtLeastOnce,
            1_234,
        );
        assert_eq!(published_at_ms(&encode_message(&message)).unwrap(), 1_234);
        assert_eq!(published_at_ms(&layout_1(&message)).unwrap(), 1_234);
        assert!(published_at_ms(&[]).is_err());
        assert!(published_at_ms(&[9; 40]).is_err());
        assert!(
            published_at_ms(&[MESSAGE_LAYOUT, 0, 0]).is_err(),
            "too short"
        );
    }

    #[test]
    fn rejects_malformed_headers() {
        let mut message = Message::new(
            MessageId(1),
            ByteStr::from_static("t"),
            Bytes::from_static(b"p"),
            QoS::AtMostOnce,
            0,
        )
        .with_origin(ByteStr::from_static("c"));
        message.retain = true;
        message.properties = Bytes::from_static(b"\x01\x01");
        let good = encode_message(&message);
        assert_eq!(good.len(), HEADER_LEN + 1 + 1 + 2 + 1);
        let cases: [(usize, u8, &str); 8] = [
            (0, 3, "layout"),
            (0, 0, "layout"),
            (33, 3, "QoS"),
            (34, 2, "retain"),
            (35, 0xff, "topic longer"),
            (37, 0xff, "origin longer"),
            (39, 0xff, "properties longer"),
            (43, 0xff, "topic is not valid"),
        ];
        for (at, byte, expect) in cases {
            let mut bytes = good.clone();
            bytes[at] = byte;
            let err = decode_message(&bytes).unwrap_err().to_string();
            assert!(err.contains(expect), "byte {at}: {err}");
        }
        let old = layout_1(&message);
        for (at, byte, expect) in [
            (25, 3, "QoS"),
            (26, 2, "retain"),
            (27, 0xff, "topic longer"),
        ] {
            let mut bytes = old.clone();
            bytes[at] = byte;
            let err = decode_message(&bytes).unwrap_err().to_string();
            assert!(err.contains(expect), "layout 1, byte {at}: {err}");
        }
        assert!(decode_message(&[])
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}
