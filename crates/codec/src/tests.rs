//! Byte-level vectors for every packet type and every malformed case, and the
//! proptest round trip and no-panic properties.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::*;

pub(crate) fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("test ids are non-zero")
}

pub(crate) fn s(v: &'static str) -> ByteStr {
    ByteStr::from_static(v)
}

fn decode_all(bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
    decode_one_with(bytes, Decoder::decode)
}

/// Decodes `bytes` with `decode`, checking that a decoded packet consumed all of them.
pub(crate) fn decode_one_with<P>(
    bytes: &[u8],
    decode: impl Fn(&Decoder, &mut BytesMut) -> Result<Option<P>, DecodeError>,
) -> Result<Option<P>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let out = decode(&Decoder::new(1 << 20), &mut buf);
    if let Ok(Some(_)) = out {
        assert!(buf.is_empty(), "decoder must consume exactly one packet");
    }
    out
}

pub(crate) fn encode(p: &Packet) -> Vec<u8> {
    encode_with(p, Packet::encode, Packet::encoded_len)
}

/// Encodes `p` with `encode`, checking that `encoded_len` is exact.
pub(crate) fn encode_with<P>(
    p: &P,
    encode: impl Fn(&P, &mut BytesMut) -> Result<(), EncodeError>,
    encoded_len: impl Fn(&P) -> Result<usize, EncodeError>,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode(p, &mut buf).expect("encodable");
    assert_eq!(
        buf.len(),
        encoded_len(p).expect("len"),
        "encoded_len is exact"
    );
    buf.to_vec()
}

