//! MQTT 5: byte vectors for every packet type, the malformed cases with the error each
//! gives, and proptest round trips and rejections of malformed properties.

use bytes::{Bytes, BytesMut};
use core::num::{NonZeroU16, NonZeroU32};
use proptest::prelude::*;

use crate::tests::{
    arb_bytes, arb_pid, arb_qos, arb_str, arb_topic, decode_one_with, encode_with,
    feed_chunks_with, pid, s,
};
use crate::v5::*;
use crate::{
    AnyPacket, ByteStr, ConnectionDecoder, DecodeError, Decoder, EncodeError, ErrorKind,
    Properties, Property, PropertyContext, PropertyId, PropertyType, ProtocolVersion, QoS,
    ReasonCode, MAX_VAR_INT,
};

fn props<'a>(list: impl IntoIterator<Item = Property<'a>>) -> Properties {
    Properties::build(list).expect("valid test properties")
}

fn decode5(bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
    decode_one_with(bytes, Decoder::decode_v5)
}

fn encode5(p: &Packet) -> Vec<u8> {
    encode_with(p, Packet::encode, Packet::encoded_len)
}

/// (name, packet, exact wire bytes), each decoded and encoded both ways.
fn vectors() -> Vec<(&'static str, Packet, Vec<u8>)> {
    use PropertyId as P;
    vec![
        (
            "connect minimal",
            Packet::Connect(Box::new(Connect {
                clean_start: true,
                keep_alive: 60,
                client_id: s("c1"),
                ..Connect::default()
            })),
            vec![
                0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 2, b'c', b'1',
            ],
        ),
        (
            "connect with properties, will with properties, password without user name",
            Packet::Connect(Box::new(Connect {
                clean_start: false,
                keep_alive: 10,
                properties: props([
                    Property::FourByteInt(P::SessionExpiryInterval, 3600),
                    Property::TwoByteInt(P::ReceiveMaximum, 20),
                ]),
                client_id: s("id"),
                will: Some(Will {
                    topic: s("w"),
                    payload: Bytes::from_static(b"bye"),
                    qos: QoS::AtLeastOnce,
                    retain: true,
                    properties: props([Property::FourByteInt(P::WillDelayInterval, 5)]),
                }),
                username: None,
                password: Some(Bytes::from_static(&[0xff])),
            })),
            vec![
                0x10,
                40,
                0,
                4,
                b'M',
                b'Q',
                b'T',
                b'T',
                5,
                0b0110_1100,
                0,
                10, // header
                8,
                0x11,
                0,
                0,
                0x0e,
                0x10,
                0x21,
                0,
                20, // properties
                0,
                2,
                b'i',
                b'd', // client id
                5,
                0x18,
                0,
                0,
                0,
                5, // will properties
                0,
                1,
                b'w',
                0,
                3,
                b'b',
                b'y',
                b'e', // will topic, payload
                0,
                1,
                0xff, // password
            ],
        ),
        (
            "connack session present, no properties",
            Packet::ConnAck(ConnAck {
                session_present: true,
                reason: ReasonCode::Success,
                properties: Properties::new(),
            }),
            vec![0x20, 3, 1, 0, 0],
        ),
        (
            "connack with what the server supports",
            Packet::ConnAck(ConnAck {
                session_present: false,
                reason: ReasonCode::Success,
                properties: props([
                    Property::TwoByteInt(P::ReceiveMaximum, 10),
                    Property::Byte(P::MaximumQoS, 1),
                ]),
            }),
            vec![0x20, 8, 0, 0, 5, 0x21, 0, 10, 0x24, 1],
        ),
        (
            "connack refused",
            Packet::ConnAck(ConnAck {
                session_present: false,
                reason: ReasonCode::BadUserNameOrPassword,
                properties: Properties::new(),
            }),
            vec![0x20, 3, 0, 0x86, 0],
        ),
        (
            "publish qos 1 with expiry, alias and a user property",
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: s("a/b"),
                packet_id: Some(pid(9)),
                properties: PublishProperties {
                    forward: Bytes::from_static(&[0x26, 0, 1, b'k', 0, 1, b'v']),
                    message_expiry_interval: Some(30),
                    topic_alias: NonZeroU16::new(1),
                    subscription_identifiers: vec![].into(),
                },
                payload: Bytes::from_static(b"hi"),
            }),
            vec![
                0x32, 25, 0, 3, b'a', b'/', b'b', 0, 9, 15, 0x02, 0, 0, 0, 30, 0x23, 0, 1, 0x26, 0,
                1, b'k', 0, 1, b'v', b'h', b'i',
            ],
        ),
        (
            "publish by topic alias only, retained",
            Packet::Publish(Publish {
                retain: true,
                topic: ByteStr::default(),
                properties: PublishProperties {
                    topic_alias: NonZeroU16::new(5),
                    ..PublishProperties::default()
                },
                ..Publish::new(
                    QoS::AtMostOnce,
                    None,
                    ByteStr::default(),
                    Bytes::from_static(b"x"),
                )
            }),
            vec![0x31, 7, 0, 0, 3, 0x23, 0, 5, b'x'],
        ),
        (
            "publish to a subscriber with two subscription identifiers",
            Packet::Publish(Publish {
                properties: PublishProperties {
                    subscription_identifiers: vec![
                        NonZeroU32::new(1).unwrap(),
                        NonZeroU32::new(300).unwrap(),
                    ]
                    .into(),
                    ..PublishProperties::default()
                },
                ..Publish::new(QoS::AtMostOnce, None, s("t"), Bytes::new())
            }),
            vec![0x30, 9, 0, 1, b't', 5, 0x0b, 1, 0x0b, 0xac, 0x02],
        ),
        (
            "publish with a user property, then subscription identifiers last",
            Packet::Publish(Publish {
                properties: PublishProperties {
                    forward: Bytes::from_static(&[0x26, 0, 1, b'k', 0, 1, b'v']),
                    subscription_identifiers: vec![NonZeroU32::new(2).unwrap()].into(),
                    ..PublishProperties::default()
                },
                ..Publish::new(QoS::AtMostOnce, None, s("t"), Bytes::new())
            }),
            vec![
                0x30, 13, 0, 1, b't', 9, 0x26, 0, 1, b'k', 0, 1, b'v', 0x0b, 2,
            ],
        ),
        (
            "puback short form",
            Packet::PubAck(Ack::success(pid(7))),
            vec![0x40, 2, 0, 7],
        ),
        (
            "puback with reason",
            Packet::PubAck(Ack {
                reason: ReasonCode::NoMatchingSubscribers,
                ..Ack::success(pid(7))
            }),
            vec![0x40, 3, 0, 7, 0x10],
        ),
        (
            "puback with reason string",
            Packet::PubAck(Ack {
                packet_id: pid(7),
                reason: ReasonCode::NotAuthorized,
                properties: props([Property::Utf8(P::ReasonString, "x")]),
            }),
            vec![0x40, 8, 0, 7, 0x87, 4, 0x1f, 0, 1, b'x'],
        ),
        (
            "pubrec quota exceeded",
            Packet::PubRec(Ack {
                reason: ReasonCode::QuotaExceeded,
                ..Ack::success(pid(5))
            }),
            vec![0x50, 3, 0, 5, 0x97],
        ),
        (
            "pubrel",
            Packet::PubRel(Ack::success(pid(5))),
            vec![0x62, 2, 0, 5],
        ),
        (
            "pubcomp packet id not found",
            Packet::PubComp(Ack {
                reason: ReasonCode::PacketIdentifierNotFound,
                ..Ack::success(pid(5))
            }),
            vec![0x70, 3, 0, 5, 0x92],
        ),
        (
            "subscribe with identifier and every option",
            Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: props([Property::VarInt(P::SubscriptionIdentifier, 5)]),
                filters: vec![Subscription {
                    filter: s("a/#"),
                    options: SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: true,
                        retain_as_published: true,
                        retain_handling: RetainHandling::DoNotSend,
                    },
                }],
            }),
            vec![0x82, 11, 0, 1, 2, 0x0b, 5, 0, 3, b'a', b'/', b'#', 0x2d],
        ),
        (
            "suback",
            Packet::SubAck(SubAck {
                packet_id: pid(1),
                properties: Properties::new(),
                reasons: vec![
                    ReasonCode::Success,
                    ReasonCode::GrantedQoS1,
                    ReasonCode::UnspecifiedError,
                    ReasonCode::WildcardSubscriptionsNotSupported,
                ],
            }),
            vec![0x90, 7, 0, 1, 0, 0x00, 0x01, 0x80, 0xa2],
        ),
        (
            "unsubscribe",
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(2),
                properties: Properties::new(),
                filters: vec![s("a")],
            }),
            vec![0xa2, 6, 0, 2, 0, 0, 1, b'a'],
        ),
        (
            "unsuback",
            Packet::UnsubAck(UnsubAck {
                packet_id: pid(2),
                properties: Properties::new(),
                reasons: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
            }),
            vec![0xb0, 5, 0, 2, 0, 0x00, 0x11],
        ),
        ("pingreq", Packet::PingReq, vec![0xc0, 0]),
        ("pingresp", Packet::PingResp, vec![0xd0, 0]),
        (
            "disconnect normal",
            Packet::Disconnect(ReasonAndProperties::default()),
            vec![0xe0, 0],
        ),
        (
            "disconnect with will message",
            Packet::Disconnect(ReasonAndProperties {
                reason: ReasonCode::DisconnectWithWillMessage,
                properties: Properties::new(),
            }),
            vec![0xe0, 1, 0x04],
        ),
        (
            "disconnect with session expiry",
            Packet::Disconnect(ReasonAndProperties {
                reason: ReasonCode::Success,
                properties: props([Property::FourByteInt(P::SessionExpiryInterval, 10)]),
            }),
            vec![0xe0, 7, 0, 5, 0x11, 0, 0, 0, 10],
        ),
        (
            "auth success",
            Packet::Auth(ReasonAndProperties::default()),
            vec![0xf0, 0],
        ),
        (
            "auth continue",
            Packet::Auth(ReasonAndProperties {
                reason: ReasonCode::ContinueAuthentication,
                properties: props([
                    Property::Utf8(P::AuthenticationMethod, "m"),
                    Property::Binary(P::AuthenticationData, &[1, 2]),
                ]),
            }),
            vec![0xf0, 11, 0x18, 9, 0x15, 0, 1, b'm', 0x16, 0, 2, 1, 2],
        ),
    ]
}

