//! Bad input over raw sockets: each case closes only its own connection, is counted, and a
//! bystander keeps being served.
// Test and benchmark code: an unwrap that fails is a failure to report (clippy.toml allows
// it inside #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use mqgate_broker::{BrokerConfig, MetricsSnapshot};
use rumqttc::QoS;
use support::{start_with, subscribe, Client, Raw};

/// CONNECT for client id "bad" with clean session, keep-alive 30.
const CONNECT: &[u8] = &[
    0x10, 0x0F, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x1E, 0x00, 0x03, b'b', b'a',
    b'd',
];

struct Case {
    name: &'static str,
    /// Whether CONNECT (and its CONNACK) comes first.
    connect_first: bool,
    bytes: &'static [u8],
    counter: fn(&MetricsSnapshot) -> u64,
}

const CASES: &[Case] = &[
    Case {
        name: "first packet is PINGREQ, not CONNECT",
        connect_first: false,
        bytes: &[0xC0, 0x00],
        counter: |m| m.protocol_errors,
    },
    Case {
        name: "garbage remaining length",
        connect_first: false,
        bytes: &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        counter: |m| m.malformed_packets,
    },
    Case {
        name: "second CONNECT",
        connect_first: true,
        bytes: CONNECT,
        counter: |m| m.protocol_errors,
    },
    Case {
        name: "PUBLISH to a topic with a wildcard",
        connect_first: true,
        bytes: &[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'+', b'h', b'i'],
        counter: |m| m.malformed_packets,
    },
    Case {
        name: "reserved packet type 0",
        connect_first: true,
        bytes: &[0x00, 0x00],
        counter: |m| m.malformed_packets,
    },
    Case {
        name: "PUBACK for a packet id never sent",
        connect_first: true,
        bytes: &[0x40, 0x02, 0x00, 0x05],
        counter: |m| m.protocol_errors,
    },
    Case {
        name: "PUBLISH larger than max_packet_size, refused from its header",
        connect_first: true,
        bytes: &[0x30, 0xD0, 0x0F],
        counter: |m| m.oversize_packets,
    },
    Case {
        name: "SUBACK sent by a client",
        connect_first: true,
        bytes: &[0x90, 0x03, 0x00, 0x01, 0x00],
        counter: |m| m.protocol_errors,
    },
    Case {
        name: "SUBSCRIBE to an invalid filter (a/#/b)",
        connect_first: true,
        bytes: &[
            0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, b'a', b'/', b'#', b'/', b'b', 0x01,
        ],
        counter: |m| m.invalid_topics,
    },
    Case {
        name: "UNSUBSCRIBE from an invalid filter (a+)",
        connect_first: true,
        bytes: &[0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, b'a', b'+'],
        counter: |m| m.invalid_topics,
    },
];