/// (name, packet, exact wire bytes): each is decoded and encoded both ways.
fn vectors() -> Vec<(&'static str, Packet, Vec<u8>)> {
    let mut v = vec![
        (
            "connect minimal 3.1.1",
            Packet::Connect(Box::new(Connect {
                protocol: Protocol::V311,
                clean_session: true,
                keep_alive: 60,
                client_id: s("c1"),
                ..Connect::default()
            })),
            vec![
                0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, b'c', b'1',
            ],
        ),
        (
            "connect 3.1 MQIsdp with will, user, password",
            Packet::Connect(Box::new(Connect {
                protocol: Protocol::V31,
                clean_session: false,
                keep_alive: 10,
                client_id: s("id"),
                will: Some(LastWill {
                    topic: s("w"),
                    payload: Bytes::from_static(b"bye"),
                    qos: QoS::AtLeastOnce,
                    retain: true,
                }),
                username: Some(s("u")),
                password: Some(Bytes::from_static(&[0xff, 0x00])),
            })),
            vec![
                0x10,
                31,
                0,
                6,
                b'M',
                b'Q',
                b'I',
                b's',
                b'd',
                b'p',
                3,
                0b1110_1100,
                0,
                10,
                0,
                2,
                b'i',
                b'd',
                0,
                1,
                b'w',
                0,
                3,
                b'b',
                b'y',
                b'e',
                0,
                1,
                b'u',
                0,
                2,
                0xff,
                0x00,
            ],
        ),
        (
            "connack session present",
            Packet::ConnAck(ConnAck {
                session_present: true,
                code: ConnectReturnCode::Accepted,
            }),
            vec![0x20, 2, 1, 0],
        ),
        (
            "connack not authorised",
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: ConnectReturnCode::NotAuthorized,
            }),
            vec![0x20, 2, 0, 5],
        ),
        (
            "publish qos0",
            Packet::Publish(Publish::at_most_once(s("a/b"), Bytes::from_static(b"hi"))),
            vec![0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i'],
        ),
        (
            "publish qos1 retain",
            Packet::Publish({
                let mut p = Publish::new(QoS::AtLeastOnce, Some(pid(10)), s("t"), Bytes::new());
                p.retain = true;
                p
            }),
            vec![0x33, 5, 0, 1, b't', 0, 10],
        ),
        (
            "publish qos2 dup",
            Packet::Publish({
                let mut p = Publish::new(
                    QoS::ExactlyOnce,
                    Some(pid(0x1234)),
                    s("$SYS/x"),
                    Bytes::from_static(b"z"),
                );
                p.dup = true;
                p
            }),
            vec![
                0x3c, 11, 0, 6, b'$', b'S', b'Y', b'S', b'/', b'x', 0x12, 0x34, b'z',
            ],
        ),
        ("puback", Packet::PubAck(pid(1)), vec![0x40, 2, 0, 1]),
        ("pubrec", Packet::PubRec(pid(2)), vec![0x50, 2, 0, 2]),
        ("pubrel", Packet::PubRel(pid(3)), vec![0x62, 2, 0, 3]),
        (
            "pubcomp",
            Packet::PubComp(pid(0xffff)),
            vec![0x70, 2, 0xff, 0xff],
        ),
        (
            "subscribe two filters",
            Packet::Subscribe(Subscribe {
                packet_id: pid(5),
                filters: vec![
                    SubscribeFilter {
                        filter: s("a/+"),
                        qos: QoS::AtMostOnce,
                    },
                    SubscribeFilter {
                        filter: s("#"),
                        qos: QoS::ExactlyOnce,
                    },
                ],
            }),
            vec![0x82, 12, 0, 5, 0, 3, b'a', b'/', b'+', 0, 0, 1, b'#', 2],
        ),
        (
            "suback mixed",
            Packet::SubAck(SubAck {
                packet_id: pid(5),
                return_codes: vec![
                    SubscribeReturnCode::Success(QoS::AtMostOnce),
                    SubscribeReturnCode::Failure,
                    SubscribeReturnCode::Success(QoS::ExactlyOnce),
                ],
            }),
            vec![0x90, 5, 0, 5, 0, 0x80, 2],
        ),
        (
            "unsubscribe",
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(6),
                filters: vec![s("a"), s("b/#")],
            }),
            vec![0xa2, 10, 0, 6, 0, 1, b'a', 0, 3, b'b', b'/', b'#'],
        ),
        ("unsuback", Packet::UnsubAck(pid(6)), vec![0xb0, 2, 0, 6]),
        ("pingreq", Packet::PingReq, vec![0xc0, 0]),
        ("pingresp", Packet::PingResp, vec![0xd0, 0]),
        ("disconnect", Packet::Disconnect, vec![0xe0, 0]),
    ];
    // A payload long enough for a two-byte remaining length.
    let payload = Bytes::from(vec![7u8; 200]);
    let mut wire = vec![0x30, 0xcd, 0x01, 0, 3, b'b', b'i', b'g'];
    wire.extend_from_slice(&payload);
    v.push((
        "publish with 2-byte remaining length",
        Packet::Publish(Publish::at_most_once(s("big"), payload)),
        wire,
    ));
    v
}

#[test]
fn every_packet_type_decodes_and_encodes_bit_for_bit() {
    let vs = vectors();
    let mut types: Vec<u8> = vs.iter().map(|(_, p, _)| p.packet_type()).collect();
    types.sort_unstable();
    types.dedup();
    assert_eq!(
        types,
        (1..=14).collect::<Vec<u8>>(),
        "all 14 packet types covered"
    );
    for (name, packet, wire) in vs {
        assert_eq!(decode_all(&wire), Ok(Some(packet.clone())), "decode {name}");
        assert_eq!(encode(&packet), wire, "encode {name}");
    }
}

#[test]
fn incomplete_input_waits_and_consumes_nothing() {
    for (name, _, wire) in vectors() {
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(
                Decoder::new(1 << 20).decode(&mut buf),
                Ok(None),
                "{name} cut at {cut}"
            );
            assert_eq!(
                &buf[..],
                &wire[..cut],
                "{name}: partial input left untouched"
            );
        }
    }
}