#[test]
fn every_packet_type_decodes_and_encodes_bit_for_bit() {
    let vs = vectors();
    let mut types: Vec<u8> = vs.iter().map(|(_, p, _)| p.packet_type()).collect();
    types.sort_unstable();
    types.dedup();
    assert_eq!(
        types,
        (1..=15).collect::<Vec<u8>>(),
        "every packet type has a vector"
    );
    for (name, packet, wire) in vs {
        assert_eq!(encode5(&packet), wire, "encode {name}");
        assert_eq!(decode5(&wire), Ok(Some(packet)), "decode {name}");
    }
}

#[test]
fn longer_forms_decode_and_re_encode_in_the_shortest_form() {
    // (input, shortest form): an explicit Success reason, an empty property block.
    let cases: &[(&[u8], &[u8])] = &[
        (&[0x40, 3, 0, 7, 0], &[0x40, 2, 0, 7]),
        (&[0x40, 4, 0, 7, 0, 0], &[0x40, 2, 0, 7]),
        (&[0x50, 4, 0, 7, 0x10, 0], &[0x50, 3, 0, 7, 0x10]),
        (&[0x62, 3, 0, 7, 0], &[0x62, 2, 0, 7]),
        (&[0xe0, 1, 0], &[0xe0, 0]),
        (&[0xe0, 2, 0x8e, 0], &[0xe0, 1, 0x8e]),
        (&[0xf0, 2, 0, 0], &[0xf0, 0]),
    ];
    for (input, short) in cases {
        let p = decode5(input).unwrap().unwrap();
        assert_eq!(&encode5(&p)[..], *short, "{input:?}");
        assert_eq!(decode5(short), Ok(Some(p)));
    }
}

#[test]
fn publish_forwardable_properties_are_a_slice_when_contiguous_and_a_copy_otherwise() {
    // Contiguous: content type and user property after the expiry.
    let wire = [
        0x30, 21, 0, 1, b't', 16, 0x02, 0, 0, 0, 9, 0x03, 0, 1, b'j', 0x26, 0, 1, b'k', 0, 1, b'v',
        b'!',
    ];
    let mut buf = BytesMut::from(&wire[..]);
    let base = buf.as_ptr() as usize;
    let Some(Packet::Publish(p)) = Decoder::new(64).decode_v5(&mut buf).unwrap() else {
        panic!("a publish")
    };
    assert_eq!(p.properties.message_expiry_interval, Some(9));
    assert_eq!(&p.properties.forward[..], &wire[11..22]);
    assert_eq!(
        p.properties.forward.as_ptr() as usize,
        base + 11,
        "sliced from the receive buffer, not copied"
    );
    assert_eq!(
        p.topic.as_bytes().as_ptr() as usize,
        base + 4,
        "topic shared"
    );
    assert_eq!(p.payload.as_ptr() as usize, base + 22, "payload shared");

    // Interleaved (as rumqttc writes them): payload format, expiry, alias, user property.
    let wire = [
        0x30, 21, 0, 1, b't', 17, 0x01, 1, 0x02, 0, 0, 0, 9, 0x23, 0, 2, 0x26, 0, 1, b'k', 0, 1,
        b'v',
    ];
    let Some(Packet::Publish(p)) = decode5(&wire).unwrap() else {
        panic!("a publish")
    };
    assert_eq!(
        &p.properties.forward[..],
        &[0x01, 1, 0x26, 0, 1, b'k', 0, 1, b'v']
    );
    assert_eq!(p.properties.topic_alias, NonZeroU16::new(2));
    let fwd = p.properties.forwarded();
    assert_eq!(
        fwd.iter().collect::<Vec<_>>(),
        [
            Property::Byte(PropertyId::PayloadFormatIndicator, 1),
            Property::UserProperty("k", "v")
        ]
    );
    // Re-encoded: expiry and alias, then the forwardable block as it is.
    assert_eq!(
        encode5(&Packet::Publish(p)),
        [
            0x30, 21, 0, 1, b't', 17, 0x02, 0, 0, 0, 9, 0x23, 0, 2, 0x01, 1, 0x26, 0, 1, b'k', 0,
            1, b'v'
        ]
    );
}