#[tokio::test]
async fn each_bad_input_closes_only_its_connection() {
    let mut config = BrokerConfig::ephemeral();
    config.limits.max_packet_size = 1024;
    config.limits.connect_timeout = Duration::from_millis(300);
    let broker = start_with(config).await;
    let mut bystander = Client::connect(&broker, "bystander", true).await;
    subscribe(&mut bystander, "alive", QoS::AtLeastOnce).await;
    let talker = Client::connect(&broker, "talker", true).await;

    for (i, case) in CASES.iter().enumerate() {
        let before = broker.metrics();
        let mut raw = Raw::open(&broker).await;
        if case.connect_first {
            raw.send_bytes(CONNECT).await;
            assert!(
                matches!(raw.recv().await, Some(mqgate_codec::Packet::ConnAck(_))),
                "{}",
                case.name
            );
        }
        raw.send_bytes(case.bytes).await;
        raw.expect_closed().await;
        let after = broker.metrics();
        assert_eq!(
            (case.counter)(&after),
            (case.counter)(&before) + 1,
            "{}",
            case.name
        );

        talker
            .client
            .publish("alive", QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
        assert_eq!(
            &bystander.next().await.payload[..],
            i.to_string().as_bytes(),
            "{}",
            case.name
        );
    }

    // A client that never sends CONNECT is closed after the connect timeout.
    let mut silent = Raw::open(&broker).await;
    assert_eq!(silent.recv_within(Duration::from_secs(3)).await, Ok(None));
    assert_eq!(broker.metrics().connect_timeouts, 1);

    // A valid filter the broker will not serve (a P2P address) is refused in the SUBACK
    // (0x80); the connection stays.
    let mut raw = Raw::open(&broker).await;
    raw.send_bytes(CONNECT).await;
    assert!(matches!(
        raw.recv().await,
        Some(mqgate_codec::Packet::ConnAck(_))
    ));
    raw.send_bytes(&[
        0x82, 0x0C, 0x00, 0x01, 0x00, 0x07, b'a', b'/', b'p', b'2', b'p', b'/', b'x', 0x01,
    ])
    .await;
    match raw.recv().await {
        Some(mqgate_codec::Packet::SubAck(ack)) => {
            assert_eq!(
                ack.return_codes,
                [mqgate_codec::SubscribeReturnCode::Failure]
            )
        }
        other => panic!("{other:?}"),
    }
    raw.send_bytes(&[0xC0, 0x00]).await;
    assert_eq!(raw.recv().await, Some(mqgate_codec::Packet::PingResp));
    assert_eq!(broker.metrics().subscriptions_refused, 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn refused_connects_get_their_return_code() {
    let broker = start_with(BrokerConfig {
        allow_anonymous: false,
        ..BrokerConfig::ephemeral()
    })
    .await;
    let mut raw = Raw::open(&broker).await;
    raw.send_bytes(CONNECT).await;
    match raw.recv().await {
        Some(mqgate_codec::Packet::ConnAck(ack)) => {
            assert_eq!(ack.code, mqgate_codec::ConnectReturnCode::NotAuthorized)
        }
        other => panic!("{other:?}"),
    }
    raw.expect_closed().await;

    let open = start_with(BrokerConfig::ephemeral()).await;
    // An empty client id with cleanSession = 0 is refused (MQTT-3.1.3-8).
    let mut raw = Raw::open(&open).await;
    raw.send_bytes(&[
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x00, 0x00, 0x1E, 0x00, 0x00,
    ])
    .await;
    match raw.recv().await {
        Some(mqgate_codec::Packet::ConnAck(ack)) => {
            assert_eq!(
                ack.code,
                mqgate_codec::ConnectReturnCode::IdentifierRejected
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(open.metrics().connects_refused, 1);
    broker.shutdown().await;
    open.shutdown().await;
}

/// CONNECT for client id "bad" with protocol name `name` and level `level`.
fn connect_with(name: &[u8], level: u8) -> Vec<u8> {
    let mut body = vec![0x00, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, 0x02, 0x00, 0x1E, 0x00, 0x03, b'b', b'a', b'd']);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

#[tokio::test]
async fn unsupported_protocol_level_gets_connack_1_then_close() {
    let broker = start_with(BrokerConfig::ephemeral()).await;
    // Unknown levels under `MQTT` (level 5 is MQTT 5, served: see tests/mqtt5.rs), MQTT
    // 3.1.1's level under 3.1's `MQIsdp`.
    let levels: [(&[u8], u8); 3] = [(b"MQTT", 6), (b"MQTT", 99), (b"MQIsdp", 4)];
    for (i, (name, level)) in levels.into_iter().enumerate() {
        let mut raw = Raw::open(&broker).await;
        raw.send_bytes(&connect_with(name, level)).await;
        match raw.recv().await {
            Some(mqgate_codec::Packet::ConnAck(ack)) => {
                assert_eq!(
                    ack.code,
                    mqgate_codec::ConnectReturnCode::UnacceptableProtocolVersion,
                    "level {level}"
                );
                assert!(!ack.session_present);
            }
            other => panic!("level {level}: expected CONNACK 1, got {other:?}"),
        }
        raw.expect_closed().await;
        let metrics = broker.metrics();
        assert_eq!(metrics.protocol_level_refused, i as u64 + 1);
        assert_eq!(metrics.connects_refused, i as u64 + 1);
    }

    // A malformed CONNECT that is not a version problem closes without any CONNACK: an
    // unknown protocol name, and the reserved flag bit set.
    let mut reserved_flag = connect_with(b"MQTT", 4);
    reserved_flag[9] |= 0x01;
    for bytes in [connect_with(b"hj", 4), reserved_flag] {
        let mut raw = Raw::open(&broker).await;
        raw.send_bytes(&bytes).await;
        assert_eq!(raw.recv().await, None, "{bytes:02x?}");
    }
    let metrics = broker.metrics();
    assert_eq!(metrics.malformed_packets, 2);
    assert_eq!(metrics.protocol_level_refused, 3);
    assert_eq!(metrics.connects_refused, 3);
    broker.shutdown().await;
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_at_accept() {
    let mut config = BrokerConfig::ephemeral();
    config.limits.max_connections = Some(2);
    let broker = start_with(config).await;
    let _a = Raw::connect(&broker, "a", 30).await;
    let _b = Raw::connect(&broker, "b", 30).await;
    let mut c = Raw::open(&broker).await;
    c.send_bytes(CONNECT).await;
    assert_eq!(c.recv().await, None, "closed without CONNACK");
    assert_eq!(broker.metrics().connections_refused, 1);
    drop(_a);
    // The permit comes back when the connection task ends.
    let mut admitted = false;
    for _ in 0..50 {
        let mut d = Raw::open(&broker).await;
        d.send_bytes(CONNECT).await;
        if matches!(d.recv().await, Some(mqgate_codec::Packet::ConnAck(_))) {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted);
    broker.shutdown().await;
}