#[test]
fn back_to_back_packets_decode_one_at_a_time() {
    let mut stream = BytesMut::new();
    let vs = vectors();
    for (_, _, wire) in &vs {
        stream.extend_from_slice(wire);
    }
    let d = Decoder::new(1 << 20);
    for (name, packet, _) in &vs {
        assert_eq!(
            d.decode(&mut stream).as_ref(),
            Ok(&Some(packet.clone())),
            "{name}"
        );
    }
    assert!(stream.is_empty());
    assert_eq!(d.decode(&mut stream), Ok(None));
}

#[test]
fn malformed_inputs_are_errors() {
    use DecodeError::*;
    let connect = |flags: u8| vec![0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 0, 0, 0];
    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        ("reserved type 0", vec![0x00, 0], ReservedPacketType(0)),
        ("reserved type 15", vec![0xf0, 0], ReservedPacketType(15)),
        (
            "pingreq with flags",
            vec![0xc1, 0],
            InvalidFlags {
                packet_type: 12,
                flags: 1,
            },
        ),
        (
            "pubrel without 0010",
            vec![0x60, 2, 0, 1],
            InvalidFlags {
                packet_type: 6,
                flags: 0,
            },
        ),
        (
            "subscribe without 0010",
            vec![0x80, 6, 0, 1, 0, 1, b'a', 0],
            InvalidFlags {
                packet_type: 8,
                flags: 0,
            },
        ),
        (
            "unsubscribe without 0010",
            vec![0xa0, 5, 0, 1, 0, 1, b'a'],
            InvalidFlags {
                packet_type: 10,
                flags: 0,
            },
        ),
        (
            "connect with flags",
            vec![0x11, 0],
            InvalidFlags {
                packet_type: 1,
                flags: 1,
            },
        ),
        (
            "puback with flags",
            vec![0x42, 2, 0, 1],
            InvalidFlags {
                packet_type: 4,
                flags: 2,
            },
        ),
        ("publish qos 3", vec![0x36, 4, 0, 1, b't', 0], InvalidQos),
        (
            "remaining length 5 bytes",
            vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
            MalformedRemainingLength,
        ),
        (
            "remaining length not minimal",
            vec![0xc0, 0x80, 0x00],
            MalformedRemainingLength,
        ),
        ("packet id 0 in puback", vec![0x40, 2, 0, 0], ZeroPacketId),
        (
            "packet id 0 in publish qos1",
            vec![0x32, 5, 0, 1, b't', 0, 0],
            ZeroPacketId,
        ),
        (
            "packet id 0 in subscribe",
            vec![0x82, 6, 0, 0, 0, 1, b'a', 0],
            ZeroPacketId,
        ),
        (
            "invalid utf-8 topic",
            vec![0x30, 4, 0, 2, 0xc3, 0x28],
            InvalidUtf8,
        ),
        (
            "utf-16 surrogate in topic",
            vec![0x30, 5, 0, 3, 0xed, 0xa0, 0x80],
            InvalidUtf8,
        ),
        (
            "U+0000 in topic",
            vec![0x30, 5, 0, 3, b'a', 0, b'b'],
            NullCharacter,
        ),
        (
            "U+0000 in client id",
            vec![0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 0, 0, 1, 0],
            NullCharacter,
        ),
        (
            "string longer than packet",
            vec![0x30, 3, 0, 5, b'a'],
            UnexpectedEnd,
        ),
        ("puback too short", vec![0x40, 1, 0], UnexpectedEnd),
        (
            "connect truncated",
            vec![0x10, 3, 0, 4, b'M'],
            UnexpectedEnd,
        ),
        ("empty topic", vec![0x30, 2, 0, 0], EmptyTopicName),
        (
            "wildcard + in topic",
            vec![0x30, 5, 0, 3, b'a', b'/', b'+'],
            WildcardInTopicName,
        ),
        (
            "wildcard # in topic",
            vec![0x30, 3, 0, 1, b'#'],
            WildcardInTopicName,
        ),
        (
            "bad protocol name",
            vec![0x10, 12, 0, 4, b'M', b'Q', b'T', b'X', 4, 2, 0, 0, 0, 0],
            InvalidProtocolName,
        ),
        (
            "protocol level 5",
            vec![0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 0, 0, 0],
            UnsupportedProtocolLevel(5),
        ),
        (
            "MQIsdp at level 4",
            vec![
                0x10, 14, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 4, 2, 0, 0, 0, 0,
            ],
            UnsupportedProtocolLevel(4),
        ),
        (
            "connect reserved bit",
            connect(0b0000_0011),
            InvalidConnectFlags(0b0000_0011),
        ),
        (
            "will qos without will",
            connect(0b0000_1010),
            InvalidConnectFlags(0b0000_1010),
        ),
        (
            "will retain without will",
            connect(0b0010_0010),
            InvalidConnectFlags(0b0010_0010),
        ),
        (
            "will qos 3",
            connect(0b0001_1110),
            InvalidConnectFlags(0b0001_1110),
        ),
        (
            "password without username",
            connect(0b0100_0010),
            PasswordWithoutUsername,
        ),
        (
            "connect trailing bytes",
            vec![0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 0, 0, 0, 9],
            TrailingBytes,
        ),
        (
            "puback trailing bytes",
            vec![0x40, 3, 0, 1, 9],
            TrailingBytes,
        ),
        ("pingreq trailing bytes", vec![0xc0, 1, 9], TrailingBytes),
        (
            "connack reserved flags",
            vec![0x20, 2, 2, 0],
            InvalidConnAckFlags(2),
        ),
        (
            "connack return code 6",
            vec![0x20, 2, 0, 6],
            InvalidConnectReturnCode(6),
        ),
        (
            "subscribe without filters",
            vec![0x82, 2, 0, 1],
            NoTopicFilters,
        ),
        (
            "subscribe requested qos 3",
            vec![0x82, 6, 0, 1, 0, 1, b'a', 3],
            InvalidRequestedQos(3),
        ),
        (
            "subscribe reserved qos bits",
            vec![0x82, 6, 0, 1, 0, 1, b'a', 0x41],
            InvalidRequestedQos(0x41),
        ),
        (
            "subscribe filter without qos",
            vec![0x82, 5, 0, 1, 0, 1, b'a'],
            UnexpectedEnd,
        ),
        (
            "subscribe empty filter",
            vec![0x82, 5, 0, 1, 0, 0, 0],
            EmptyTopicFilter,
        ),
        (
            "unsubscribe without filters",
            vec![0xa2, 2, 0, 1],
            NoTopicFilters,
        ),
        (
            "unsubscribe empty filter",
            vec![0xa2, 4, 0, 1, 0, 0],
            EmptyTopicFilter,
        ),
        (
            "suback bad code",
            vec![0x90, 3, 0, 1, 3],
            InvalidSubAckReturnCode(3),
        ),
        ("suback without codes", vec![0x90, 2, 0, 1], UnexpectedEnd),
        (
            "will topic with wildcard",
            vec![
                0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0b110, 0, 0, 0, 0, 0, 1, b'#', 0, 0,
            ],
            WildcardInTopicName,
        ),
    ];
    for (name, wire, want) in cases {
        assert_eq!(decode_all(&wire), Err(want), "{name}");
    }
}