#[test]
fn user_properties_keep_their_order_and_repeats() {
    let p = props([
        Property::UserProperty("b", "1"),
        Property::Utf8(PropertyId::ReasonString, "r"),
        Property::UserProperty("a", "2"),
        Property::UserProperty("b", "3"),
    ]);
    assert_eq!(
        p.user_properties().collect::<Vec<_>>(),
        [("b", "1"), ("a", "2"), ("b", "3")]
    );
    assert_eq!(
        p.forwardable()[..],
        [
            0x26, 0, 1, b'b', 0, 1, b'1', 0x26, 0, 1, b'a', 0, 1, b'2', 0x26, 0, 1, b'b', 0, 1,
            b'3'
        ]
    );
}

#[test]
fn malformed_inputs_are_typed_errors() {
    use DecodeError as E;
    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        (
            "unknown property id",
            vec![0xe0, 3, 0, 1, 0x7f],
            E::InvalidPropertyId(0x7f),
        ),
        (
            "property id with a continuation bit",
            vec![0xe0, 4, 0, 2, 0x80, 0x01],
            E::InvalidPropertyId(0x80),
        ),
        (
            "property id 0",
            vec![0xe0, 3, 0, 1, 0x00],
            E::InvalidPropertyId(0),
        ),
        (
            "topic alias in DISCONNECT",
            vec![0xe0, 5, 0, 3, 0x23, 0, 1],
            E::PropertyNotAllowed {
                id: 0x23,
                packet_type: 14,
            },
        ),
        (
            "will delay in CONNECT's own properties",
            vec![
                0x10, 18, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 0, 5, 0x18, 0, 0, 0, 1, 0, 0,
            ],
            E::PropertyNotAllowed {
                id: 0x18,
                packet_type: 1,
            },
        ),
        (
            "session expiry twice",
            vec![0xe0, 12, 0, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2],
            E::DuplicateProperty(0x11),
        ),
        (
            "reason string twice in PUBACK",
            vec![0x40, 12, 0, 1, 0x80, 8, 0x1f, 0, 1, b'a', 0x1f, 0, 1, b'b'],
            E::DuplicateProperty(0x1f),
        ),
        (
            "subscription identifier twice in SUBSCRIBE",
            vec![0x82, 11, 0, 1, 4, 0x0b, 1, 0x0b, 2, 0, 1, b'a', 0],
            E::DuplicateProperty(0x0b),
        ),
        (
            "topic alias twice in PUBLISH",
            vec![0x30, 10, 0, 1, b't', 6, 0x23, 0, 1, 0x23, 0, 2],
            E::DuplicateProperty(0x23),
        ),
        (
            "property length past the packet",
            vec![0xe0, 3, 0, 5, 0x11],
            E::UnexpectedEnd,
        ),
        (
            "four-byte value cut short",
            vec![0xe0, 5, 0, 3, 0x11, 0, 0],
            E::UnexpectedEnd,
        ),
        (
            "string past the property block",
            vec![0xe0, 5, 0, 3, 0x1f, 0, 5],
            E::UnexpectedEnd,
        ),
        (
            "user property value missing",
            vec![0xe0, 7, 0, 5, 0x26, 0, 1, b'k', 0],
            E::UnexpectedEnd,
        ),
        (
            "property length over four bytes",
            vec![0xe0, 6, 0, 0x80, 0x80, 0x80, 0x80, 0x01],
            E::MalformedVarInt,
        ),
        (
            "property length not minimal",
            vec![0xe0, 3, 0, 0x80, 0x00],
            E::MalformedVarInt,
        ),
        (
            "subscription identifier over four bytes",
            vec![0x30, 10, 0, 1, b't', 6, 0x0b, 0xff, 0xff, 0xff, 0xff, 0x7f],
            E::MalformedVarInt,
        ),
        (
            "subscription identifier 0",
            vec![0x30, 6, 0, 1, b't', 2, 0x0b, 0],
            E::InvalidPropertyValue(0x0b),
        ),
        (
            "topic alias 0",
            vec![0x30, 7, 0, 1, b't', 3, 0x23, 0, 0],
            E::InvalidPropertyValue(0x23),
        ),
        (
            "payload format 2",
            vec![0x30, 6, 0, 1, b't', 2, 0x01, 2],
            E::InvalidPropertyValue(0x01),
        ),
        (
            "receive maximum 0",
            vec![0x20, 6, 0, 0, 3, 0x21, 0, 0],
            E::InvalidPropertyValue(0x21),
        ),
        (
            "maximum packet size 0",
            vec![0x20, 8, 0, 0, 5, 0x27, 0, 0, 0, 0],
            E::InvalidPropertyValue(0x27),
        ),
        (
            "maximum qos 2",
            vec![0x20, 5, 0, 0, 2, 0x24, 2],
            E::InvalidPropertyValue(0x24),
        ),
        (
            "authentication data without method",
            vec![0xf0, 6, 0x18, 4, 0x16, 0, 1, 9],
            E::AuthDataWithoutMethod,
        ),
        (
            "user property not UTF-8",
            vec![0xe0, 9, 0, 7, 0x26, 0, 1, 0xff, 0, 1, b'v'],
            E::InvalidUtf8,
        ),
        (
            "content type with U+0000",
            vec![0x30, 8, 0, 1, b't', 4, 0x03, 0, 1, 0],
            E::NullCharacter,
        ),
        (
            "puback reason 0x05",
            vec![0x40, 3, 0, 1, 0x05],
            E::InvalidReasonCode {
                packet_type: 4,
                code: 5,
            },
        ),
        (
            "pubrel reason 0x10",
            vec![0x62, 3, 0, 1, 0x10],
            E::InvalidReasonCode {
                packet_type: 6,
                code: 0x10,
            },
        ),
        (
            "disconnect reason 0x84",
            vec![0xe0, 1, 0x84],
            E::InvalidReasonCode {
                packet_type: 14,
                code: 0x84,
            },
        ),
        (
            "suback reason 0x03",
            vec![0x90, 4, 0, 1, 0, 3],
            E::InvalidReasonCode {
                packet_type: 9,
                code: 3,
            },
        ),
        (
            "auth reason 0x80",
            vec![0xf0, 1, 0x80],
            E::InvalidReasonCode {
                packet_type: 15,
                code: 0x80,
            },
        ),
        (
            "connack reason 0x04",
            vec![0x20, 3, 0, 4, 0],
            E::InvalidReasonCode {
                packet_type: 2,
                code: 4,
            },
        ),
        (
            "suback without reason codes",
            vec![0x90, 3, 0, 1, 0],
            E::UnexpectedEnd,
        ),
        (
            "subscription options bit 6",
            vec![0x82, 7, 0, 1, 0, 0, 1, b'a', 0x40],
            E::ReservedSubscriptionOptions(0x40),
        ),
        (
            "subscription options bit 7",
            vec![0x82, 7, 0, 1, 0, 0, 1, b'a', 0x81],
            E::ReservedSubscriptionOptions(0x81),
        ),
        (
            "subscription options qos 3",
            vec![0x82, 7, 0, 1, 0, 0, 1, b'a', 0x03],
            E::ReservedSubscriptionOptions(0x03),
        ),
        (
            "retain handling 3",
            vec![0x82, 7, 0, 1, 0, 0, 1, b'a', 0x30],
            E::InvalidRetainHandling(0x30),
        ),
        (
            "subscribe without filters",
            vec![0x82, 3, 0, 1, 0],
            E::NoTopicFilters,
        ),
        (
            "empty topic without alias",
            vec![0x30, 3, 0, 0, 0],
            E::EmptyTopicWithoutAlias,
        ),
        (
            "publish qos 3",
            vec![0x36, 6, 0, 1, b't', 0, 1, 0],
            E::InvalidQos,
        ),
        (
            "wildcard in topic",
            vec![0x30, 4, 0, 1, b'#', 0],
            E::WildcardInTopicName,
        ),
        (
            "trailing bytes after DISCONNECT's properties",
            vec![0xe0, 3, 0, 0, 0xff],
            E::TrailingBytes,
        ),
        (
            "connack reserved flags",
            vec![0x20, 3, 2, 0, 0],
            E::InvalidConnAckFlags(2),
        ),
        (
            "auth flags",
            vec![0xf1, 0],
            E::InvalidFlags {
                packet_type: 15,
                flags: 1,
            },
        ),
        (
            "connect level 4 on the v5 path",
            vec![0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 0, 0, 0],
            E::UnsupportedProtocolLevel(4),
        ),
        (
            "connect reserved flag",
            vec![0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 3, 0, 0, 0, 0, 0],
            E::InvalidConnectFlags(3),
        ),
        (
            "will property not allowed in a will",
            vec![
                0x10, 22, 0, 4, b'M', b'Q', b'T', b'T', 5, 0b110, 0, 0, 0, 0, 0, 3, 0x23, 0, 1, 0,
                1, b'w', 0, 0,
            ],
            E::PropertyNotAllowed {
                id: 0x23,
                packet_type: 1,
            },
        ),
    ];
    for (name, wire, want) in cases {
        assert_eq!(decode5(&wire), Err(want), "{name}");
    }
}

