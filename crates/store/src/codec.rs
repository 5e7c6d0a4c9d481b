//! The on-disk encoding of a [`Message`]: a fixed header, the topic, then the payload.
//!
//! Messages are the bulk of what a store writes, so they get a compact hand-written layout
//! (a 29-byte header, `HEADER_LEN`, then topic and payload) instead of a self-describing
//! format; the rarely written records (sessions, registries) are JSON.

use bytes::Bytes;
use mqgate_codec::{ByteStr, QoS};
use mqgate_session::{Message, MessageId};

use crate::StoreError;

/// Version byte first, so the layout can change without a new table.
const MESSAGE_LAYOUT: u8 = 1;
/// version (1) + id (16) + published_at_ms (8) + qos (1) + retain (1) + topic length (2).
const HEADER_LEN: usize = 29;

/// Encodes a message for storage.
///
/// ```
/// use mqgate_codec::{ByteStr, QoS};
/// use mqgate_session::{Message, MessageId};
/// use mqgate_store::codec::{decode_message, encode_message};
///
/// let message = Message {
///     id: MessageId(42),
///     topic: ByteStr::from_static("a/b"),
///     payload: bytes::Bytes::from_static(b"hi"),
///     qos: QoS::AtLeastOnce,
///     retain: false,
///     published_at_ms: 7,
/// };
/// assert_eq!(decode_message(&encode_message(&message))?, message);
/// # Ok::<(), mqgate_store::StoreError>(())
/// ```
pub fn encode_message(message: &Message) -> Vec<u8> {
    let topic = message.topic.as_bytes();
    // A topic longer than u16::MAX cannot come from an MQTT packet; clamp rather than panic.
    let topic = topic.get(..usize::from(u16::MAX)).unwrap_or(topic);
    let mut out = Vec::with_capacity(HEADER_LEN + topic.len() + message.payload.len());
    out.push(MESSAGE_LAYOUT);
    out.extend_from_slice(&message.id.0.to_be_bytes());
    out.extend_from_slice(&message.published_at_ms.to_be_bytes());
    out.push(message.qos as u8);
    out.push(u8::from(message.retain));
    out.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    out.extend_from_slice(topic);
    out.extend_from_slice(&message.payload);
    out
}

/// Decodes a stored message. Any input is safe: malformed bytes give
/// [`StoreError::Corrupt`], never a panic.
///
/// # Errors
/// [`StoreError::Corrupt`] when the bytes are not a message this version wrote.
pub fn decode_message(bytes: &[u8]) -> Result<Message, StoreError> {
    let bad = |reason: &str| StoreError::corrupt("messages", reason);
    let (header, rest) = bytes
        .split_at_checked(HEADER_LEN)
        .ok_or_else(|| bad("shorter than the header"))?;
    let (&version, header) = header.split_first().ok_or_else(|| bad("empty"))?;
    if version != MESSAGE_LAYOUT {
        return Err(bad("unknown message layout"));
    }
    let (id, header) = take::<16>(header).ok_or_else(|| bad("id"))?;
    let (published, header) = take::<8>(header).ok_or_else(|| bad("timestamp"))?;
    let [qos, retain, len_hi, len_lo] = header else {
        return Err(bad("header length"));
    };
    let qos = QoS::from_u8(*qos).ok_or_else(|| bad("QoS is not 0, 1 or 2"))?;
    let retain = match retain {
        0 => false,
        1 => true,
        _ => return Err(bad("retain flag is not 0 or 1")),
    };
    let topic_len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]));
    let (topic, payload) = rest
        .split_at_checked(topic_len)
        .ok_or_else(|| bad("topic longer than the record"))?;
    let topic = ByteStr::try_from(Bytes::copy_from_slice(topic))
        .map_err(|_| bad("topic is not valid MQTT UTF-8"))?;
    Ok(Message {
        id: MessageId(u128::from_be_bytes(id)),
        topic,
        payload: Bytes::copy_from_slice(payload),
        qos,
        retain,
        published_at_ms: u64::from_be_bytes(published),
    })
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
        )
            .prop_map(|(id, topic, payload, qos, retain, at)| Message {
                id: MessageId(id),
                topic: ByteStr::try_from(topic).unwrap(),
                payload: payload.into(),
                qos: QoS::from_u8(qos).unwrap(),
                retain,
                published_at_ms: at,
            })
    }

    proptest! {
        #[test]
        fn round_trip(message in arb_message()) {
            prop_assert_eq!(decode_message(&encode_message(&message)).unwrap(), message);
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
                prop_assert!(cut >= encoded.len() - message.payload.len());
            }
        }
    }

    #[test]
    fn rejects_malformed_headers() {
        let good = encode_message(&Message {
            id: MessageId(1),
            topic: ByteStr::from_static("t"),
            payload: Bytes::from_static(b"p"),
            qos: QoS::AtMostOnce,
            retain: true,
            published_at_ms: 0,
        });
        let cases: [(usize, u8, &str); 4] = [
            (0, 2, "layout"),
            (25, 3, "QoS"),
            (26, 2, "retain"),
            (27, 0xff, "topic longer"),
        ];
        for (at, byte, expect) in cases {
            let mut bytes = good.clone();
            bytes[at] = byte;
            let err = decode_message(&bytes).unwrap_err().to_string();
            assert!(err.contains(expect), "byte {at}: {err}");
        }
    }
}