#[test]
fn oversized_packet_is_refused_from_its_fixed_header() {
    // 200 MiB announced, only the header present: refused before any body arrives.
    let mut buf = BytesMut::from(&[0x30, 0x80, 0x80, 0x80, 0x64][..]);
    let err = Decoder::new(1 << 20).decode(&mut buf).unwrap_err();
    assert_eq!(
        err,
        DecodeError::PacketTooLarge {
            size: 200 * (1 << 20) + 5,
            max: 1 << 20
        }
    );
    assert!(
        buf.capacity() < 1 << 20,
        "nothing reserved for the refused body"
    );
    // Exactly at the limit is fine.
    let p = Packet::Publish(Publish::at_most_once(s("t"), Bytes::from(vec![0u8; 100])));
    let len = p.encoded_len().unwrap();
    let mut buf = BytesMut::new();
    p.encode(&mut buf).unwrap();
    assert_eq!(Decoder::new(len).decode(&mut buf.clone()), Ok(Some(p)));
    assert!(matches!(
        Decoder::new(len - 1).decode(&mut buf),
        Err(DecodeError::PacketTooLarge { .. })
    ));
}

#[test]
fn decoded_publish_shares_the_receive_buffer() {
    let wire = encode(&Packet::Publish(Publish::at_most_once(
        s("a/b"),
        Bytes::from_static(b"payload"),
    )));
    let mut buf = BytesMut::from(&wire[..]);
    let base = buf.as_ptr() as usize;
    let Some(Packet::Publish(p)) = Decoder::new(1024).decode(&mut buf).unwrap() else {
        panic!("publish")
    };
    assert_eq!(p.topic().as_ptr() as usize, base + 4);
    assert_eq!(p.payload().as_ptr() as usize, base + 7);
    assert_eq!(p.shared_topic().as_ptr() as usize, base + 4);
    assert_eq!(p.shared_payload().as_ptr() as usize, base + 7);
    let (topic, payload) = p.clone().into_parts();
    assert_eq!((&*topic, &payload[..]), ("a/b", &b"payload"[..]));
    assert_eq!(topic.as_ptr() as usize, base + 4);
    assert_eq!(payload.as_ptr() as usize, base + 7);
    assert_eq!(p.into_payload().as_ptr() as usize, base + 7);
}