#[test]
fn errors_say_malformed_packet_or_protocol_error() {
    use DecodeError as E;
    for (e, kind, code) in [
        (E::InvalidPropertyId(0x7f), ErrorKind::MalformedPacket, 0x81),
        (
            E::PropertyNotAllowed {
                id: 0x23,
                packet_type: 1,
            },
            ErrorKind::MalformedPacket,
            0x81,
        ),
        (E::MalformedVarInt, ErrorKind::MalformedPacket, 0x81),
        (E::UnexpectedEnd, ErrorKind::MalformedPacket, 0x81),
        (
            E::ReservedSubscriptionOptions(0x40),
            ErrorKind::MalformedPacket,
            0x81,
        ),
        (E::DuplicateProperty(0x11), ErrorKind::ProtocolError, 0x82),
        (
            E::InvalidPropertyValue(0x23),
            ErrorKind::ProtocolError,
            0x82,
        ),
        (E::AuthDataWithoutMethod, ErrorKind::ProtocolError, 0x82),
        (
            E::InvalidRetainHandling(0x30),
            ErrorKind::ProtocolError,
            0x82,
        ),
        (E::EmptyTopicWithoutAlias, ErrorKind::ProtocolError, 0x82),
        (E::NoTopicFilters, ErrorKind::ProtocolError, 0x82),
        (E::InvalidQos, ErrorKind::MalformedPacket, 0x81),
        (
            E::InvalidReasonCode {
                packet_type: 4,
                code: 5,
            },
            ErrorKind::MalformedPacket,
            0x81,
        ),
        (
            E::PacketTooLarge { size: 10, max: 5 },
            ErrorKind::PacketTooLarge,
            0x95,
        ),
        (
            E::UnsupportedProtocolLevel(6),
            ErrorKind::UnsupportedProtocolVersion,
            0x84,
        ),
    ] {
        assert_eq!(e.kind(), kind, "{e}");
        assert_eq!(u8::from(e.reason_code()), code, "{e}");
    }
}

#[test]
fn reason_codes_have_their_values_and_names() {
    assert_eq!(ReasonCode::ALL.len(), 43);
    for &rc in ReasonCode::ALL {
        assert_eq!(ReasonCode::from_u8(rc as u8), Some(rc));
        assert!(!rc.name().is_empty());
    }
    let defined = (0..=255u8)
        .filter(|&b| ReasonCode::from_u8(b).is_some())
        .count();
    assert_eq!(defined, 43);
    assert_eq!(ReasonCode::from_u8(0x03), None);
    assert_eq!(ReasonCode::TopicAliasInvalid as u8, 0x94);
    assert_eq!(ReasonCode::ServerMoved.name(), "Server moved");
    assert!(ReasonCode::GrantedQoS2.allowed_in(9) && !ReasonCode::GrantedQoS2.allowed_in(4));
    assert!(
        ReasonCode::ReAuthenticate.allowed_in(15) && !ReasonCode::ReAuthenticate.allowed_in(14)
    );
}

#[test]
fn property_identifiers_have_their_types() {
    use PropertyType as T;
    assert_eq!(PropertyId::ALL.len(), 27);
    for &id in PropertyId::ALL {
        assert_eq!(PropertyId::from_u8(id as u8), Some(id));
    }
    for (id, t) in [
        (0x01, T::Byte),
        (0x02, T::FourByteInt),
        (0x03, T::Utf8),
        (0x09, T::Binary),
        (0x0b, T::VarInt),
        (0x13, T::TwoByteInt),
        (0x26, T::Utf8Pair),
        (0x2a, T::Byte),
    ] {
        assert_eq!(
            PropertyId::from_u8(id).map(PropertyId::property_type),
            Some(t)
        );
    }
    assert_eq!(PropertyId::from_u8(0x04), None);
    assert_eq!(PropertyId::from_u8(0x2b), None);
}

