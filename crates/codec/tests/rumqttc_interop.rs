//! Interop with a codec no one here wrote: rumqttc's `mqttbytes::v4`. Packets we encode decode
//! in rumqttc to the same values, and packets rumqttc encodes decode in ours to the same values.

use bytes::{Bytes, BytesMut};
use mqgate_codec as ours;
use proptest::prelude::*;
use rumqttc::mqttbytes::v4;

#[path = "support/rumqttc_map.rs"]
mod rumqttc_map;
use rumqttc_map::to_rumqttc;

fn pid(n: u16) -> ours::PacketId {
    ours::PacketId::new(n).expect("non-zero")
}

fn st(s: &str) -> ours::ByteStr {
    ours::ByteStr::try_from(s).expect("test strings have no NUL")
}

fn arb_qos() -> impl Strategy<Value = ours::QoS> {
    prop_oneof![
        Just(ours::QoS::AtMostOnce),
        Just(ours::QoS::AtLeastOnce),
        Just(ours::QoS::ExactlyOnce)
    ]
}

/// Packets both codecs can express: 3.1.1 CONNECT with a non-empty UTF-8 password that comes
/// with a user name (rumqttc omits an empty password and has no user name without one).
fn arb_packet() -> impl Strategy<Value = ours::Packet> {
    let topic = "[a-z0-9/é_-]{1,10}";
    let payload = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
    let connect = (
        any::<bool>(),
        any::<u16>(),
        "[A-Za-z0-9@_-]{1,20}",
        proptest::option::of((topic, payload.clone(), arb_qos(), any::<bool>())),
        proptest::option::of(("[a-z|A-Z0-9]{1,12}", "[A-Za-z0-9=+/|]{1,28}")),
    )
        .prop_map(|(clean_session, keep_alive, id, will, login)| {
            ours::Packet::Connect(Box::new(ours::Connect {
                protocol: ours::Protocol::V311,
                clean_session,
                keep_alive,
                client_id: st(&id),
                will: will.map(|(t, payload, qos, retain)| ours::LastWill {
                    topic: st(&t),
                    payload,
                    qos,
                    retain,
                }),
                username: login.as_ref().map(|(u, _)| st(u)),
                password: login.map(|(_, p)| Bytes::from(p)),
            }))
        });
    let publish = (
        any::<bool>(),
        arb_qos(),
        any::<bool>(),
        topic,
        1u16..,
        payload,
    )
        .prop_map(|(dup, qos, retain, t, id, payload)| {
            let packet_id = (qos != ours::QoS::AtMostOnce).then(|| pid(id));
            let mut p = ours::Publish::new(qos, packet_id, st(&t), payload);
            p.dup = dup;
            p.retain = retain;
            ours::Packet::Publish(p)
        });
    let filters = proptest::collection::vec((topic, arb_qos()), 1..4);
    prop_oneof![
        connect,
        (any::<bool>(), 0u8..=5).prop_map(|(sp, c)| ours::Packet::ConnAck(ours::ConnAck {
            session_present: sp,
            code: ours::ConnectReturnCode::from_u8(c).expect("0..=5"),
        })),
        publish,
        (1u16..).prop_map(|i| ours::Packet::PubAck(pid(i))),
        (1u16..).prop_map(|i| ours::Packet::PubRec(pid(i))),
        (1u16..).prop_map(|i| ours::Packet::PubRel(pid(i))),
        (1u16..).prop_map(|i| ours::Packet::PubComp(pid(i))),
        (1u16.., filters).prop_map(|(i, fs)| ours::Packet::Subscribe(ours::Subscribe {
            packet_id: pid(i),
            filters: fs
                .into_iter()
                .map(|(f, qos)| ours::SubscribeFilter {
                    filter: st(&f),
                    qos
                })
                .collect(),
        })),
        (
            1u16..,
            proptest::collection::vec(
                prop_oneof![
                    arb_qos().prop_map(ours::SubscribeReturnCode::Success),
                    Just(ours::SubscribeReturnCode::Failure)
                ],
                1..4
            )
        )
            .prop_map(|(i, rcs)| ours::Packet::SubAck(ours::SubAck {
                packet_id: pid(i),
                return_codes: rcs
            })),
        (1u16.., proptest::collection::vec(topic, 1..4)).prop_map(|(i, fs)| {
            ours::Packet::Unsubscribe(ours::Unsubscribe {
                packet_id: pid(i),
                filters: fs.iter().map(|f| st(f)).collect(),
            })
        }),
        (1u16..).prop_map(|i| ours::Packet::UnsubAck(pid(i))),
        Just(ours::Packet::PingReq),
        Just(ours::Packet::PingResp),
        Just(ours::Packet::Disconnect),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rumqttc_decodes_what_we_encode(p in arb_packet()) {
        let mut buf = BytesMut::new();
        p.encode(&mut buf).expect("encode");
        let theirs = v4::Packet::read(&mut buf, 1 << 20).expect("rumqttc decodes our bytes");
        prop_assert!(buf.is_empty());
        prop_assert_eq!(theirs, to_rumqttc(&p));
    }

    #[test]
    fn we_decode_what_rumqttc_encodes(p in arb_packet()) {
        let mut buf = BytesMut::new();
        to_rumqttc(&p).write(&mut buf, 1 << 20).expect("rumqttc encodes");
        let ours = ours::Decoder::new(1 << 20).decode(&mut buf).expect("we decode rumqttc's bytes");
        prop_assert!(buf.is_empty());
        prop_assert_eq!(ours, Some(p.clone()));
        // and we re-encode exactly what rumqttc wrote
        let mut theirs = BytesMut::new();
        to_rumqttc(&p).write(&mut theirs, 1 << 20).expect("rumqttc encodes");
        let mut again = BytesMut::new();
        p.encode(&mut again).expect("encode");
        prop_assert_eq!(again, theirs);
    }
}