#[test]
fn decoded_and_built_publishes_agree() {
    let built = Publish::new(
        QoS::AtLeastOnce,
        Some(pid(9)),
        s("a/b"),
        Bytes::from_static(b"hi"),
    );
    let mut buf = BytesMut::from(&encode(&Packet::Publish(built.clone()))[..]);
    let Some(Packet::Publish(decoded)) = Decoder::new(1024).decode(&mut buf).unwrap() else {
        panic!("publish")
    };
    assert_eq!(decoded, built);
    let with = |topic, payload| {
        Publish::new(
            QoS::AtLeastOnce,
            Some(pid(9)),
            s(topic),
            Bytes::from_static(payload),
        )
    };
    assert_ne!(decoded, with("a/c", b"hi"));
    assert_ne!(decoded, with("a/b", b"ho"));
    assert_eq!(format!("{decoded:?}"), format!("{built:?}"));
    assert_eq!(decoded.shared_topic(), built.shared_topic());
    assert_eq!(decoded.shared_payload(), built.shared_payload());
    assert_eq!(decoded.into_parts(), built.into_parts());
}

#[test]
fn encode_errors() {
    let bad = Publish::new(QoS::AtLeastOnce, None, s("t"), Bytes::new());
    assert_eq!(
        Packet::Publish(bad).encode(&mut BytesMut::new()),
        Err(EncodeError::PacketIdMismatch)
    );
    let long = ByteStr::try_from("x".repeat(70_000)).unwrap();
    assert_eq!(
        Packet::Publish(Publish::at_most_once(long, Bytes::new())).encoded_len(),
        Err(EncodeError::FieldTooLong(70_000))
    );
    let empty = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        filters: vec![],
    });
    assert_eq!(empty.encoded_len(), Err(EncodeError::EmptyList));
}

// ---- property tests ----

pub(crate) fn arb_str() -> impl Strategy<Value = ByteStr> {
    "[a-z0-9/$é中 _-]{0,12}".prop_map(|s| ByteStr::try_from(s).expect("no NUL"))
}
pub(crate) fn arb_topic() -> impl Strategy<Value = ByteStr> {
    "[a-z0-9/$é中_-]{1,12}".prop_map(|s| ByteStr::try_from(s).expect("no NUL"))
}
pub(crate) fn arb_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}
pub(crate) fn arb_qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}
pub(crate) fn arb_pid() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(pid)
}