#[test]
fn encode_refuses_what_a_decoder_would() {
    let bad_reason = Packet::PubAck(Ack {
        reason: ReasonCode::GrantedQoS1,
        ..Ack::success(pid(1))
    });
    assert_eq!(
        bad_reason.encode(&mut BytesMut::new()),
        Err(EncodeError::ReasonCodeNotAllowed(1))
    );
    let bad_prop = Packet::Disconnect(ReasonAndProperties {
        reason: ReasonCode::Success,
        properties: props([Property::TwoByteInt(PropertyId::TopicAlias, 1)]),
    });
    assert_eq!(
        bad_prop.encoded_len(),
        Err(EncodeError::PropertyNotAllowed(0x23))
    );
    let two_ids = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: props([
            Property::VarInt(PropertyId::SubscriptionIdentifier, 1),
            Property::VarInt(PropertyId::SubscriptionIdentifier, 2),
        ]),
        filters: vec![Subscription {
            filter: s("a"),
            options: SubscriptionOptions::default(),
        }],
    });
    assert!(matches!(
        two_ids.encode(&mut BytesMut::new()),
        Err(EncodeError::InvalidProperties(
            DecodeError::DuplicateProperty(0x0b)
        ))
    ));
    let no_topic = Packet::Publish(Publish::new(
        QoS::AtMostOnce,
        None,
        ByteStr::default(),
        Bytes::new(),
    ));
    assert_eq!(
        no_topic.encoded_len(),
        Err(EncodeError::EmptyTopicWithoutAlias)
    );
    assert_eq!(
        Properties::build([Property::Byte(PropertyId::ReceiveMaximum, 1)]),
        Err(EncodeError::InvalidProperties(
            DecodeError::InvalidPropertyValue(0x21)
        ))
    );
    assert_eq!(
        Properties::build([Property::TwoByteInt(PropertyId::TopicAlias, 0)]),
        Err(EncodeError::InvalidProperties(
            DecodeError::InvalidPropertyValue(0x23)
        ))
    );
    assert_eq!(
        Properties::build([Property::VarInt(
            PropertyId::SubscriptionIdentifier,
            MAX_VAR_INT + 1
        )]),
        Err(EncodeError::InvalidProperties(
            DecodeError::InvalidPropertyValue(0x0b)
        ))
    );
    let empty_sub = Packet::SubAck(SubAck {
        packet_id: pid(1),
        properties: Properties::new(),
        reasons: vec![],
    });
    assert_eq!(empty_sub.encoded_len(), Err(EncodeError::EmptyList));
}

#[test]
fn publish_header_then_payload_is_the_whole_packet() {
    let forward = props([Property::UserProperty("k", "v")]).forwardable();
    for payload_len in [0usize, 100, 200, 20_000] {
        let mut p = Publish::new(
            QoS::ExactlyOnce,
            Some(pid(3)),
            s("a/b"),
            Bytes::from(vec![7u8; payload_len]),
        );
        p.properties = PublishProperties {
            forward: forward.clone(),
            message_expiry_interval: Some(1),
            topic_alias: NonZeroU16::new(4),
            subscription_identifiers: vec![NonZeroU32::new(MAX_VAR_INT).unwrap()].into(),
        };
        let mut head = BytesMut::new();
        p.encode_header(&mut head).unwrap();
        head.extend_from_slice(&p.payload);
        let whole = encode5(&Packet::Publish(p.clone()));
        assert_eq!(&head[..], &whole[..], "payload of {payload_len} bytes");
        assert_eq!(decode5(&whole), Ok(Some(Packet::Publish(p))));
    }
}

#[test]
fn a_value_of_another_type_is_refused_when_building() {
    for &id in PropertyId::ALL {
        let candidates = [
            Property::Byte(id, 1),
            Property::TwoByteInt(id, 1),
            Property::FourByteInt(id, 1),
            Property::VarInt(id, 1),
            Property::Utf8(id, "x"),
            Property::Binary(id, b"x"),
        ];
        for p in candidates {
            let same_type = match p {
                Property::Byte(..) => id.property_type() == PropertyType::Byte,
                Property::TwoByteInt(..) => id.property_type() == PropertyType::TwoByteInt,
                Property::FourByteInt(..) => id.property_type() == PropertyType::FourByteInt,
                Property::VarInt(..) => id.property_type() == PropertyType::VarInt,
                Property::Utf8(..) => id.property_type() == PropertyType::Utf8,
                _ => id.property_type() == PropertyType::Binary,
            };
            let built = Properties::build([p]);
            if same_type {
                // Authentication Data alone is the one value rule a single property breaks.
                if id != PropertyId::AuthenticationData {
                    assert!(built.is_ok(), "{p:?}");
                }
            } else {
                assert_eq!(
                    built,
                    Err(EncodeError::InvalidProperties(
                        DecodeError::InvalidPropertyValue(id as u8)
                    )),
                    "{p:?}"
                );
            }
        }
    }
}

#[test]
fn variable_byte_integer_limits() {
    use crate::properties::{put_var_int, read_var_int, var_int_len};
    for (v, len) in [
        (0u32, 1usize),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (2_097_151, 3),
        (2_097_152, 4),
        (MAX_VAR_INT, 4),
    ] {
        let mut buf = BytesMut::new();
        put_var_int(&mut buf, v as usize);
        assert_eq!(buf.len(), len, "{v}");
        assert_eq!(var_int_len(v as usize), len, "{v}");
        let mut view: &[u8] = &buf;
        assert_eq!(read_var_int(&mut view), Ok(v));
        assert!(view.is_empty());
    }
    assert_eq!(MAX_VAR_INT, 268_435_455);
    let mut five: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(read_var_int(&mut five), Err(DecodeError::MalformedVarInt));
    let mut cut: &[u8] = &[0xff, 0xff];
    assert_eq!(read_var_int(&mut cut), Err(DecodeError::UnexpectedEnd));
}

#[test]
fn connection_decoder_follows_the_protocol_level_of_connect() {
    let v5_connect = encode5(&Packet::Connect(Box::new(Connect {
        client_id: s("a"),
        ..Connect::default()
    })));
    // After a v5 CONNECT, a DISCONNECT with a reason code is MQTT 5.
    let mut rx = BytesMut::from(&v5_connect[..]);
    rx.extend_from_slice(&[0xe0, 1, 0x04]);
    let mut conn = ConnectionDecoder::new(1024);
    assert_eq!(conn.version(), None);
    assert!(matches!(
        conn.decode(&mut rx),
        Ok(Some(AnyPacket::V5(Packet::Connect(_))))
    ));
    assert_eq!(conn.version(), Some(ProtocolVersion::V5));
    assert!(matches!(
        conn.decode(&mut rx),
        Ok(Some(AnyPacket::V5(Packet::Disconnect(_))))
    ));

    // After a 3.1.1 CONNECT the same bytes are a malformed 3.1.1 DISCONNECT.
    let mut rx = BytesMut::from(
        &[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 0, 0, 1, b'a',
        ][..],
    );
    rx.extend_from_slice(&[0xe0, 1, 0x04]);
    let mut conn = ConnectionDecoder::new(1024);
    assert!(matches!(
        conn.decode(&mut rx),
        Ok(Some(AnyPacket::V3(crate::Packet::Connect(_))))
    ));
    assert_eq!(conn.version(), Some(ProtocolVersion::V3));
    assert_eq!(conn.decode(&mut rx), Err(DecodeError::TrailingBytes));

    // Half a CONNECT: nothing decided, nothing consumed.
    let mut rx = BytesMut::from(&v5_connect[..5]);
    let mut conn = ConnectionDecoder::new(1024);
    assert_eq!(conn.decode(&mut rx), Ok(None));
    assert_eq!((conn.version(), rx.len()), (None, 5));
    // The 3.1.1 decoder keeps refusing level 5, so a 3.1.1-only server answers as before.
    assert_eq!(
        crate::Decoder::new(1024).decode(&mut BytesMut::from(&v5_connect[..])),
        Err(DecodeError::UnsupportedProtocolLevel(5))
    );
}

