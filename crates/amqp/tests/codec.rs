//! The frame codec: round trips of every modelled method, field value and property
//! (proptest), and the typed errors for malformed input.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use mqgate_amqp::fuzzing::frame_invariants;
use mqgate_amqp::{
    BasicProperties, CloseArgs, ContentHeader, DecodeError, EncodeError, FieldTable, FieldValue,
    Frame, FrameDecoder, Method, ReplyCode, MAX_TABLE_DEPTH,
};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/._@-]{0,40}|\\PC{0,10}"
}

fn long_bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        prop::num::f32::NORMAL.prop_map(FieldValue::F32),
        prop::num::f64::NORMAL.prop_map(FieldValue::F64),
        (any::<u8>(), any::<i32>()).prop_map(|(scale, value)| FieldValue::Decimal { scale, value }),
        long_bytes().prop_map(FieldValue::LongStr),
        long_bytes().prop_map(FieldValue::Bytes),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(FieldValue::Array),
            prop::collection::vec((name(), inner), 0..6)
                .prop_map(|kv| FieldValue::Table(kv.into_iter().collect())),
        ]
    })
}

fn table() -> impl Strategy<Value = FieldTable> {
    prop::collection::vec((name(), field_value()), 0..8).prop_map(|kv| kv.into_iter().collect())
}

fn properties() -> impl Strategy<Value = BasicProperties> {
    let o = || prop::option::of(name());
    (
        (
            o(),
            o(),
            prop::option::of(table()),
            prop::option::of(any::<u8>()),
        ),
        (prop::option::of(any::<u8>()), o(), o(), o(), o()),
        (prop::option::of(any::<u64>()), o(), o(), o(), o()),
    )
        .prop_map(
            |(
                (content_type, content_encoding, headers, delivery_mode),
                (priority, correlation_id, reply_to, expiration, message_id),
                (timestamp, kind, user_id, app_id, cluster_id),
            )| BasicProperties {
                content_type,
                content_encoding,
                headers,
                delivery_mode,
                priority,
                correlation_id,
                reply_to,
                expiration,
                message_id,
                timestamp,
                kind,
                user_id,
                app_id,
                cluster_id,
            },
        )
}

fn close_args() -> impl Strategy<Value = CloseArgs> {
    (any::<u16>(), name(), any::<u16>(), any::<u16>()).prop_map(
        |(reply_code, reply_text, class_id, method_id)| CloseArgs {
            reply_code,
            reply_text,
            class_id,
            method_id,
        },
    )
}