pub(crate) fn arb_packet() -> impl Strategy<Value = Packet> {
    let will = (arb_topic(), arb_bytes(), arb_qos(), any::<bool>()).prop_map(
        |(topic, payload, qos, retain)| LastWill {
            topic,
            payload,
            qos,
            retain,
        },
    );
    let connect = (
        prop_oneof![Just(Protocol::V31), Just(Protocol::V311)],
        any::<bool>(),
        any::<u16>(),
        arb_str(),
        proptest::option::of(will),
        proptest::option::of((arb_str(), proptest::option::of(arb_bytes()))),
    )
        .prop_map(
            |(protocol, clean_session, keep_alive, client_id, will, login)| {
                let (username, password) = match login {
                    Some((u, p)) => (Some(u), p),
                    None => (None, None),
                };
                Packet::Connect(Box::new(Connect {
                    protocol,
                    clean_session,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                }))
            },
        );
    let code = (0u8..=5).prop_map(|c| ConnectReturnCode::from_u8(c).expect("0..=5"));
    let publish = (
        any::<bool>(),
        arb_qos(),
        any::<bool>(),
        arb_topic(),
        arb_pid(),
        arb_bytes(),
    )
        .prop_map(|(dup, qos, retain, topic, id, payload)| {
            let packet_id = (qos != QoS::AtMostOnce).then_some(id);
            let mut p = Publish::new(qos, packet_id, topic, payload);
            p.dup = dup;
            p.retain = retain;
            Packet::Publish(p)
        });
    let filters = proptest::collection::vec(
        (arb_topic(), arb_qos()).prop_map(|(filter, qos)| SubscribeFilter { filter, qos }),
        1..5,
    );
    let rc = prop_oneof![
        arb_qos().prop_map(SubscribeReturnCode::Success),
        Just(SubscribeReturnCode::Failure)
    ];
    prop_oneof![
        connect,
        (any::<bool>(), code).prop_map(|(session_present, code)| Packet::ConnAck(ConnAck {
            session_present,
            code
        })),
        publish,
        arb_pid().prop_map(Packet::PubAck),
        arb_pid().prop_map(Packet::PubRec),
        arb_pid().prop_map(Packet::PubRel),
        arb_pid().prop_map(Packet::PubComp),
        (arb_pid(), filters)
            .prop_map(|(packet_id, filters)| Packet::Subscribe(Subscribe { packet_id, filters })),
        (arb_pid(), proptest::collection::vec(rc, 1..5)).prop_map(|(packet_id, return_codes)| {
            Packet::SubAck(SubAck {
                packet_id,
                return_codes,
            })
        }),
        (arb_pid(), proptest::collection::vec(arb_topic(), 1..5)).prop_map(
            |(packet_id, filters)| Packet::Unsubscribe(Unsubscribe { packet_id, filters })
        ),
        arb_pid().prop_map(Packet::UnsubAck),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect),
    ]
}

/// Feeds `data` to a decoder in chunks ending at `splits`, as a socket would deliver it.
/// Must never panic; returns the packets decoded before the first error.
pub(crate) fn feed_in_chunks(data: &[u8], splits: &[usize]) -> Vec<Packet> {
    feed_chunks_with(data, splits, Decoder::decode)
}