#[test]
fn v5_decoder_enforces_the_maximum_packet_size_from_the_header() {
    let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0x03][..]);
    assert_eq!(
        Decoder::new(1024).decode_v5(&mut buf),
        Err(DecodeError::PacketTooLarge {
            size: 65_539,
            max: 1024
        })
    );
}

// ---- property tests ----

/// One generated property: which (an index into the context's allowed identifiers) and
/// raw material for its value.
type RawProp = (usize, u32, String, String, Vec<u8>);

fn arb_raw_props() -> impl Strategy<Value = Vec<RawProp>> {
    proptest::collection::vec(
        (
            any::<usize>(),
            any::<u32>(),
            "[a-zé/ ]{0,8}",
            "[a-z0-9]{0,8}",
            proptest::collection::vec(any::<u8>(), 0..8),
        ),
        0..7,
    )
}

/// A valid value for `id` made from the raw material.
fn prop_of<'a>(id: PropertyId, n: u32, a: &'a str, b: &'a str, bin: &'a [u8]) -> Property<'a> {
    match id.property_type() {
        PropertyType::Byte => Property::Byte(id, (n % 2) as u8),
        PropertyType::TwoByteInt => Property::TwoByteInt(id, (n as u16).max(1)),
        PropertyType::FourByteInt => Property::FourByteInt(id, n.max(1)),
        PropertyType::VarInt => Property::VarInt(id, n % MAX_VAR_INT + 1),
        PropertyType::Utf8 => Property::Utf8(id, a),
        PropertyType::Utf8Pair => Property::UserProperty(a, b),
        PropertyType::Binary => Property::Binary(id, bin),
    }
}

/// The properties `raw` describes for `ctx`, without the repeats and the lone
/// Authentication Data the standard forbids.
fn valid_props(ctx: PropertyContext, raw: &[RawProp], only: fn(PropertyId) -> bool) -> Properties {
    let allowed: Vec<PropertyId> = PropertyId::ALL
        .iter()
        .copied()
        .filter(|id| id.allowed_in(ctx) && only(*id))
        .collect();
    let mut seen = Vec::new();
    let mut list = Vec::new();
    for (i, n, a, b, bin) in raw {
        let id = allowed[i % allowed.len()];
        if seen.contains(&id) && !id.may_repeat(ctx) {
            continue;
        }
        seen.push(id);
        list.push(prop_of(id, *n, a, b, bin));
    }
    if !seen.contains(&PropertyId::AuthenticationMethod) {
        list.retain(|p| p.id() != PropertyId::AuthenticationData);
    }
    props(list)
}

fn arb_props(ctx: PropertyContext) -> impl Strategy<Value = Properties> {
    arb_raw_props().prop_map(move |raw| valid_props(ctx, &raw, |_| true))
}

fn arb_reason(packet_type: u8) -> impl Strategy<Value = ReasonCode> {
    let allowed: Vec<ReasonCode> = ReasonCode::ALL
        .iter()
        .copied()
        .filter(|r| r.allowed_in(packet_type))
        .collect();
    proptest::sample::select(allowed)
}

fn arb_publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        arb_raw_props(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(1u16..),
        proptest::collection::vec(1u32..=MAX_VAR_INT, 0..3),
    )
        .prop_map(|(raw, expiry, alias, ids)| PublishProperties {
            forward: valid_props(PropertyContext::Publish, &raw, PropertyId::is_forwardable)
                .forwardable(),
            message_expiry_interval: expiry,
            topic_alias: alias.and_then(NonZeroU16::new),
            subscription_identifiers: ids.into_iter().filter_map(NonZeroU32::new).collect(),
        })
}

fn arb_ack(packet_type: u8, ctx: PropertyContext) -> impl Strategy<Value = Ack> {
    (arb_pid(), arb_reason(packet_type), arb_props(ctx)).prop_map(
        |(packet_id, reason, properties)| Ack {
            packet_id,
            reason,
            properties,
        },
    )
}