fn method() -> impl Strategy<Value = Method> {
    let b = any::<bool>;
    prop_oneof![
        (table(), long_bytes(), long_bytes()).prop_map(
            |(server_properties, mechanisms, locales)| {
                Method::ConnectionStart {
                    server_properties,
                    mechanisms,
                    locales,
                }
            }
        ),
        (table(), name(), long_bytes(), name()).prop_map(
            |(client_properties, mechanism, response, locale)| Method::ConnectionStartOk {
                client_properties,
                mechanism,
                response,
                locale
            }
        ),
        long_bytes().prop_map(|challenge| Method::ConnectionSecure { challenge }),
        long_bytes().prop_map(|response| Method::ConnectionSecureOk { response }),
        (any::<u16>(), any::<u32>(), any::<u16>()).prop_map(
            |(channel_max, frame_max, heartbeat)| {
                Method::ConnectionTune {
                    channel_max,
                    frame_max,
                    heartbeat,
                }
            }
        ),
        (any::<u16>(), any::<u32>(), any::<u16>()).prop_map(
            |(channel_max, frame_max, heartbeat)| {
                Method::ConnectionTuneOk {
                    channel_max,
                    frame_max,
                    heartbeat,
                }
            }
        ),
        name().prop_map(|virtual_host| Method::ConnectionOpen { virtual_host }),
        Just(Method::ConnectionOpenOk),
        close_args().prop_map(Method::ConnectionClose),
        Just(Method::ConnectionCloseOk),
        name().prop_map(|reason| Method::ConnectionBlocked { reason }),
        Just(Method::ConnectionUnblocked),
        Just(Method::ChannelOpen),
        Just(Method::ChannelOpenOk),
        b().prop_map(|active| Method::ChannelFlow { active }),
        b().prop_map(|active| Method::ChannelFlowOk { active }),
        close_args().prop_map(Method::ChannelClose),
        Just(Method::ChannelCloseOk),
        b().prop_map(|nowait| Method::ConfirmSelect { nowait }),
        Just(Method::ConfirmSelectOk),
        (any::<u32>(), any::<u16>(), b()).prop_map(|(prefetch_size, prefetch_count, global)| {
            Method::BasicQos {
                prefetch_size,
                prefetch_count,
                global,
            }
        }),
        Just(Method::BasicQosOk),
        (name(), name(), b(), b(), b(), b(), table()).prop_map(
            |(queue, consumer_tag, no_local, no_ack, exclusive, nowait, arguments)| {
                Method::BasicConsume {
                    queue,
                    consumer_tag,
                    no_local,
                    no_ack,
                    exclusive,
                    nowait,
                    arguments,
                }
            }
        ),
        name().prop_map(|consumer_tag| Method::BasicConsumeOk { consumer_tag }),
        (name(), b()).prop_map(|(consumer_tag, nowait)| Method::BasicCancel {
            consumer_tag,
            nowait
        }),
        name().prop_map(|consumer_tag| Method::BasicCancelOk { consumer_tag }),
        (name(), name(), b(), b()).prop_map(|(exchange, routing_key, mandatory, immediate)| {
            Method::BasicPublish {
                exchange,
                routing_key,
                mandatory,
                immediate,
            }
        }),
        (any::<u16>(), name(), name(), name()).prop_map(
            |(reply_code, reply_text, exchange, routing_key)| Method::BasicReturn {
                reply_code,
                reply_text,
                exchange,
                routing_key
            }
        ),
        (name(), any::<u64>(), b(), name(), name()).prop_map(
            |(consumer_tag, delivery_tag, redelivered, exchange, routing_key)| {
                Method::BasicDeliver {
                    consumer_tag,
                    delivery_tag,
                    redelivered,
                    exchange,
                    routing_key,
                }
            }
        ),
        (any::<u64>(), b()).prop_map(|(delivery_tag, multiple)| Method::BasicAck {
            delivery_tag,
            multiple
        }),
        (any::<u64>(), b()).prop_map(|(delivery_tag, requeue)| Method::BasicReject {
            delivery_tag,
            requeue
        }),
        (any::<u64>(), b(), b()).prop_map(|(delivery_tag, multiple, requeue)| Method::BasicNack {
            delivery_tag,
            multiple,
            requeue
        }),
        b().prop_map(|requeue| Method::BasicRecoverAsync { requeue }),
        b().prop_map(|requeue| Method::BasicRecover { requeue }),
        Just(Method::BasicRecoverOk),
        (
            prop::sample::select(vec![(40u16, 10u16), (50, 10), (50, 20), (60, 70), (90, 10)]),
            long_bytes()
        )
            .prop_map(|((class_id, method_id), arguments)| Method::Other {
                class_id,
                method_id,
                arguments
            }),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u16>(), method()).prop_map(|(channel, method)| Frame::Method { channel, method }),
        (any::<u16>(), any::<u64>(), properties()).prop_map(|(channel, body_size, properties)| {
            Frame::Header {
                channel,
                header: ContentHeader {
                    body_size,
                    properties,
                },
            }
        }),
        (any::<u16>(), long_bytes())
            .prop_map(|(channel, payload)| Frame::Body { channel, payload }),
        Just(Frame::Heartbeat),
    ]
}

proptest! {
    #[test]
    fn frames_round_trip(frames in prop::collection::vec(frame(), 1..6)) {
        let mut wire = BytesMut::new();
        for f in &frames {
            f.encode(&mut wire).unwrap();
        }
        let bytes = wire.clone().freeze();
        let decoder = FrameDecoder::new(1 << 20);
        let mut got = Vec::new();
        while let Some(f) = decoder.decode(&mut wire).unwrap() {
            got.push(f);
        }
        prop_assert!(wire.is_empty());
        prop_assert_eq!(&got, &frames);
        // The same bytes in single-byte reads decode to the same frames.
        let mut buf = BytesMut::new();
        let mut trickled = Vec::new();
        for b in bytes.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                trickled.push(f);
            }
        }
        prop_assert_eq!(trickled, frames);
    }

    #[test]
    fn tables_round_trip(t in table()) {
        let mut out = BytesMut::new();
        t.encode(&mut out).unwrap();
        prop_assert_eq!(FieldTable::decode(&out.freeze()).unwrap(), t);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_keep_the_invariants(data in prop::collection::vec(any::<u8>(), 0..512)) {
        frame_invariants(&data);
    }

    #[test]
    fn valid_frames_with_corrupted_bytes_never_panic(f in frame(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut wire = BytesMut::new();
        f.encode(&mut wire).unwrap();
        let i = at.index(wire.len());
        wire[i] = byte;
        frame_invariants(&wire);
    }
}

fn decode_one(bytes: &[u8]) -> Result<Option<Frame>, DecodeError> {
    FrameDecoder::new(4096).decode(&mut BytesMut::from(bytes))
}

fn method_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![1, 0, 1];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(0xCE);
    v
}

#[test]
fn a_frame_over_the_limit_is_refused_from_its_header_alone() {
    // 7 header bytes announcing 5000 bytes of payload, nothing more buffered.
    let err = decode_one(&[3, 0, 1, 0, 0, 0x13, 0x88]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::FrameTooLarge {
            size: 5008,
            max: 4096
        }
    );
    assert_eq!(err.reply_code(), ReplyCode::FrameError);
    // Exactly at the limit is fine (incomplete so far).
    assert_eq!(decode_one(&[3, 0, 1, 0, 0, 0x0F, 0xF8]), Ok(None));
}