/// [`feed_in_chunks`] with any decoding function (the 3.1.1 or the MQTT 5 one).
pub(crate) fn feed_chunks_with<P>(
    data: &[u8],
    splits: &[usize],
    decode: impl Fn(&Decoder, &mut BytesMut) -> Result<Option<P>, DecodeError>,
) -> Vec<P> {
    let d = Decoder::new(1 << 16);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut cuts: Vec<usize> = splits.iter().map(|&c| c.min(data.len())).collect();
    cuts.push(data.len());
    cuts.sort_unstable();
    for end in cuts {
        buf.extend_from_slice(&data[start..end]);
        start = end;
        loop {
            match decode(&d, &mut buf) {
                Ok(Some(p)) => out.push(p),
                Ok(None) => break,
                Err(_) => return out,
            }
        }
    }
    out
}

proptest! {
    #[test]
    fn round_trip(p in arb_packet()) {
        let wire = encode(&p);
        prop_assert_eq!(decode_all(&wire), Ok(Some(p.clone())));
        // and the re-encoding is bit for bit the same
        let Ok(Some(again)) = decode_all(&wire) else { unreachable!() };
        prop_assert_eq!(encode(&again), wire);
    }

    #[test]
    fn round_trip_split_anywhere(ps in proptest::collection::vec(arb_packet(), 1..6), split in any::<prop::sample::Index>()) {
        let mut wire = Vec::new();
        for p in &ps { wire.extend(encode(p)); }
        let at = split.index(wire.len() + 1);
        prop_assert_eq!(feed_in_chunks(&wire, &[at]), ps);
    }

    #[test]
    fn topic_scan_agrees_with_a_byte_by_byte_scan(data in proptest::collection::vec(prop_oneof![Just(0u8), Just(b'+'), Just(b'#'), Just(0x80u8), Just(0xffu8), 0x20u8..0x7f], 0..80)) {
        let naive = (data.iter().any(|&c| c == 0 || c == b'+' || c == b'#'), data.iter().any(|&c| c >= 0x80));
        prop_assert_eq!(crate::string::scan_topic_bytes(&data), naive);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), splits in proptest::collection::vec(0usize..300, 0..4)) {
        let _ = feed_in_chunks(&data, &splits);
    }

    #[test]
    fn mutated_valid_packets_never_panic(p in arb_packet(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut wire = encode(&p);
        let i = at.index(wire.len());
        wire[i] = byte;
        let _ = feed_in_chunks(&wire, &[]);
    }
}

#[test]
fn arbitrary_bytes_split_at_every_position() {
    // A fixed pseudo-random stream of valid and invalid bytes, fed split at every position.
    let mut data = Vec::new();
    for (_, _, wire) in vectors() {
        data.extend(wire);
    }
    let whole = feed_in_chunks(&data, &[]);
    for at in 0..=data.len() {
        assert_eq!(feed_in_chunks(&data, &[at]), whole, "split at {at}");
    }
}

#[test]
fn publish_lengths_around_the_one_byte_boundary() {
    // remaining = 2 + 3 (topic) + 2 (id) + payload: 126 to 129 straddle the one-byte length.
    for payload_len in 119..=122usize {
        let p = Publish::new(
            QoS::AtLeastOnce,
            Some(pid(3)),
            s("a/b"),
            Bytes::from(vec![7u8; payload_len]),
        );
        let remaining = 7 + payload_len;
        let wire = encode(&Packet::Publish(p.clone()));
        let len_bytes: &[u8] = if remaining < 128 {
            &[remaining as u8]
        } else {
            &[(remaining % 128) as u8 | 0x80, (remaining / 128) as u8]
        };
        let mut want = vec![0x32];
        want.extend_from_slice(len_bytes);
        want.extend_from_slice(&[0, 3, b'a', b'/', b'b', 0, 3]);
        want.extend(std::iter::repeat_n(7u8, payload_len));
        assert_eq!(wire, want, "payload of {payload_len} bytes");
        let mut head = BytesMut::new();
        p.encode_header(&mut head).unwrap();
        head.extend_from_slice(p.payload());
        assert_eq!(&head[..], &wire[..]);
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(
            Decoder::new(1024).decode(&mut buf).unwrap(),
            Some(Packet::Publish(p))
        );
    }
}