fn arb_v5_packet() -> impl Strategy<Value = Packet> {
    use PropertyContext as C;
    let will = (
        arb_topic(),
        arb_bytes(),
        arb_qos(),
        any::<bool>(),
        arb_props(C::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    let connect = (
        any::<bool>(),
        any::<u16>(),
        arb_props(C::Connect),
        arb_str(),
        proptest::option::of(will),
        proptest::option::of(arb_str()),
        proptest::option::of(arb_bytes()),
    )
        .prop_map(
            |(clean_start, keep_alive, properties, client_id, will, username, password)| {
                Packet::Connect(Box::new(Connect {
                    clean_start,
                    keep_alive,
                    properties,
                    client_id,
                    will,
                    username,
                    password,
                }))
            },
        );
    let publish = (
        any::<bool>(),
        arb_qos(),
        any::<bool>(),
        prop_oneof![arb_topic(), Just(ByteStr::default())],
        arb_pid(),
        arb_publish_properties(),
        arb_bytes(),
    )
        .prop_map(|(dup, qos, retain, topic, id, mut properties, payload)| {
            if topic.is_empty() && properties.topic_alias.is_none() {
                properties.topic_alias = NonZeroU16::new(1);
            }
            Packet::Publish(Publish {
                dup,
                qos,
                retain,
                topic,
                packet_id: (qos != QoS::AtMostOnce).then_some(id),
                properties,
                payload,
            })
        });
    let options =
        (arb_qos(), any::<bool>(), any::<bool>(), 0u8..3).prop_map(|(qos, nl, rap, rh)| {
            SubscriptionOptions {
                qos,
                no_local: nl,
                retain_as_published: rap,
                retain_handling: match rh {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendAtNewSubscription,
                    _ => RetainHandling::DoNotSend,
                },
            }
        });
    let subscribe = (
        arb_pid(),
        arb_props(C::Subscribe),
        proptest::collection::vec(
            (arb_topic(), options).prop_map(|(filter, options)| Subscription { filter, options }),
            1..4,
        ),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        });
    prop_oneof![
        connect,
        (any::<bool>(), arb_reason(2), arb_props(C::ConnAck)).prop_map(
            |(session_present, reason, properties)| {
                Packet::ConnAck(ConnAck {
                    session_present,
                    reason,
                    properties,
                })
            }
        ),
        publish,
        arb_ack(4, C::PubAck).prop_map(Packet::PubAck),
        arb_ack(5, C::PubRec).prop_map(Packet::PubRec),
        arb_ack(6, C::PubRel).prop_map(Packet::PubRel),
        arb_ack(7, C::PubComp).prop_map(Packet::PubComp),
        subscribe,
        (
            arb_pid(),
            arb_props(C::SubAck),
            proptest::collection::vec(arb_reason(9), 1..4)
        )
            .prop_map(|(packet_id, properties, reasons)| Packet::SubAck(SubAck {
                packet_id,
                properties,
                reasons
            })),
        (
            arb_pid(),
            arb_props(C::Unsubscribe),
            proptest::collection::vec(arb_topic(), 1..4)
        )
            .prop_map(|(packet_id, properties, filters)| Packet::Unsubscribe(
                Unsubscribe {
                    packet_id,
                    properties,
                    filters
                }
            )),
        (
            arb_pid(),
            arb_props(C::UnsubAck),
            proptest::collection::vec(arb_reason(11), 1..4)
        )
            .prop_map(
                |(packet_id, properties, reasons)| Packet::UnsubAck(UnsubAck {
                    packet_id,
                    properties,
                    reasons
                })
            ),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        (arb_reason(14), arb_props(C::Disconnect)).prop_map(|(reason, properties)| {
            Packet::Disconnect(ReasonAndProperties { reason, properties })
        }),
        (arb_reason(15), arb_props(C::Auth)).prop_map(|(reason, properties)| Packet::Auth(
            ReasonAndProperties { reason, properties }
        )),
    ]
}

/// Feeds `data` to the v5 decoder in chunks ending at `splits`; never panics.
fn feed5(data: &[u8], splits: &[usize]) -> Vec<Packet> {
    feed_chunks_with(data, splits, Decoder::decode_v5)
}

/// A DISCONNECT carrying `block` as its property block (with a correct length).
fn disconnect_with(block: &[u8]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.extend_from_slice(&[0]);
    crate::properties::put_var_int(&mut body, block.len());
    body.extend_from_slice(block);
    let mut wire = BytesMut::from(&[0xe0][..]);
    crate::properties::put_var_int(&mut wire, body.len());
    wire.extend_from_slice(&body);
    wire.to_vec()
}

/// The wire encoding of one property, unchecked.
fn wire_of(p: Property<'_>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    p.put(&mut buf);
    assert_eq!(buf.len(), p.encoded_len());
    buf.to_vec()
}

/// The wire encoding of one property with a valid value, the same every time (for injection).
fn one_prop(id: PropertyId) -> Vec<u8> {
    wire_of(prop_of(id, 7, "x", "y", &[1]))
}

/// A packet value of at most 128 bytes is moved with inline vector moves; a larger one
/// costs a call to `memcpy` at each of the several moves between the decoder, the broker
/// and the encoder (measured on the MQTT 5 fan-in benchmark).
#[test]
fn a_packet_value_stays_within_128_bytes() {
    assert!(core::mem::size_of::<Packet>() <= 128);
    assert!(core::mem::size_of::<Result<Option<Packet>, DecodeError>>() <= 128);
}

proptest! {
    #[test]
    fn round_trip(p in arb_v5_packet()) {
        let wire = encode5(&p);
        prop_assert_eq!(decode5(&wire), Ok(Some(p.clone())));
        let Ok(Some(again)) = decode5(&wire) else { unreachable!() };
        prop_assert_eq!(encode5(&again), wire.clone());
        crate::fuzzing::decode_stream_invariants_v5(&wire);
    }

    #[test]
    fn round_trip_split_anywhere(ps in proptest::collection::vec(arb_v5_packet(), 1..5), split in any::<prop::sample::Index>()) {
        let mut wire = Vec::new();
        for p in &ps { wire.extend(encode5(p)); }
        let at = split.index(wire.len() + 1);
        prop_assert_eq!(feed5(&wire, &[at]), ps);
    }

    /// The decoder's shortcuts (a PUBLISH decoded straight, a small packet parsed in place)
    /// give what the general path gives every frame: the same packet or the same error.
    #[test]
    fn the_shortcuts_agree_with_the_general_path(
        packet_type in 0u8..16,
        flags in prop_oneof![Just(0u8), Just(2u8), 0u8..16],
        body in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(2u8), Just(0x10u8), Just(0x80u8), Just(0x87u8), any::<u8>()], 0..8),
    ) {
        let byte1 = packet_type << 4 | flags;
        let mut wire = vec![byte1, u8::try_from(body.len()).unwrap()];
        wire.extend(&body);
        let general = decode_body(byte1, Bytes::from(body.clone()));
        let mut buf = BytesMut::from(&wire[..]);
        match Decoder::new(1 << 16).decode_v5(&mut buf) {
            Ok(got) => {
                prop_assert_eq!(Ok(got.expect("a complete frame")), general);
                prop_assert!(buf.is_empty());
            }
            Err(error) => prop_assert_eq!(Err(error), general),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), splits in proptest::collection::vec(0usize..300, 0..4)) {
        let _ = feed5(&data, &splits);
        crate::fuzzing::decode_stream_invariants_v5(&data);
    }

    #[test]
    fn mutated_valid_packets_never_panic(p in arb_v5_packet(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut wire = encode5(&p);
        let i = at.index(wire.len());
        wire[i] = byte;
        crate::fuzzing::decode_stream_invariants_v5(&wire);
    }

    #[test]
    fn a_connection_decodes_as_its_connect_says(
        v5s in proptest::collection::vec(arb_v5_packet(), 0..5),
        v3s in proptest::collection::vec(crate::tests::arb_packet(), 0..5),
        client_id in arb_str(),
    ) {
        // MQTT 5: a v5 CONNECT, then v5 packets.
        let connect = Packet::Connect(Box::new(Connect { client_id: client_id.clone(), ..Connect::default() }));
        let mut wire = encode5(&connect);
        for p in &v5s { wire.extend(encode5(p)); }
        let mut conn = ConnectionDecoder::new(1 << 16);
        let mut buf = BytesMut::from(&wire[..]);
        let mut got = Vec::new();
        while let Ok(Some(p)) = conn.decode(&mut buf) { got.push(p); }
        let want: Vec<AnyPacket> = std::iter::once(connect).chain(v5s).map(AnyPacket::V5).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(conn.version(), Some(ProtocolVersion::V5));

        // MQTT 3.1.1: a 3.1.1 CONNECT, then 3.1.1 packets.
        let connect = crate::Packet::Connect(Box::new(crate::Connect { client_id, ..crate::Connect::default() }));
        let mut wire = crate::tests::encode(&connect);
        for p in &v3s { wire.extend(crate::tests::encode(p)); }
        let mut conn = ConnectionDecoder::new(1 << 16);
        let mut buf = BytesMut::from(&wire[..]);
        let mut got = Vec::new();
        while let Ok(Some(p)) = conn.decode(&mut buf) { got.push(p); }
        let want: Vec<AnyPacket> = std::iter::once(connect).chain(v3s).map(AnyPacket::V3).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(conn.version(), Some(ProtocolVersion::V3));
    }

    #[test]
    fn unknown_property_ids_are_refused(p in arb_props(PropertyContext::Disconnect), id in any::<u8>(), at in any::<prop::sample::Index>()) {
        prop_assume!(PropertyId::from_u8(id).is_none());
        // Insert the unknown id (with a byte of value) at a property boundary.
        let list: Vec<Vec<u8>> = p.iter().map(wire_of).collect();
        let k = at.index(list.len() + 1);
        let mut block = Vec::new();
        for (j, q) in list.iter().enumerate() {
            if j == k { block.extend([id, 0]); }
            block.extend(q);
        }
        if k == list.len() { block.extend([id, 0]); }
        prop_assert_eq!(decode5(&disconnect_with(&block)), Err(DecodeError::InvalidPropertyId(id)));
    }

    #[test]
    fn properties_of_another_packet_are_refused(p in arb_props(PropertyContext::Disconnect), pick in any::<prop::sample::Index>()) {
        let foreign: Vec<PropertyId> = PropertyId::ALL.iter().copied().filter(|id| !id.allowed_in(PropertyContext::Disconnect)).collect();
        let id = foreign[pick.index(foreign.len())];
        let mut block = p.as_bytes().to_vec();
        block.extend(one_prop(id));
        prop_assert_eq!(
            decode5(&disconnect_with(&block)),
            Err(DecodeError::PropertyNotAllowed { id: id as u8, packet_type: 14 })
        );
    }

    #[test]
    fn duplicates_are_refused_except_user_property(ctx_i in 0usize..14, pick in any::<prop::sample::Index>()) {
        use PropertyContext as C;
        let ctx = [C::Connect, C::Will, C::ConnAck, C::Publish, C::PubAck, C::PubRec, C::PubRel, C::PubComp, C::Subscribe, C::SubAck, C::Unsubscribe, C::UnsubAck, C::Disconnect, C::Auth][ctx_i];
        let allowed: Vec<PropertyId> = PropertyId::ALL.iter().copied().filter(|id| id.allowed_in(ctx)).collect();
        let id = allowed[pick.index(allowed.len())];
        let mut block = one_prop(PropertyId::AuthenticationMethod);
        if !PropertyId::AuthenticationMethod.allowed_in(ctx) || id == PropertyId::AuthenticationMethod {
            block.clear();
        }
        block.extend(one_prop(id));
        block.extend(one_prop(id));
        let got = Properties::from_wire(Bytes::from(block), Some(ctx)).map(|_| ());
        if id.may_repeat(ctx) {
            prop_assert_eq!(got, Ok(()));
        } else {
            prop_assert_eq!(got, Err(DecodeError::DuplicateProperty(id as u8)));
        }
    }

    #[test]
    fn truncated_properties_are_refused(p in arb_props(PropertyContext::ConnAck), cut in any::<prop::sample::Index>()) {
        prop_assume!(!p.is_empty());
        // Cut the last property short: the block's length is right, its contents are not.
        let last = p.iter().last().map(|q| q.encoded_len()).unwrap_or(0);
        let full = p.as_bytes();
        let drop = 1 + cut.index(last - 1);
        let block = &full[..full.len() - drop];
        prop_assert!(Properties::from_wire(Bytes::copy_from_slice(block), Some(PropertyContext::ConnAck)).is_err());
        // And a block length longer than what follows.
        let mut wire = disconnect_with(&[]);
        wire[3] = 1;
        prop_assert_eq!(decode5(&wire), Err(DecodeError::UnexpectedEnd));
    }

    #[test]
    fn overlong_variable_byte_integers_are_refused(extra in 1usize..4, low in 0u8..0x80) {
        // A property length or subscription identifier of more than four bytes, or padded
        // with a continuation and a zero.
        let mut vbi = vec![0xffu8; 3 + extra];
        vbi.push(low | 1);
        let mut wire = vec![0x30, 0, 0, 1, b't', 1 + vbi.len() as u8, 0x0b];
        wire.extend(&vbi);
        wire[1] = (wire.len() - 2) as u8;
        prop_assert_eq!(decode5(&wire), Err(DecodeError::MalformedVarInt));
        let padded = [0x30, 6, 0, 1, b't', 0x80 | low, 0x00, 0];
        prop_assert_eq!(decode5(&padded), Err(DecodeError::MalformedVarInt));
    }

    #[test]
    fn wrong_values_for_a_type_are_refused(byte in 2u8.., pick in any::<prop::sample::Index>()) {
        // Every byte property is 0 or 1: anything else is a Protocol Error.
        let bytes: Vec<PropertyId> = PropertyId::ALL.iter().copied().filter(|id| id.property_type() == PropertyType::Byte).collect();
        let id = bytes[pick.index(bytes.len())];
        prop_assert_eq!(
            Properties::from_wire(Bytes::copy_from_slice(&[id as u8, byte]), None),
            Err(DecodeError::InvalidPropertyValue(id as u8))
        );
    }
}