#[test]
fn malformed_frames_have_typed_errors_and_reply_codes() {
    let cases: &[(&[u8], DecodeError, u16)] = &[
        (
            &[9, 0, 0, 0, 0, 0, 0, 0xCE],
            DecodeError::UnknownFrameType(9),
            501,
        ),
        (
            &[8, 0, 0, 0, 0, 0, 0, 0x00],
            DecodeError::BadFrameEnd(0),
            501,
        ),
        (
            &[8, 0, 0, 0, 0, 0, 1, 0, 0xCE],
            DecodeError::BadHeartbeat,
            501,
        ),
        (&[8, 0, 2, 0, 0, 0, 0, 0xCE], DecodeError::BadHeartbeat, 501),
    ];
    for (bytes, err, code) in cases {
        let got = decode_one(bytes).unwrap_err();
        assert_eq!(got, *err);
        assert_eq!(got.reply_code().code(), *code);
    }
    let m = |p: &[u8]| decode_one(&method_frame(p)).unwrap_err();
    assert_eq!(
        m(&[0, 60, 0, 99]),
        DecodeError::UnknownMethod {
            class_id: 60,
            method_id: 99
        }
    );
    assert_eq!(m(&[0, 60, 0, 99]).reply_code().code(), 540);
    assert_eq!(m(&[0, 60, 0, 80, 0]), DecodeError::UnexpectedEnd);
    assert_eq!(m(&[0, 85, 0, 10, 0, 1]), DecodeError::TrailingBytes);
    // basic.consume whose queue name is not UTF-8.
    assert_eq!(
        m(&[0, 60, 0, 20, 0, 0, 1, 0xFF, 0, 0, 0, 0, 0, 0]),
        DecodeError::InvalidUtf8
    );
    // basic.consume whose arguments hold an unknown field type 'Z'.
    assert_eq!(
        m(&[0, 60, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, b'k', b'Z']),
        DecodeError::UnknownFieldType(b'Z')
    );
    assert_eq!(m(&[0, 60, 0, 80, 0]).reply_code().code(), 502);
}

#[test]
fn content_headers_reject_other_classes_and_unused_flag_bits() {
    let header = |class: u16, flags: u16| {
        let mut p = class.to_be_bytes().to_vec();
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&0u64.to_be_bytes());
        p.extend_from_slice(&flags.to_be_bytes());
        ContentHeader::decode(&Bytes::from(p))
    };
    assert!(header(60, 0).is_ok());
    assert_eq!(header(50, 0), Err(DecodeError::BadContentClass(50)));
    assert_eq!(header(60, 1), Err(DecodeError::BadPropertyFlags(1)));
    assert_eq!(header(60, 2), Err(DecodeError::BadPropertyFlags(2)));
    // A flag whose field is missing.
    assert_eq!(header(60, 1 << 15), Err(DecodeError::UnexpectedEnd));
}

#[test]
fn tables_nest_up_to_the_bound_and_no_deeper() {
    let nest = |depth: usize| {
        let mut v = FieldValue::Void;
        for _ in 1..depth {
            v = FieldValue::Table(FieldTable::new().with("n", v));
        }
        FieldTable::new().with("n", v)
    };
    let mut ok = BytesMut::new();
    nest(MAX_TABLE_DEPTH).encode(&mut ok).unwrap();
    assert_eq!(
        FieldTable::decode(&ok.freeze()).unwrap(),
        nest(MAX_TABLE_DEPTH)
    );
    let mut deep = BytesMut::new();
    assert_eq!(
        nest(MAX_TABLE_DEPTH + 1).encode(&mut deep),
        Err(EncodeError::TooDeep)
    );
    // Hand-made: tables 'F' nested 1000 deep decode to an error, not a stack overflow.
    let mut body: Vec<u8> = Vec::new();
    for _ in 0..1000 {
        let mut t = Vec::new();
        t.extend_from_slice(&((body.len() + 3) as u32).to_be_bytes());
        t.extend_from_slice(&[1, b'n', b'F']);
        t.extend_from_slice(&body);
        body = t;
    }
    assert_eq!(
        FieldTable::decode(&Bytes::from(body)),
        Err(DecodeError::TooDeep)
    );
}

#[test]
fn the_grammars_other_spellings_are_read() {
    // 'U' (signed 16) and 'L' (signed 64) as AMQP 0-9-1's grammar writes them.
    let raw = [
        0, 0, 0, 16, 1, b'a', b'U', 0xFF, 0xFE, 1, b'b', b'L', 0, 0, 0, 0, 0, 0, 0, 5,
    ];
    let t = FieldTable::decode(&Bytes::copy_from_slice(&raw)).unwrap();
    assert_eq!(t.get("a"), Some(&FieldValue::I16(-2)));
    assert_eq!(t.get("b"), Some(&FieldValue::I64(5)));
}

#[test]
fn names_longer_than_a_short_string_do_not_encode() {
    let mut out = BytesMut::new();
    let m = Method::BasicConsumeOk {
        consumer_tag: "x".repeat(256),
    };
    assert_eq!(m.encode(&mut out), Err(EncodeError::ShortStrTooLong(256)));
}