proptest! {
    /// A 3.1.1 PUBLISH written straight in its MQTT 5 form without properties is the same
    /// bytes as the MQTT 5 PUBLISH built from it, whole and split into header and payload,
    /// and decodes back to it.
    #[test]
    fn a_publish_written_as_v5_directly_is_the_built_one(
        dup in any::<bool>(),
        qos in arb_qos(),
        retain in any::<bool>(),
        topic in arb_topic(),
        id in arb_pid(),
        payload in arb_bytes(),
    ) {
        let packet_id = (qos != QoS::AtMostOnce).then_some(id);
        let mut plain = crate::Publish::new(qos, packet_id, topic.clone(), payload.clone());
        plain.dup = dup;
        plain.retain = retain;
        let mut built = Publish::new(qos, packet_id, topic, payload);
        built.dup = dup;
        built.retain = retain;
        let built = Packet::Publish(built);
        let expected = encode5(&built);
        let mut direct = BytesMut::new();
        plain.encode_v5(&mut direct).unwrap();
        prop_assert_eq!(&direct[..], &expected[..]);
        prop_assert_eq!(plain.encoded_len_v5().unwrap(), expected.len());
        let mut head = BytesMut::new();
        plain.encode_header_v5(&mut head).unwrap();
        head.extend_from_slice(plain.payload());
        prop_assert_eq!(&head[..], &expected[..]);
        prop_assert_eq!(decode5(&direct).unwrap(), Some(built));
    }
}

/// The direct MQTT 5 form refuses what the built packet refuses: an empty topic (which MQTT
/// 5 allows only with a Topic Alias) and a packet id that does not fit the QoS.
#[test]
fn a_publish_written_as_v5_directly_refuses_what_the_built_one_refuses() {
    let no_topic = crate::Publish::at_most_once(s(""), Bytes::new());
    assert_eq!(
        no_topic.encode_v5(&mut BytesMut::new()),
        Err(EncodeError::EmptyTopicWithoutAlias)
    );
    let no_id = crate::Publish::new(QoS::AtLeastOnce, None, s("t"), Bytes::new());
    assert_eq!(
        no_id.encode_v5(&mut BytesMut::new()),
        Err(EncodeError::PacketIdMismatch)
    );
    assert_eq!(no_id.encoded_len_v5(), Err(EncodeError::PacketIdMismatch));
}
