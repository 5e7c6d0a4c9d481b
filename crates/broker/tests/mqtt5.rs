//! MQTT 5 over real sockets: the CONNACK and what it announces, reason codes, forwarded
//! properties and message expiry, subscription options and identifiers, session expiry, the
//! will on DISCONNECT 0x04 and the DISCONNECTs the broker sends, with rumqttc's v5 client
//! beside its 3.1.1 one and with our own codec where the exact bytes matter.
//!
//! Each test quotes the normative statement of the MQTT 5.0 standard it checks.

mod auth_support;
mod support;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqgate_broker::{BrokerConfig, BrokerHandle, ListenerKind};
use mqgate_codec::v5::{
    self, Packet, Publish, RetainHandling, Subscribe, Subscription, SubscriptionOptions,
};
use mqgate_codec::{ByteStr, Properties, Property, PropertyId, QoS, ReasonCode};
use mqgate_store::{MemoryStore, Store};
use rumqttc::v5::mqttbytes::v5::PublishProperties as RProps;
use rumqttc::v5::MqttOptions;
use support::mqtt5::{pid, qos, with_properties, Client5, Raw5};
use support::*;
use tokio::time::timeout;

// ------------------------------------------------------------------ CONNECT and CONNACK

/// "If the Client connects using a zero length Client Identifier, the Server MUST respond
/// with a CONNACK containing an Assigned Client Identifier" [MQTT-3.2.2-16]; the CONNACK
/// announces Receive Maximum, Maximum Packet Size, Retain / Wildcard / Subscription
/// Identifier / Shared Subscription Available (3.2.2.3).
#[tokio::test]
async fn connack_announces_what_the_broker_supports_and_assigns_an_id() {
    let broker = start().await;
    let connect = v5::Connect {
        clean_start: true,
        keep_alive: 30,
        ..v5::Connect::default()
    };
    let (_raw, ack) = Raw5::connect_with(&broker, connect).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    assert!(!ack.session_present);
    let p = &ack.properties;
    let int = |id| p.get(id).and_then(|p| p.as_u32());
    assert_eq!(
        int(PropertyId::ReceiveMaximum),
        Some(1024),
        "[mqtt5] receive_maximum, not the in-flight window (100)"
    );
    assert_eq!(int(PropertyId::RetainAvailable), Some(1));
    assert_eq!(int(PropertyId::WildcardSubscriptionAvailable), Some(1));
    assert_eq!(int(PropertyId::SubscriptionIdentifierAvailable), Some(1));
    assert_eq!(int(PropertyId::SharedSubscriptionAvailable), Some(1));
    assert_eq!(int(PropertyId::TopicAliasMaximum), Some(64));
    assert_eq!(int(PropertyId::MaximumPacketSize), Some(1024 * 1024));
    assert!(!p.contains(PropertyId::MaximumQoS), "QoS 2 is the default");
    let assigned = p
        .get(PropertyId::AssignedClientIdentifier)
        .and_then(|p| p.as_str())
        .expect("an assigned client id");
    assert!(!assigned.is_empty());
    broker.shutdown().await;
}

/// "If the Server does not allow the Client Identifier it MUST respond to the CONNECT
/// packet with a CONNACK using Reason Code 0x85 (Client Identifier not valid)"
/// [MQTT-3.1.3-8 of MQTT 5]; "the Server ... MUST close the Network Connection" [MQTT-3.2.2-7].
/// The CONNACK says why in a Reason String, unless that would make it larger than the
/// client's Maximum Packet Size: "The Server MUST NOT send this property if it would
/// increase the size of the CONNACK packet beyond the Maximum Packet Size specified by the
/// Client" [MQTT-3.2.2-19].
#[tokio::test]
async fn a_refused_client_id_gets_reason_0x85() {
    let broker = start().await;
    let connect = v5::Connect {
        clean_start: true,
        client_id: ByteStr::from_static("$amqp/queue"),
        ..v5::Connect::default()
    };
    let (mut raw, ack) = Raw5::connect_with(&broker, connect.clone()).await;
    assert_eq!(ack.reason, ReasonCode::ClientIdentifierNotValid);
    assert_eq!(
        reason_string(&ack.properties),
        Some("client identifier not valid for this broker")
    );
    assert_eq!(raw.recv().await, None, "closed after the CONNACK");
    let small = v5::Connect {
        properties: Properties::build([Property::FourByteInt(PropertyId::MaximumPacketSize, 16)])
            .expect("properties"),
        ..connect
    };
    let (mut raw, ack) = Raw5::connect_with(&broker, small).await;
    assert_eq!(ack.reason, ReasonCode::ClientIdentifierNotValid);
    assert!(
        ack.properties.is_empty(),
        "no Reason String beyond 16 bytes"
    );
    assert_eq!(raw.recv().await, None, "closed after the CONNACK");
    broker.shutdown().await;
}

/// Authentication refusals carry MQTT 5 reason codes: 0x86 (Bad User Name or Password)
/// and 0x87 (Not authorized) (3.2.2.2); the SUBACK of a filter the client may not
/// subscribe to carries 0x87 where 3.1.1 gives 0x80 (3.9.3).
#[tokio::test]
async fn refusals_carry_mqtt5_reason_codes() {
    use auth_support::{AK, INSTANCE, LIMITED_AK, LIMITED_SECRET, SECRET};
    let (store, _registry) = auth_support::seeded_store();
    let broker = auth_support::start(auth_support::config(""), Some(store)).await;
    let login = |id: &str, ak: &str, password: String| v5::Connect {
        clean_start: true,
        keep_alive: 30,
        client_id: ByteStr::try_from(id).expect("id"),
        username: Some(ByteStr::try_from(format!("Signature|{ak}|{INSTANCE}")).expect("name")),
        password: Some(Bytes::from(password)),
        ..v5::Connect::default()
    };
    let cases = [
        (
            login("GID_a@@@d1", AK, "d3Jvbmc=".into()),
            ReasonCode::BadUserNameOrPassword,
            "bad user name or password",
        ),
        (
            login(
                "GID_nope@@@d1",
                AK,
                mqgate_auth::sign_client_id(SECRET, "GID_nope@@@d1"),
            ),
            ReasonCode::NotAuthorized,
            "not authorized to connect",
        ),
    ];
    for (connect, expected, why) in cases {
        let (mut raw, ack) = Raw5::connect_with(&broker, connect).await;
        assert_eq!(ack.reason, expected);
        assert_eq!(reason_string(&ack.properties), Some(why));
        assert_eq!(raw.recv().await, None, "closed after the CONNACK");
    }
    let id = "GID_a@@@limited";
    let connect = login(
        id,
        LIMITED_AK,
        mqgate_auth::sign_client_id(LIMITED_SECRET, id),
    );
    let (mut raw, ack) = Raw5::connect_with(&broker, connect).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    let reasons = raw
        .subscribe(
            1,
            &[
                ("shop/1/cmd", qos(QoS::AtLeastOnce)),
                ("other/#", qos(QoS::AtLeastOnce)),
            ],
            None,
        )
        .await;
    assert_eq!(
        reasons,
        [ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized]
    );
    broker.shutdown().await;
}

/// A 3.1.1 client still gets a 3.1.1 CONNACK: "The Server MUST respond to the CONNECT Packet
/// with a CONNACK return code 0x01 (unacceptable protocol level) ... if the Protocol Level
/// is not supported" [MQTT-3.1.2-2 of 3.1.1], for a level that is neither 4 nor 5.
#[tokio::test]
async fn an_unknown_protocol_level_is_still_refused_with_connack_1() {
    let broker = start().await;
    let mut raw = Raw::open(&broker).await;
    // CONNECT "MQTT" level 6, clean session, keep-alive 30, client id "c".
    raw.send_bytes(&[
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 30, 0, 1, b'c',
    ])
    .await;
    match raw.recv().await {
        Some(mqgate_codec::Packet::ConnAck(ack)) => assert_eq!(
            ack.code,
            mqgate_codec::ConnectReturnCode::UnacceptableProtocolVersion
        ),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    broker.shutdown().await;
}

// ------------------------------------------------------------------ properties and expiry

/// "The Server MUST send all User Properties unaltered in a PUBLISH packet when forwarding
/// the Application Message to a Client" [MQTT-3.3.2-17], "maintaining the order"
/// [MQTT-3.3.2-18]; the Server MUST send the Content Type, Response Topic, Correlation Data
/// and Payload Format Indicator unaltered [MQTT-3.3.2-20, -15, -16, -4]; "The PUBLISH packet
/// sent to a Client by the Server MUST contain a Message Expiry Interval set to the received
/// value minus the time that the message has been waiting in the Server" [MQTT-3.3.2-6].
/// A 3.1.1 subscriber of the same message gets the payload, without properties.
#[tokio::test]
async fn forwarded_properties_reach_a_v5_subscriber_and_a_v311_one_gets_the_payload() {
    let broker = start().await;
    let mut sub5 = Client5::connect(&broker, "sub5").await;
    sub5.subscribe("props/#", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await;
    let mut sub3 = Client::connect(&broker, "sub3", true).await;
    subscribe(&mut sub3, "props/#", rumqttc::QoS::AtLeastOnce).await;
    let publisher = Client5::connect(&broker, "pub5").await;
    let props = RProps {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(60),
        response_topic: Some("reply/here".into()),
        correlation_data: Some(Bytes::from_static(b"\x01\x02")),
        user_properties: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        content_type: Some("text/plain".into()),
        ..RProps::default()
    };
    publisher
        .client
        .publish_with_properties(
            "props/x",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            "hello",
            props,
        )
        .await
        .expect("queued");
    let got = sub5.next().await;
    assert_eq!(&got.payload[..], b"hello");
    let p = got.properties.expect("properties forwarded");
    assert_eq!(p.payload_format_indicator, Some(1));
    assert_eq!(p.response_topic.as_deref(), Some("reply/here"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"\x01\x02"[..]));
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        p.user_properties,
        vec![
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string())
        ]
    );
    let left = p.message_expiry_interval.expect("expiry forwarded");
    assert!((55..=60).contains(&left), "{left} s left of 60");
    let old = sub3.next().await;
    assert_eq!(&old.payload[..], b"hello");
    broker.shutdown().await;
}

/// A 3.1.1 message carries no properties to an MQTT 5 subscriber: the PUBLISH's property
/// length is 0 (exact bytes through our codec).
#[tokio::test]
async fn a_v311_message_reaches_a_v5_subscriber_without_properties() {
    let broker = start().await;
    let (mut sub, _) = Raw5::connect(&broker, "raw5", true, 0).await;
    let reasons = sub
        .subscribe(1, &[("plain/t", qos(QoS::AtLeastOnce))], None)
        .await;
    assert_eq!(reasons, [ReasonCode::GrantedQoS1]);
    let publisher = Client::connect(&broker, "pub3", true).await;
    publisher
        .client
        .publish("plain/t", rumqttc::QoS::AtMostOnce, false, "x")
        .await
        .expect("queued");
    let got = sub.publish_in().await;
    assert_eq!(&got.payload[..], b"x");
    assert_eq!(got.properties, v5::PublishProperties::default());
    let _ = publisher.client.disconnect().await;
    broker.shutdown().await;
}

/// "If the Message Expiry Interval has passed and the Server has not managed to start
/// onward delivery to a matching subscriber, then it MUST delete the copy of the message
/// for that subscriber" [MQTT-3.3.2-5]. A message without expiry queued beside it arrives.
#[tokio::test]
async fn an_expired_queued_message_is_not_delivered() {
    let broker = start().await;
    let (mut sub, _) = Raw5::connect(&broker, "sleeper", true, 3600).await;
    sub.subscribe(1, &[("exp/#", qos(QoS::AtLeastOnce))], None)
        .await;
    sub.send(Packet::Disconnect(v5::ReasonAndProperties::default()))
        .await;
    assert_eq!(sub.recv().await, None);
    let (mut publisher, _) = Raw5::connect(&broker, "expirer", true, 0).await;
    for (topic, expiry) in [("exp/short", Some(1)), ("exp/none", None)] {
        let mut p = Publish::new(
            QoS::AtLeastOnce,
            Some(pid(1)),
            ByteStr::try_from(topic).expect("topic"),
            Bytes::from_static(b"m"),
        );
        p.properties.message_expiry_interval = expiry;
        publisher.send(Packet::Publish(p)).await;
        match publisher.recv().await {
            Some(Packet::PubAck(ack)) => assert_eq!(ack.packet_id, pid(1)),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut sub, present) = Raw5::connect(&broker, "sleeper", false, 3600).await;
    assert!(present);
    let got = sub.publish_in().await;
    assert_eq!(&*got.topic, "exp/none");
    if let Some(id) = got.packet_id {
        sub.send(Packet::PubAck(v5::Ack::success(id))).await;
    }
    sub.expect_nothing(Duration::from_millis(300)).await;
    broker.shutdown().await;
}

/// [MQTT-3.3.2-5] with a Message Expiry Interval of 0 and a receiver online whose window is
/// full: the message waits in its queue, where its expiry has already passed, so it is
/// deleted; the messages beside it without an expiry arrive, in order.
#[tokio::test]
async fn an_expiry_0_message_behind_a_full_window_is_not_delivered() {
    let broker = start().await;
    let connect = with_properties(
        "full",
        [Property::TwoByteInt(PropertyId::ReceiveMaximum, 1)],
    );
    let (mut sub, _) = Raw5::connect_with(&broker, connect).await;
    sub.subscribe(1, &[("exp0/#", qos(QoS::AtLeastOnce))], None)
        .await;
    let (mut publisher, _) = Raw5::connect(&broker, "exp0-pub", true, 0).await;
    for (n, (topic, expiry)) in [("exp0/a", None), ("exp0/b", Some(0)), ("exp0/c", None)]
        .into_iter()
        .enumerate()
    {
        let id = u16::try_from(n + 1).expect("small");
        let mut p = Publish::new(
            QoS::AtLeastOnce,
            Some(pid(id)),
            ByteStr::try_from(topic).expect("topic"),
            Bytes::from_static(b"m"),
        );
        p.properties.message_expiry_interval = expiry;
        publisher.send(Packet::Publish(p)).await;
        match publisher.recv().await {
            Some(Packet::PubAck(ack)) => assert_eq!(ack.packet_id, pid(id)),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    // The first fills the window of 1; the other two wait.
    let first = sub.publish_in().await;
    assert_eq!(&*first.topic, "exp0/a");
    sub.expect_nothing(Duration::from_millis(200)).await;
    sub.send(Packet::PubAck(v5::Ack::success(
        first.packet_id.expect("QoS 1"),
    )))
    .await;
    let next = sub.publish_in().await;
    assert_eq!(&*next.topic, "exp0/c", "the expiry 0 one was deleted");
    sub.send(Packet::PubAck(v5::Ack::success(
        next.packet_id.expect("QoS 1"),
    )))
    .await;
    sub.expect_nothing(Duration::from_millis(300)).await;
    broker.shutdown().await;
}

// ------------------------------------------------------------------ subscriptions

/// "The SUBACK packet sent by the Server to the Client MUST contain a Reason Code for each
/// Topic Filter/Subscription Option pair" [MQTT-3.8.4-6], the granted QoS for each here, a
/// shared subscription's too (3.9.3).
#[tokio::test]
async fn suback_carries_a_reason_code_per_filter() {
    let broker = start().await;
    let (mut raw, _) = Raw5::connect(&broker, "subber", true, 0).await;
    let reasons = raw
        .subscribe(
            1,
            &[
                ("a/0", qos(QoS::AtMostOnce)),
                ("$share/g/a/1", qos(QoS::AtLeastOnce)),
                ("a/2", qos(QoS::ExactlyOnce)),
            ],
            None,
        )
        .await;
    assert_eq!(
        reasons,
        [
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2
        ]
    );
    // UNSUBACK: 0x00 for a subscription that existed, 0x11 for one that did not (3.11.3).
    raw.send(Packet::Unsubscribe(v5::Unsubscribe {
        packet_id: pid(2),
        properties: Properties::new(),
        filters: vec![ByteStr::from_static("a/0"), ByteStr::from_static("nope")],
    }))
    .await;
    match raw.recv().await {
        Some(Packet::UnsubAck(ack)) => assert_eq!(
            ack.reasons,
            [ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
        ),
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
    broker.shutdown().await;
}

/// "Bit 2 of the Subscription Options represents the No Local option. If the value is 1,
/// Application Messages MUST NOT be forwarded to a connection with a ClientID equal to the
/// ClientID of the publishing connection" [MQTT-3.8.3-3]. Another client's message on the
/// same subscription arrives.
#[tokio::test]
async fn no_local_keeps_a_clients_own_messages_from_it() {
    let broker = start().await;
    let (mut me, _) = Raw5::connect(&broker, "me", true, 0).await;
    let options = SubscriptionOptions {
        no_local: true,
        ..qos(QoS::AtMostOnce)
    };
    me.subscribe(1, &[("nl/t", options)], None).await;
    me.publish("nl/t", b"mine", false).await;
    me.ping().await;
    let other = Client::connect(&broker, "other", true).await;
    other
        .client
        .publish("nl/t", rumqttc::QoS::AtMostOnce, false, "theirs")
        .await
        .expect("queued");
    let got = me.publish_in().await;
    assert_eq!(
        &got.payload[..],
        b"theirs",
        "its own message was not forwarded to it"
    );
    let _ = other.client.disconnect().await;
    broker.shutdown().await;
}

/// "If the Client specified a Subscription Identifier for any of the overlapping
/// subscriptions the Server MUST send those Subscription Identifiers in the message which
/// is published as the result of the subscriptions" [MQTT-3.3.4-3]; a subscription made
/// without one adds none.
#[tokio::test]
async fn subscription_identifiers_come_back_in_the_publish() {
    let broker = start().await;
    let (mut raw, _) = Raw5::connect(&broker, "ids", true, 0).await;
    raw.subscribe(1, &[("sid/+", qos(QoS::AtMostOnce))], Some(7))
        .await;
    raw.subscribe(2, &[("sid/b", qos(QoS::AtMostOnce))], Some(300))
        .await;
    raw.subscribe(3, &[("sid/#", qos(QoS::AtMostOnce))], None)
        .await;
    let publisher = Client::connect(&broker, "idpub", true).await;
    for topic in ["sid/b", "sid/c", "sid/c/d"] {
        publisher
            .client
            .publish(topic, rumqttc::QoS::AtMostOnce, false, "x")
            .await
            .expect("queued");
    }
    let ids = |p: &Publish| {
        p.properties
            .subscription_identifiers
            .iter()
            .map(|n: &NonZeroU32| n.get())
            .collect::<Vec<_>>()
    };
    let b = raw.publish_in().await;
    assert_eq!(ids(&b), [7, 300]);
    let c = raw.publish_in().await;
    assert_eq!(ids(&c), [7]);
    let cd = raw.publish_in().await;
    assert!(ids(&cd).is_empty());
    let _ = publisher.client.disconnect().await;
    broker.shutdown().await;
}

/// A QoS 0 message for many receivers is encoded once per protocol and shared, yet each
/// receiver gets what the standard makes its own: "the Server MUST send those Subscription
/// Identifiers in the message" [MQTT-3.3.4-5] (only to the receiver that gave one), topic
/// aliases only up to "the Topic Alias Maximum value sent by the Client in the CONNECT"
/// [MQTT-3.3.2-9], nothing larger than its Maximum Packet Size [MQTT-3.1.2-24], the
/// remaining expiry [MQTT-3.3.2-6], and a 3.1.1 receiver a 3.1.1 PUBLISH.
#[tokio::test]
async fn a_shared_qos0_frame_keeps_what_is_each_receivers_own() {
    let broker = start().await;
    let (mut with_id, _) = Raw5::connect(&broker, "fan-id", true, 0).await;
    with_id
        .subscribe(1, &[("fan/#", qos(QoS::AtMostOnce))], Some(7))
        .await;
    let (mut plain, _) = Raw5::connect(&broker, "fan-plain", true, 0).await;
    plain
        .subscribe(1, &[("fan/#", qos(QoS::AtMostOnce))], None)
        .await;
    let small = with_properties(
        "fan-small",
        [Property::FourByteInt(PropertyId::MaximumPacketSize, 64)],
    );
    let (mut small, _) = Raw5::connect_with(&broker, small).await;
    small
        .subscribe(1, &[("fan/#", qos(QoS::AtMostOnce))], None)
        .await;
    let aliased = with_properties(
        "fan-alias",
        [Property::TwoByteInt(PropertyId::TopicAliasMaximum, 4)],
    );
    let (mut aliased, _) = Raw5::connect_with(&broker, aliased).await;
    aliased
        .subscribe(1, &[("fan/#", qos(QoS::AtMostOnce))], None)
        .await;
    let mut old = Client::connect(&broker, "fan-311", true).await;
    subscribe(&mut old, "fan/#", rumqttc::QoS::AtMostOnce).await;

    let publisher = Client5::connect(&broker, "fan-pub").await;
    let user = vec![("k".to_string(), "v".to_string())];
    for (payload, expiry) in [
        (vec![1u8; 4], None),
        (vec![2u8; 100], None),
        (vec![3u8; 4], Some(60)),
    ] {
        let props = RProps {
            user_properties: user.clone(),
            message_expiry_interval: expiry,
            ..RProps::default()
        };
        publisher
            .client
            .publish_with_properties(
                "fan/t",
                rumqttc::v5::mqttbytes::QoS::AtMostOnce,
                false,
                payload,
                props,
            )
            .await
            .expect("queued");
    }
    let user_of = |p: &Publish| {
        p.properties
            .forwarded()
            .user_properties()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let ids = |p: &Publish| {
        p.properties
            .subscription_identifiers
            .iter()
            .map(|n| n.get())
            .collect::<Vec<_>>()
    };
    for (n, first) in [1u8, 2, 3].into_iter().enumerate() {
        let expiry = (first == 3).then_some(60);
        let got = with_id.publish_in().await;
        assert_eq!((got.payload[0], ids(&got)), (first, vec![7]), "message {n}");
        assert_eq!(user_of(&got), user);
        let got = plain.publish_in().await;
        assert_eq!((got.payload[0], ids(&got)), (first, vec![]), "message {n}");
        assert_eq!(user_of(&got), user);
        assert!(got.properties.topic_alias.is_none());
        let left = got.properties.message_expiry_interval;
        assert!(
            left.is_some() == expiry.is_some() && left <= expiry,
            "{left:?}"
        );
        let got = aliased.publish_in().await;
        assert_eq!(got.payload[0], first);
        assert_eq!(got.properties.topic_alias.map(|a| a.get()), Some(1));
        assert_eq!(&*got.topic, if n == 0 { "fan/t" } else { "" });
        if first != 2 {
            // The 100-byte one is larger than this client accepts: skipped for it alone.
            let got = small.publish_in().await;
            assert_eq!(got.payload[0], first);
        }
        let got = old.next().await;
        assert_eq!(got.payload[0], first);
    }
    small.ping().await;
    broker.shutdown().await;
}

/// Retain Handling: "0 = Send retained messages at the time of the subscribe, 1 = Send
/// retained messages at subscribe only if the subscription does not currently exist,
/// 2 = Do not send retained messages at the time of the subscribe" (3.8.3.1)
/// [MQTT-3.3.1-9, -10, -11].
#[tokio::test]
async fn retain_handling_decides_whether_retained_messages_are_sent() {
    let broker = start().await;
    let (mut publisher, _) = Raw5::connect(&broker, "keeper", true, 0).await;
    publisher.publish("rh/t", b"kept", true).await;
    publisher.ping().await;
    let (mut raw, _) = Raw5::connect(&broker, "rh", true, 0).await;
    let with = |h| SubscriptionOptions {
        retain_handling: h,
        ..qos(QoS::AtMostOnce)
    };
    raw.subscribe(1, &[("rh/t", with(RetainHandling::DoNotSend))], None)
        .await;
    raw.ping().await;
    // 1: the subscription exists already, so nothing is sent.
    raw.subscribe(
        2,
        &[("rh/t", with(RetainHandling::SendAtNewSubscription))],
        None,
    )
    .await;
    raw.ping().await;
    // 0: sent at every subscribe.
    raw.subscribe(3, &[("rh/t", with(RetainHandling::SendAtSubscribe))], None)
        .await;
    let got = raw.publish_in().await;
    assert_eq!(&got.payload[..], b"kept");
    assert!(got.retain);
    // 1 on a new subscription: sent.
    raw.subscribe(
        4,
        &[("rh/+", with(RetainHandling::SendAtNewSubscription))],
        None,
    )
    .await;
    let got = raw.publish_in().await;
    assert_eq!(&got.payload[..], b"kept");
    broker.shutdown().await;
}

/// "If the value of Retain As Published subscription option is set to 0, the Server MUST
/// set the RETAIN flag to 0 when forwarding an Application Message regardless of how the
/// RETAIN flag was set in the received PUBLISH packet" [MQTT-3.3.1-12]; "If the value of
/// Retain As Published subscription option is set to 1, the Server MUST set the RETAIN flag
/// equal to the RETAIN flag in the received PUBLISH packet" [MQTT-3.3.1-13].
#[tokio::test]
async fn retain_as_published_keeps_the_retain_flag_for_that_subscription_only() {
    let broker = start().await;
    let (mut rap, _) = Raw5::connect(&broker, "rap", true, 0).await;
    let keep = SubscriptionOptions {
        retain_as_published: true,
        ..qos(QoS::AtMostOnce)
    };
    rap.subscribe(1, &[("rap/t", keep)], None).await;
    let (mut plain, _) = Raw5::connect(&broker, "plain", true, 0).await;
    plain
        .subscribe(1, &[("rap/t", qos(QoS::AtMostOnce))], None)
        .await;
    let (mut publisher, _) = Raw5::connect(&broker, "rapper", true, 0).await;
    publisher.publish("rap/t", b"kept", true).await;
    publisher.publish("rap/t", b"live", false).await;
    let flags = |p: Publish| (p.payload, p.retain);
    assert_eq!(
        flags(rap.publish_in().await),
        (Bytes::from_static(b"kept"), true)
    );
    assert_eq!(
        flags(rap.publish_in().await),
        (Bytes::from_static(b"live"), false)
    );
    assert_eq!(
        flags(plain.publish_in().await),
        (Bytes::from_static(b"kept"), false)
    );
    assert_eq!(
        flags(plain.publish_in().await),
        (Bytes::from_static(b"live"), false)
    );
    broker.shutdown().await;
}

/// "The Server MUST NOT send more than Receive Maximum QoS 1 and QoS 2 PUBLISH packets
/// for which it has not received PUBACK, PUBCOMP, or PUBREC with a Reason Code of 128 or
/// greater from the Client" [MQTT-3.3.4-9]: with Receive Maximum 2, two arrive, the third
/// after an acknowledgement.
#[tokio::test]
async fn the_clients_receive_maximum_bounds_what_is_in_flight() {
    let broker = start().await;
    let connect = with_properties(
        "narrow",
        [Property::TwoByteInt(PropertyId::ReceiveMaximum, 2)],
    );
    let (mut raw, ack) = Raw5::connect_with(&broker, connect).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    raw.subscribe(1, &[("rm/t", qos(QoS::AtLeastOnce))], None)
        .await;
    let mut publisher = Client::connect(&broker, "rmpub", true).await;
    for n in 0..3u8 {
        publisher
            .client
            .publish("rm/t", rumqttc::QoS::AtLeastOnce, false, vec![n])
            .await
            .expect("queued");
    }
    publisher.acked(3).await;
    let first = raw.publish_in().await;
    let second = raw.publish_in().await;
    assert_eq!(
        (&first.payload[..], &second.payload[..]),
        (&[0u8][..], &[1u8][..])
    );
    raw.expect_nothing(Duration::from_millis(300)).await;
    raw.send(Packet::PubAck(v5::Ack::success(
        first.packet_id.expect("QoS 1"),
    )))
    .await;
    let third = raw.publish_in().await;
    assert_eq!(&third.payload[..], &[2u8]);
    broker.shutdown().await;
}

/// A QoS 1 or 2 PUBLISH from `raw` to `topic` under packet id `id`.
async fn publish_qos(raw: &mut Raw5, q: QoS, id: u16, topic: &'static str) {
    let publish = Publish::new(
        q,
        Some(pid(id)),
        ByteStr::from_static(topic),
        Bytes::from_static(b"m"),
    );
    raw.send(Packet::Publish(publish)).await;
}

/// "The Client MUST NOT send more than Receive Maximum QoS 1 and QoS 2 PUBLISH packets for
/// which it has not received PUBACK, PUBCOMP, or PUBREC with a Reason Code of 128 or greater
/// from the Server [MQTT-3.3.4-7]. If it receives more than Receive Maximum QoS 1 and QoS 2
/// PUBLISH packets where it has not sent a PUBACK or PUBCOMP in response, the Server uses a
/// DISCONNECT packet with Reason Code 0x93 (Receive Maximum exceeded)" (3.3.4): with the
/// broker's Receive Maximum 3 (`[mqtt5] receive_maximum`), three QoS 2 PUBLISHes wait for
/// PUBREL; QoS 0 does not count, a PUBCOMP frees one, and one more QoS 1 PUBLISH past the
/// three is refused so.
#[tokio::test]
async fn a_client_past_the_brokers_receive_maximum_is_disconnected_with_0x93() {
    let broker = start_configured(|c| {
        c.mqtt5.receive_maximum = std::num::NonZeroU16::new(3).expect("not 0");
    })
    .await;
    let connect = with_properties("eager", []);
    let (mut raw, ack) = Raw5::connect_with(&broker, connect).await;
    let announced = ack.properties.get(PropertyId::ReceiveMaximum);
    assert_eq!(announced.and_then(|p| p.as_u32()), Some(3));
    for id in 1..=3 {
        publish_qos(&mut raw, QoS::ExactlyOnce, id, "rmx/t").await;
        match raw.recv().await {
            Some(Packet::PubRec(rec)) => assert_eq!(rec.packet_id, pid(id)),
            other => panic!("expected PUBREC, got {other:?}"),
        }
    }
    // Three outstanding (no PUBREL yet): QoS 0 is not flow controlled.
    raw.publish("rmx/t", b"q0", false).await;
    raw.ping().await;
    // PUBREL, PUBCOMP: one slot free again, taken by a fourth QoS 2 PUBLISH.
    raw.send(Packet::PubRel(v5::Ack::success(pid(1)))).await;
    assert!(matches!(raw.recv().await, Some(Packet::PubComp(c)) if c.packet_id == pid(1)));
    publish_qos(&mut raw, QoS::ExactlyOnce, 4, "rmx/t").await;
    assert!(matches!(raw.recv().await, Some(Packet::PubRec(r)) if r.packet_id == pid(4)));
    // Ids 2, 3 and 4 wait for PUBREL: a QoS 1 PUBLISH is one too many.
    publish_qos(&mut raw, QoS::AtLeastOnce, 5, "rmx/t").await;
    raw.expect_disconnect(ReasonCode::ReceiveMaximumExceeded)
        .await;

    // A QoS 1 stream within the window, acknowledged as it goes, never counts past it.
    let (mut steady, _) = Raw5::connect(&broker, "steady", true, 0).await;
    for id in 1..=10 {
        publish_qos(&mut steady, QoS::AtLeastOnce, id, "rmx/t").await;
        assert!(matches!(steady.recv().await, Some(Packet::PubAck(a)) if a.packet_id == pid(id)));
    }
    broker.shutdown().await;
}

/// MQTT 3.1.1 has no Receive Maximum: a client with more QoS 2 PUBLISHes waiting for
/// PUBREL than the broker's MQTT 5 Receive Maximum stays connected.
#[tokio::test]
async fn a_311_client_past_the_window_is_not_disconnected() {
    let broker = start_configured(|c| {
        c.mqtt5.receive_maximum = std::num::NonZeroU16::new(3).expect("not 0");
    })
    .await;
    let mut raw = Raw::connect(&broker, "eager311", 30).await;
    for id in 1..=5u16 {
        let publish = mqgate_codec::Publish::new(
            QoS::ExactlyOnce,
            Some(pid(id)),
            ByteStr::from_static("rmx/t"),
            Bytes::from_static(b"m"),
        );
        raw.send(mqgate_codec::Packet::Publish(publish)).await;
        match raw.recv().await {
            Some(mqgate_codec::Packet::PubRec(rec)) => assert_eq!(rec, pid(id)),
            other => panic!("expected PUBREC, got {other:?}"),
        }
    }
    raw.send(mqgate_codec::Packet::PingReq).await;
    assert_eq!(raw.recv().await, Some(mqgate_codec::Packet::PingResp));
    broker.shutdown().await;
}

/// A PUBREC with a Reason Code of 0x80 or greater ends the QoS 2 flow: the sender
/// treats the packet id as free and sends no PUBREL [MQTT-4.3.3-4, 4.3.3 of MQTT 5]. The
/// broker sends the next message under the freed window slot, and no PUBREL for it.
#[tokio::test]
async fn a_refusing_pubrec_ends_the_flow_without_pubrel() {
    let broker = start().await;
    let connect = with_properties(
        "refuser",
        [Property::TwoByteInt(PropertyId::ReceiveMaximum, 1)],
    );
    let (mut raw, _) = Raw5::connect_with(&broker, connect).await;
    raw.subscribe(1, &[("rr/t", qos(QoS::ExactlyOnce))], None)
        .await;
    let mut publisher = Client::connect(&broker, "rrpub", true).await;
    for n in 0..2u8 {
        publisher
            .client
            .publish("rr/t", rumqttc::QoS::ExactlyOnce, false, vec![n])
            .await
            .expect("queued");
    }
    publisher.acked(2).await;
    let first = raw.publish_in().await;
    assert_eq!(&first.payload[..], &[0u8]);
    raw.send(Packet::PubRec(v5::Ack {
        packet_id: first.packet_id.expect("QoS 2"),
        reason: ReasonCode::QuotaExceeded,
        properties: Properties::new(),
    }))
    .await;
    // The next packet is the second message, not a PUBREL.
    let second = raw.publish_in().await;
    assert_eq!(&second.payload[..], &[1u8]);
    raw.ping().await;
    broker.shutdown().await;
}

/// "Where a Packet is too large to send, the Server MUST discard it without sending it and
/// then behave as if it had completed sending that Application Message" [MQTT-3.1.2-25]:
/// with the client's Maximum Packet Size 64 and Receive Maximum 1, a QoS 1 message of 100
/// bytes is not sent and the next one is.
#[tokio::test]
async fn a_publish_larger_than_the_client_accepts_is_skipped() {
    let broker = start().await;
    let connect = with_properties(
        "small",
        [
            Property::FourByteInt(PropertyId::MaximumPacketSize, 64),
            Property::TwoByteInt(PropertyId::ReceiveMaximum, 1),
        ],
    );
    let (mut raw, _) = Raw5::connect_with(&broker, connect).await;
    raw.subscribe(1, &[("big/t", qos(QoS::AtLeastOnce))], None)
        .await;
    let mut publisher = Client::connect(&broker, "bigpub", true).await;
    for payload in [vec![1u8; 100], vec![2u8; 4]] {
        publisher
            .client
            .publish("big/t", rumqttc::QoS::AtLeastOnce, false, payload)
            .await
            .expect("queued");
    }
    publisher.acked(2).await;
    let got = raw.publish_in().await;
    assert_eq!(&got.payload[..], &[2u8; 4]);
    raw.ping().await;
    broker.shutdown().await;
}

// ------------------------------------------------------------------ acknowledgement reasons

/// A broker with `[auth]` and a client of its limited AccessKey (publish `shop/#`,
/// subscribe `shop/+/cmd`) connected with `properties`.
async fn limited_client(properties: Properties) -> (BrokerHandle, Raw5) {
    use auth_support::{INSTANCE, LIMITED_AK, LIMITED_SECRET};
    let (store, _registry) = auth_support::seeded_store();
    let broker = auth_support::start(auth_support::config(""), Some(store)).await;
    let id = "GID_a@@@limited";
    let connect = v5::Connect {
        clean_start: true,
        keep_alive: 30,
        client_id: ByteStr::from_static(id),
        username: Some(
            ByteStr::try_from(format!("Signature|{LIMITED_AK}|{INSTANCE}")).expect("name"),
        ),
        password: Some(Bytes::from(mqgate_auth::sign_client_id(LIMITED_SECRET, id))),
        properties,
        ..v5::Connect::default()
    };
    let (raw, ack) = Raw5::connect_with(&broker, connect).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    (broker, raw)
}

/// The Reason String among `properties`.
fn reason_string(properties: &Properties) -> Option<&str> {
    properties
        .get(PropertyId::ReasonString)
        .and_then(|p| p.as_str())
}

impl Raw5 {
    /// Publishes `payload` to `topic` at `qos` (1 or 2) with packet id `id`; returns the
    /// PUBACK or PUBREC.
    async fn publish_acked(&mut self, id: u16, qos: QoS, topic: &str) -> v5::Ack {
        let p = Publish::new(
            qos,
            Some(pid(id)),
            ByteStr::try_from(topic).expect("topic"),
            Bytes::from_static(b"x"),
        );
        self.send(Packet::Publish(p)).await;
        match (qos, self.recv().await) {
            (QoS::AtLeastOnce, Some(Packet::PubAck(ack)))
            | (QoS::ExactlyOnce, Some(Packet::PubRec(ack))) => {
                assert_eq!(ack.packet_id, pid(id));
                ack
            }
            (_, other) => panic!("expected the acknowledgement of {qos:?}, got {other:?}"),
        }
    }

    /// Sends PUBREL `id` and expects PUBCOMP 0x00.
    async fn release(&mut self, id: u16) {
        self.send(Packet::PubRel(v5::Ack::success(pid(id)))).await;
        match self.recv().await {
            Some(Packet::PubComp(ack)) => {
                assert_eq!(ack.packet_id, pid(id));
                assert_eq!(ack.reason, ReasonCode::Success);
            }
            other => panic!("expected PUBCOMP, got {other:?}"),
        }
    }
}

/// PUBACK and PUBREC reason 0x10 (No matching subscribers): "The message is accepted but
/// there are no subscribers" (3.4.2.1, 3.5.2.1; "The Client or Server sending the PUBACK
/// packet MUST use one of the PUBACK Reason Codes" [MQTT-3.4.2-1]). Once someone subscribes,
/// 0x00; 0x10 is no error, so the QoS 2 flow goes on to PUBCOMP.
#[tokio::test]
async fn an_acknowledgement_says_when_nobody_subscribed() {
    let broker = start().await;
    let (mut raw, _) = Raw5::connect(&broker, "lonely", true, 0).await;
    let ack = raw.publish_acked(1, QoS::AtLeastOnce, "empty/room").await;
    assert_eq!(ack.reason, ReasonCode::NoMatchingSubscribers);
    let ack = raw.publish_acked(2, QoS::ExactlyOnce, "empty/room").await;
    assert_eq!(ack.reason, ReasonCode::NoMatchingSubscribers);
    raw.release(2).await;
    let (mut listener, _) = Raw5::connect(&broker, "listener", true, 0).await;
    listener
        .subscribe(1, &[("empty/+", qos(QoS::AtMostOnce))], None)
        .await;
    let ack = raw.publish_acked(3, QoS::AtLeastOnce, "empty/room").await;
    assert_eq!(ack.reason, ReasonCode::Success);
    assert_eq!(&listener.publish_in().await.payload[..], b"x");
    broker.shutdown().await;
}

/// A PUBLISH to a topic the client may not publish to is acknowledged with 0x87 (Not
/// authorized) and not delivered (3.4.2.1, 3.5.2.1, [MQTT-3.4.2-1]); a QoS 2 one ends with
/// its PUBREC (4.3.3: a PUBREC of 0x80 or above ends the flow), so its packet id is free for
/// the next PUBLISH, which is delivered.
#[tokio::test]
async fn an_unauthorized_publish_is_acknowledged_with_0x87() {
    let (broker, mut raw) = limited_client(Properties::new()).await;
    raw.subscribe(1, &[("shop/1/cmd", qos(QoS::AtMostOnce))], None)
        .await;
    let ack = raw.publish_acked(1, QoS::AtLeastOnce, "other/t").await;
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    assert_eq!(
        reason_string(&ack.properties),
        Some("not authorized to publish to this topic")
    );
    let ack = raw.publish_acked(2, QoS::ExactlyOnce, "other/t").await;
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    // The same id again: a new message, routed (not taken for a resend of the refused one).
    let ack = raw.publish_acked(2, QoS::ExactlyOnce, "shop/1/cmd").await;
    assert_eq!(ack.reason, ReasonCode::Success);
    let got = raw.publish_in().await;
    assert_eq!(got.topic, "shop/1/cmd");
    raw.release(2).await;
    broker.shutdown().await;
}

/// "If the value of Request Problem Information is 0, the Server MAY return a Reason String
/// or User Properties on a CONNACK or DISCONNECT packet, but MUST NOT send a Reason String or
/// User Properties on any packet other than PUBLISH, CONNACK, or DISCONNECT" [MQTT-3.1.2-29]:
/// its refusals carry their reason codes without words; a client that did not set it gets
/// them with a Reason String (3.4.2.2.2, 3.9.2.1.1).
#[tokio::test]
async fn request_problem_information_0_keeps_reason_strings_off_acknowledgements() {
    for (asked, words) in [(None, true), (Some(0), false)] {
        let properties = match asked {
            Some(n) => {
                Properties::build([Property::Byte(PropertyId::RequestProblemInformation, n)])
                    .expect("properties")
            }
            None => Properties::new(),
        };
        let (broker, mut raw) = limited_client(properties).await;
        let ack = raw.publish_acked(1, QoS::AtLeastOnce, "other/t").await;
        assert_eq!(ack.reason, ReasonCode::NotAuthorized);
        assert_eq!(reason_string(&ack.properties).is_some(), words, "PUBACK");
        raw.send(Packet::Subscribe(Subscribe {
            packet_id: pid(2),
            properties: Properties::new(),
            filters: vec![Subscription {
                filter: ByteStr::from_static("other/#"),
                options: qos(QoS::AtMostOnce),
            }],
        }))
        .await;
        match raw.recv().await {
            Some(Packet::SubAck(ack)) => {
                assert_eq!(ack.reasons, [ReasonCode::NotAuthorized]);
                assert_eq!(reason_string(&ack.properties).is_some(), words, "SUBACK");
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
        broker.shutdown().await;
    }
}

/// "The Server MAY ... send a Reason String" in its DISCONNECT (3.14.2.2.3): the broker says
/// in words why it closes, whatever Request Problem Information says [MQTT-3.1.2-29 allows
/// it on DISCONNECT].
#[tokio::test]
async fn the_brokers_disconnect_says_why_in_a_reason_string() {
    let broker = start().await;
    let connect = with_properties(
        "wordy",
        [Property::Byte(PropertyId::RequestProblemInformation, 0)],
    );
    let (mut raw, _) = Raw5::connect_with(&broker, connect).await;
    raw.publish_aliased("", 3, b"x").await;
    match raw.recv().await {
        Some(Packet::Disconnect(d)) => {
            assert_eq!(d.reason, ReasonCode::ProtocolError);
            assert_eq!(
                reason_string(&d.properties),
                Some("topic alias used before it was set")
            );
        }
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    broker.shutdown().await;
}

/// Server Keep Alive: "If the Server sends a Server Keep Alive on the CONNACK packet, the
/// Client MUST use this value instead of the Keep Alive value the Client sent on CONNECT"
/// [MQTT-3.2.2-21], and the broker holds the client to it (a silent client is closed after
/// 1.5 times it with DISCONNECT 0x8D, 3.1.2.10); a client asking
/// for no more than `[mqtt5] max_keep_alive` keeps its own: "If the Server does not send the
/// Server Keep Alive, the Server MUST use the Keep Alive value set by the Client on CONNECT"
/// [MQTT-3.2.2-22].
#[tokio::test]
async fn server_keep_alive_bounds_the_clients_keep_alive() {
    let mut config = BrokerConfig::ephemeral();
    config.mqtt5.max_keep_alive = 1;
    let broker = start_with(config).await;
    let keep_alive = |raw: &v5::ConnAck| {
        raw.properties
            .get(PropertyId::ServerKeepAlive)
            .and_then(|p| p.as_u32())
    };
    for (id, asked) in [("ka-none", 0), ("ka-long", 600)] {
        let connect = v5::Connect {
            clean_start: true,
            keep_alive: asked,
            client_id: ByteStr::from_static(id),
            ..v5::Connect::default()
        };
        let (mut raw, ack) = Raw5::connect_with(&broker, connect).await;
        assert_eq!(keep_alive(&ack), Some(1), "{id}");
        raw.expect_disconnect(ReasonCode::KeepAliveTimeout).await;
    }
    let connect = v5::Connect {
        clean_start: true,
        keep_alive: 1,
        client_id: ByteStr::from_static("ka-short"),
        ..v5::Connect::default()
    };
    let (_raw, ack) = Raw5::connect_with(&broker, connect).await;
    assert_eq!(keep_alive(&ack), None, "its own keep-alive stands");
    broker.shutdown().await;
}

/// Response Information: "If the Request Response Information is 0, the Server MUST NOT
/// return Response Information" [MQTT-3.1.2-28]; asked with 1, the CONNACK carries the
/// configured prefix and the client id (3.2.2.3.15).
#[tokio::test]
async fn response_information_is_given_only_when_asked_for() {
    let mut config = BrokerConfig::ephemeral();
    config.mqtt5.response_information = Some("reply/".to_owned());
    let broker = start_with(config).await;
    let info = |ack: &v5::ConnAck| {
        ack.properties
            .get(PropertyId::ResponseInformation)
            .and_then(|p| p.as_str().map(str::to_owned))
    };
    let asking = with_properties(
        "asker",
        [Property::Byte(PropertyId::RequestResponseInformation, 1)],
    );
    let (_a, ack) = Raw5::connect_with(&broker, asking).await;
    assert_eq!(info(&ack).as_deref(), Some("reply/asker"));
    let not_asking = with_properties(
        "quiet",
        [Property::Byte(PropertyId::RequestResponseInformation, 0)],
    );
    let (_b, ack) = Raw5::connect_with(&broker, not_asking).await;
    assert_eq!(info(&ack), None);
    let (_c, ack) = Raw5::connect_with(&broker, with_properties("plain", [])).await;
    assert_eq!(info(&ack), None, "absent counts as 0");
    broker.shutdown().await;
}

// ------------------------------------------------------------------ retained expiry, No Local offline

/// A retained message's own Message Expiry Interval holds at subscribe too: "If the
/// Message Expiry Interval has passed and the Server has not managed to start onward
/// delivery to a matching subscriber, then it MUST delete the copy of the message for that
/// subscriber" [MQTT-3.3.2-5], and one still alive carries "the received value minus the
/// time that the message has been waiting in the Server" [MQTT-3.3.2-6] (3.3.2.3.3: a
/// retained message is no longer sent once its interval passed).
#[tokio::test]
async fn an_expired_retained_message_is_not_sent_at_subscribe() {
    let broker = start().await;
    let (mut publisher, _) = Raw5::connect(&broker, "ret-exp-pub", true, 0).await;
    for (topic, expiry) in [("rexp/gone", 1), ("rexp/kept", 100)] {
        let mut p = Publish::new(
            QoS::AtMostOnce,
            None,
            ByteStr::from_static(topic),
            Bytes::from_static(b"r"),
        );
        p.retain = true;
        p.properties.message_expiry_interval = Some(expiry);
        publisher.send(Packet::Publish(p)).await;
    }
    publisher.ping().await;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let (mut late, _) = Raw5::connect(&broker, "ret-exp-sub", true, 0).await;
    late.subscribe(1, &[("rexp/#", qos(QoS::AtMostOnce))], None)
        .await;
    let got = late.publish_in().await;
    assert_eq!(got.topic, "rexp/kept");
    let left = got.properties.message_expiry_interval.expect("expiry");
    assert!((95..100).contains(&left), "{left} s left of 100");
    late.expect_nothing(Duration::from_millis(300)).await;
    // A 3.1.1 subscriber does not get the expired one either.
    let mut old = Client::connect(&broker, "ret-exp-v3", true).await;
    subscribe(&mut old, "rexp/gone", rumqttc::QoS::AtMostOnce).await;
    old.expect_nothing(Duration::from_millis(300)).await;
    broker.shutdown().await;
}

/// No Local holds for a session that is offline too: "Application Messages MUST NOT be
/// forwarded to a connection with a ClientID equal to the ClientID of the publishing
/// connection" [MQTT-3.8.3-3]; the client's own will, published while its session waits
/// offline, is not queued for it (another subscriber gets it).
#[tokio::test]
async fn no_local_keeps_a_clients_own_will_out_of_its_offline_session() {
    let broker = start().await;
    let mut watcher = Client::connect(&broker, "nl-watcher", true).await;
    subscribe(&mut watcher, "nlw/#", rumqttc::QoS::AtLeastOnce).await;
    let mut connect = with_properties(
        "nl-self",
        [Property::FourByteInt(
            PropertyId::SessionExpiryInterval,
            300,
        )],
    );
    connect.will = Some(v5::Will {
        topic: ByteStr::from_static("nlw/gone"),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::new(),
    });
    let (mut me, _) = Raw5::connect_with(&broker, connect).await;
    let options = SubscriptionOptions {
        no_local: true,
        ..qos(QoS::AtLeastOnce)
    };
    me.subscribe(1, &[("nlw/#", options)], None).await;
    me.send(Packet::Disconnect(v5::ReasonAndProperties {
        reason: ReasonCode::DisconnectWithWillMessage,
        properties: Properties::new(),
    }))
    .await;
    assert_eq!(me.recv().await, None, "closed after DISCONNECT");
    assert_eq!(watcher.next().await.topic, "nlw/gone", "the will went out");
    let (mut back, present) = Raw5::connect(&broker, "nl-self", false, 300).await;
    assert!(present);
    back.expect_nothing(Duration::from_millis(500)).await;
    broker.shutdown().await;
}

// ------------------------------------------------------------------ enhanced authentication

/// A challenge method for the tests: the CONNECT (or re-authenticating AUTH) must carry
/// `hello`, the broker challenges with `nonce`, the answer must be `nonce+secret`; success
/// says `welcome`.
struct Challenge;

struct ChallengeExchange {
    challenged: bool,
}

impl mqgate_broker::EnhancedAuth for Challenge {
    fn method(&self) -> &str {
        "challenge"
    }

    fn start(&self, _client_id: &str) -> Box<dyn mqgate_broker::AuthExchange> {
        Box::new(ChallengeExchange { challenged: false })
    }
}

impl mqgate_broker::AuthExchange for ChallengeExchange {
    fn step(&mut self, data: Option<&[u8]>) -> mqgate_broker::AuthStep {
        use mqgate_broker::AuthStep;
        match (self.challenged, data) {
            (false, Some(b"hello")) => {
                self.challenged = true;
                AuthStep::Continue(Some(Bytes::from_static(b"nonce")))
            }
            (true, Some(b"nonce+secret")) => {
                AuthStep::Success(Some(Bytes::from_static(b"welcome")))
            }
            _ => AuthStep::Failure,
        }
    }
}

async fn start_with_challenge() -> BrokerHandle {
    mqgate_broker::Broker::builder()
        .config(BrokerConfig::ephemeral())
        .enhanced_auth(Challenge)
        .build()
        .start()
        .await
        .expect("broker starts")
}

/// Authentication Method `method` and Authentication Data `data`.
fn auth_properties(method: &'static str, data: &'static [u8]) -> Properties {
    Properties::build([
        Property::Utf8(PropertyId::AuthenticationMethod, method),
        Property::Binary(PropertyId::AuthenticationData, data),
    ])
    .expect("properties")
}

fn auth_data(properties: &Properties) -> Option<Vec<u8>> {
    match properties.get(PropertyId::AuthenticationData) {
        Some(Property::Binary(_, data)) => Some(data.to_vec()),
        _ => None,
    }
}

impl Raw5 {
    /// Sends AUTH `reason` with `data` under the method `challenge`.
    async fn auth(&mut self, reason: ReasonCode, data: &'static [u8]) {
        self.send(Packet::Auth(v5::ReasonAndProperties {
            reason,
            properties: auth_properties("challenge", data),
        }))
        .await;
    }

    /// Connects as `id` with keep-alive `keep_alive` through the `challenge` method,
    /// answering its challenge right; expects success.
    async fn connect_challenged(broker: &BrokerHandle, id: &'static str, keep_alive: u16) -> Raw5 {
        let mut connect = with_properties(id, []);
        connect.keep_alive = keep_alive;
        connect.properties = auth_properties("challenge", b"hello");
        let mut raw = Raw5::open(broker).await;
        raw.send(Packet::Connect(Box::new(connect))).await;
        raw.expect_auth(ReasonCode::ContinueAuthentication, b"nonce")
            .await;
        raw.auth(ReasonCode::ContinueAuthentication, b"nonce+secret")
            .await;
        match raw.recv().await {
            Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason, ReasonCode::Success),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        raw
    }

    /// Expects an AUTH of `reason` under the method `challenge` carrying `data`.
    async fn expect_auth(&mut self, reason: ReasonCode, data: &[u8]) {
        match self.recv().await {
            Some(Packet::Auth(a)) => {
                assert_eq!(a.reason, reason);
                assert_eq!(
                    a.properties
                        .get(PropertyId::AuthenticationMethod)
                        .and_then(|p| p.as_str()),
                    Some("challenge"),
                    "the same method throughout (MQTT-4.12.0-5)"
                );
                assert_eq!(auth_data(&a.properties).as_deref(), Some(data));
            }
            other => panic!("expected AUTH {reason:?}, got {other:?}"),
        }
    }
}

/// Enhanced authentication: "If the Server requires additional information to complete the
/// authentication, it can send an AUTH packet to the Client. This packet MUST contain a
/// Reason Code of 0x18 (Continue authentication)" [MQTT-4.12.0-2]; the client answers with
/// AUTH 0x18 [MQTT-4.12.0-3] under the same method [MQTT-4.12.0-5], and the CONNACK of a
/// success carries the method and its data (4.12). A wrong answer: "The Server can reject
/// the authentication at any point in this process. It MAY send a CONNACK with a Reason
/// Code of 0x80 or above ... and MUST close the Network Connection" [MQTT-4.12.0-4]; a
/// method the broker does not have: CONNACK 0x8C and close [MQTT-4.12.0-1].
#[tokio::test]
async fn enhanced_authentication_exchanges_auth_packets_before_the_connack() {
    let broker = start_with_challenge().await;
    for (answer, accepted) in [(&b"nonce+secret"[..], true), (&b"wrong"[..], false)] {
        let mut raw = Raw5::open(&broker).await;
        let mut connect = with_properties("enhanced", []);
        connect.properties = auth_properties("challenge", b"hello");
        raw.send(Packet::Connect(Box::new(connect))).await;
        raw.expect_auth(ReasonCode::ContinueAuthentication, b"nonce")
            .await;
        raw.send(Packet::Auth(v5::ReasonAndProperties {
            reason: ReasonCode::ContinueAuthentication,
            properties: Properties::build([
                Property::Utf8(PropertyId::AuthenticationMethod, "challenge"),
                Property::Binary(PropertyId::AuthenticationData, answer),
            ])
            .expect("properties"),
        }))
        .await;
        match raw.recv().await {
            Some(Packet::ConnAck(ack)) if accepted => {
                assert_eq!(ack.reason, ReasonCode::Success);
                assert_eq!(
                    ack.properties
                        .get(PropertyId::AuthenticationMethod)
                        .and_then(|p| p.as_str()),
                    Some("challenge")
                );
                assert_eq!(auth_data(&ack.properties).as_deref(), Some(&b"welcome"[..]));
                raw.ping().await;
            }
            Some(Packet::ConnAck(ack)) => {
                assert_eq!(ack.reason, ReasonCode::NotAuthorized);
                assert_eq!(raw.recv().await, None, "closed after the refusal");
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }
    let mut unknown = with_properties("unknown-method", []);
    unknown.properties = auth_properties("kerberos", b"x");
    let (mut raw, ack) = Raw5::connect_with(&broker, unknown).await;
    assert_eq!(ack.reason, ReasonCode::BadAuthenticationMethod);
    assert_eq!(raw.recv().await, None, "closed after the refusal");
    broker.shutdown().await;
}

/// Re-authentication: "If the Client supplied an Authentication Method in the CONNECT packet
/// it can initiate a re-authentication at any time after receiving a CONNACK. It does this by
/// sending an AUTH packet with a Reason Code of 0x19 (Re-authentication). The Client MUST
/// set the Authentication Method to the same value" [MQTT-4.12.1-1]; the exchange ends with
/// AUTH 0x00, and the connection goes on. "If the re-authentication fails, the Client or
/// Server SHOULD send DISCONNECT with an appropriate Reason Code" [MQTT-4.12.1-2]: 0x87.
/// A client that connected without a method and sends AUTH breaks the protocol
/// [MQTT-4.12.0-6]: DISCONNECT 0x82.
#[tokio::test]
async fn re_authentication_runs_the_exchange_again_while_connected() {
    let broker = start_with_challenge().await;
    let mut raw = Raw5::connect_challenged(&broker, "reauth", 30).await;
    raw.auth(ReasonCode::ReAuthenticate, b"hello").await;
    raw.expect_auth(ReasonCode::ContinueAuthentication, b"nonce")
        .await;
    raw.auth(ReasonCode::ContinueAuthentication, b"nonce+secret")
        .await;
    raw.expect_auth(ReasonCode::Success, b"welcome").await;
    raw.ping().await;
    raw.auth(ReasonCode::ReAuthenticate, b"hello").await;
    raw.expect_auth(ReasonCode::ContinueAuthentication, b"nonce")
        .await;
    raw.auth(ReasonCode::ContinueAuthentication, b"guess").await;
    raw.expect_disconnect(ReasonCode::NotAuthorized).await;
    let (mut plain, _) = Raw5::connect(&broker, "no-method", true, 0).await;
    plain.auth(ReasonCode::ReAuthenticate, b"hello").await;
    plain.expect_disconnect(ReasonCode::ProtocolError).await;
    broker.shutdown().await;
}

/// An AUTH counts for the keep-alive like any other control packet: the broker closes a
/// client only if it sends nothing "within one and a half times the Keep Alive time period"
/// (3.1.2.10). A client with a keep-alive of 1 s that sends only AUTH packets, 400 ms apart,
/// for longer than 1.5 s stays connected.
#[tokio::test]
async fn auth_packets_keep_the_connection_alive() {
    let broker = start_with_challenge().await;
    let mut raw = Raw5::connect_challenged(&broker, "reauth-alive", 1).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        raw.auth(ReasonCode::ReAuthenticate, b"hello").await;
        raw.expect_auth(ReasonCode::ContinueAuthentication, b"nonce")
            .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        raw.auth(ReasonCode::ContinueAuthentication, b"nonce+secret")
            .await;
        raw.expect_auth(ReasonCode::Success, b"welcome").await;
    }
    raw.ping().await;
    broker.shutdown().await;
}

// ------------------------------------------------------------------ shared subscriptions

/// Reads PUBLISHes from `raw` until nothing more comes for a while (at most `max`).
async fn drain_publishes(raw: &mut Raw5, max: usize) -> Vec<Publish> {
    let mut got = Vec::new();
    while got.len() < max {
        match raw.recv_within(Duration::from_millis(500)).await {
            Ok(Some(Packet::Publish(p))) => got.push(p),
            Ok(other) => panic!("expected PUBLISH, got {other:?}"),
            Err(()) => break,
        }
    }
    got
}

/// Shared subscriptions (MQTT 5.0 4.8.2): "each message matching the Shared Subscription is
/// sent to only one of the Sessions that are subscribed", while the CONNACK announces
/// "Shared Subscription Available" (3.2.2.3.15) and the SUBACK grants the QoS asked for
/// [MQTT-3.8.4-7].
#[tokio::test]
async fn a_shared_subscription_gives_each_message_to_one_member() {
    let broker = start().await;
    let mut members = Vec::new();
    for id in ["member-a", "member-b"] {
        let (mut raw, _) = Raw5::connect(&broker, id, true, 0).await;
        let reasons = raw
            .subscribe(
                1,
                &[("$share/workers/jobs/+", qos(QoS::AtLeastOnce))],
                Some(5),
            )
            .await;
        assert_eq!(reasons, [ReasonCode::GrantedQoS1]);
        members.push(raw);
    }
    let publisher = Client5::connect(&broker, "job-source").await;
    for n in 0..10u8 {
        publisher
            .client
            .publish(
                "jobs/x",
                rumqttc::v5::mqttbytes::QoS::AtMostOnce,
                false,
                vec![n],
            )
            .await
            .expect("queued");
    }
    let mut all = Vec::new();
    for member in &mut members {
        let got = drain_publishes(member, 20).await;
        assert!(!got.is_empty(), "every member gets a share");
        for p in got {
            // The shared subscription's identifier comes with each (MQTT-3.3.4-3).
            assert_eq!(
                p.properties.subscription_identifiers,
                [NonZeroU32::MIN.saturating_add(4)]
            );
            all.push(p.payload.to_vec());
        }
    }
    all.sort();
    let sent: Vec<Vec<u8>> = (0..10u8).map(|n| vec![n]).collect();
    assert_eq!(all, sent, "each message once, to one member");
    publisher.task.abort();
    broker.shutdown().await;
}

/// An MQTT 5 member and a 3.1.1 member of the same `$share/{ShareName}/{filter}` form one
/// group (the broker's shared groups are the same for both protocol versions): "each message
/// matching the Shared Subscription is sent to only one of the Sessions" (4.8.2).
#[tokio::test]
async fn mqtt5_and_v311_members_share_one_group() {
    let broker = start().await;
    let (mut v5_member, _) = Raw5::connect(&broker, "mixed-v5", true, 0).await;
    v5_member
        .subscribe(1, &[("$share/mixed/mx/t", qos(QoS::AtMostOnce))], None)
        .await;
    let mut v3_member = Client::connect(&broker, "mixed-v3", true).await;
    subscribe(
        &mut v3_member,
        "$share/mixed/mx/t",
        rumqttc::QoS::AtMostOnce,
    )
    .await;
    let (mut publisher, _) = Raw5::connect(&broker, "mixed-pub", true, 0).await;
    const PAYLOADS: [&[u8]; 6] = [b"0", b"1", b"2", b"3", b"4", b"5"];
    for payload in PAYLOADS {
        publisher.publish("mx/t", payload, false).await;
    }
    publisher.ping().await;
    let mut all: Vec<Vec<u8>> = drain_publishes(&mut v5_member, 10)
        .await
        .into_iter()
        .map(|p| p.payload.to_vec())
        .collect();
    let v5_share = all.len();
    while let Ok(Some(p)) = timeout(Duration::from_millis(500), v3_member.publishes.recv()).await {
        all.push(p.payload.to_vec());
    }
    assert!(
        v5_share > 0 && all.len() > v5_share,
        "both members get a share"
    );
    all.sort();
    assert_eq!(all, PAYLOADS.map(<[u8]>::to_vec), "each message once");
    broker.shutdown().await;
}

/// "It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription"
/// [MQTT-3.8.3-4]: the broker closes with DISCONNECT 0x82 (4.13).
#[tokio::test]
async fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let broker = start().await;
    let (mut raw, _) = Raw5::connect(&broker, "nl-share", true, 0).await;
    let options = SubscriptionOptions {
        no_local: true,
        ..qos(QoS::AtMostOnce)
    };
    raw.send(Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: Properties::new(),
        filters: vec![Subscription {
            filter: ByteStr::from_static("$share/g/nl/t"),
            options,
        }],
    }))
    .await;
    raw.expect_disconnect(ReasonCode::ProtocolError).await;
    broker.shutdown().await;
}

/// Retained messages are not sent when a Shared Subscription is made (MQTT 5.0 4.8.2, and
/// 3.3.1.3: retained messages are sent "when the subscription is established" only for
/// non-shared ones); a plain subscription to the same topic does get it [MQTT-3.3.1-9].
#[tokio::test]
async fn retained_messages_are_not_sent_on_a_shared_subscription() {
    let broker = start().await;
    let (mut publisher, _) = Raw5::connect(&broker, "ret-pub", true, 0).await;
    publisher.publish("shr/r", b"kept", true).await;
    publisher.ping().await;
    let (mut member, _) = Raw5::connect(&broker, "ret-member", true, 0).await;
    let reasons = member
        .subscribe(1, &[("$share/g/shr/r", qos(QoS::AtMostOnce))], None)
        .await;
    assert_eq!(reasons, [ReasonCode::Success]);
    member.expect_nothing(Duration::from_millis(300)).await;
    member
        .subscribe(2, &[("shr/r", qos(QoS::AtMostOnce))], None)
        .await;
    let got = member.publish_in().await;
    assert!(got.retain);
    assert_eq!(&got.payload[..], b"kept");
    broker.shutdown().await;
}

// ------------------------------------------------------------------ DISCONNECT and the will

/// "On receipt of DISCONNECT with a Reason Code of 0x00 (Success) the Server MUST discard
/// any Will Message associated with the current Connection without publishing it"
/// [MQTT-3.14.4-3]; with 0x04 (Disconnect with Will Message) "the Client wishes to
/// disconnect but requires that the Server also publishes its Will Message" (3.14.2.1).
#[tokio::test]
async fn disconnect_with_0x04_publishes_the_will_and_0x00_does_not() {
    let broker = start().await;
    let mut watcher = Client::connect(&broker, "watcher", true).await;
    subscribe(&mut watcher, "will/#", rumqttc::QoS::AtLeastOnce).await;
    for (id, reason, published) in [
        ("normal", ReasonCode::Success, false),
        ("with-will", ReasonCode::DisconnectWithWillMessage, true),
    ] {
        let connect = v5::Connect {
            clean_start: true,
            keep_alive: 30,
            client_id: ByteStr::try_from(id).expect("id"),
            will: Some(v5::Will {
                topic: ByteStr::try_from(format!("will/{id}")).expect("topic"),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Properties::new(),
            }),
            ..v5::Connect::default()
        };
        let (mut raw, ack) = Raw5::connect_with(&broker, connect).await;
        assert_eq!(ack.reason, ReasonCode::Success);
        raw.send(Packet::Disconnect(v5::ReasonAndProperties {
            reason,
            properties: Properties::new(),
        }))
        .await;
        assert_eq!(raw.recv().await, None, "closed after DISCONNECT");
        if published {
            let got = watcher.next().await;
            assert_eq!(got.topic, format!("will/{id}"));
        } else {
            watcher.expect_nothing(Duration::from_millis(300)).await;
        }
    }
    broker.shutdown().await;
}

/// "The Server MUST send ... unaltered" the will's Payload Format Indicator, Content Type,
/// Response Topic, Correlation Data and User Properties as a PUBLISH's [MQTT-3.3.2-4, -20,
/// -15, -16, -17], and its Message Expiry Interval is "the lifetime of the Will Message ...
/// when the Server publishes" it (3.1.3.2.4): rumqttc's v5 will, its client gone abruptly.
#[tokio::test]
async fn a_will_carries_its_properties_and_expiry() {
    use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties};
    let broker = start().await;
    let mut watcher = Client5::connect(&broker, "will-watcher").await;
    watcher
        .subscribe("wprops/#", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await;
    let addr = tcp_addr(&broker);
    let mut options = MqttOptions::new("will-props", addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let properties = LastWillProperties {
        delay_interval: None,
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(100),
        content_type: Some("text/plain".into()),
        response_topic: Some("wprops/reply".into()),
        correlation_data: Some(Bytes::from_static(b"\x07")),
        user_properties: vec![("z".into(), "1".into()), ("y".into(), "2".into())],
    };
    options.set_last_will(LastWill::new(
        "wprops/gone",
        "bye",
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        false,
        Some(properties),
    ));
    let leaving = Client5::with_options(options).await;
    drop(leaving); // the socket closes without DISCONNECT
    let got = watcher.next().await;
    assert_eq!(&got.payload[..], b"bye");
    let p = got.properties.expect("will properties forwarded");
    assert_eq!(p.payload_format_indicator, Some(1));
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.response_topic.as_deref(), Some("wprops/reply"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"\x07"[..]));
    assert_eq!(
        p.user_properties,
        vec![
            ("z".to_string(), "1".to_string()),
            ("y".to_string(), "2".to_string())
        ]
    );
    let left = p.message_expiry_interval.expect("expiry forwarded");
    assert!((95..=100).contains(&left), "{left} s left of 100");
    broker.shutdown().await;
}

/// A CONNECT as `id` with a will on `will/{id}` (QoS 1) delayed `delay` seconds, Clean Start
/// `clean` and the Session Expiry Interval `expiry`.
fn delayed_will(id: &'static str, clean: bool, expiry: u32, delay: u32) -> v5::Connect {
    let mut connect = with_properties(
        id,
        [Property::FourByteInt(
            PropertyId::SessionExpiryInterval,
            expiry,
        )],
    );
    connect.clean_start = clean;
    connect.will = Some(v5::Will {
        topic: ByteStr::try_from(format!("will/{id}")).expect("topic"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::build([Property::FourByteInt(
            PropertyId::WillDelayInterval,
            delay,
        )])
        .expect("properties"),
    });
    connect
}

/// "The Server delays publishing the Client's Will Message until the Will Delay Interval has
/// passed or the Session ends, whichever happens first. If a new Network Connection to this
/// Session is made before the Will Delay Interval has passed, the Server MUST NOT send the
/// Will Message" [MQTT-3.1.3-9]: a will of 1 s waits that long, and one whose session
/// resumes within it is never sent.
#[tokio::test]
async fn a_delayed_will_waits_and_is_not_sent_if_the_session_resumes() {
    let broker = start().await;
    let mut watcher = Client::connect(&broker, "delay-watcher", true).await;
    subscribe(&mut watcher, "will/#", rumqttc::QoS::AtLeastOnce).await;
    // Resumed within the delay: never sent.
    let (raw, ack) = Raw5::connect_with(&broker, delayed_will("wd-back", true, 60, 1)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    drop(raw);
    let (mut back, ack) = Raw5::connect_with(&broker, delayed_will("wd-back", false, 60, 1)).await;
    assert!(ack.session_present);
    watcher.expect_nothing(Duration::from_millis(1_800)).await;
    back.ping().await;
    // Not resumed: sent once the delay passed, not before.
    let (raw, _) = Raw5::connect_with(&broker, delayed_will("wd-late", true, 60, 1)).await;
    drop(raw);
    watcher.expect_nothing(Duration::from_millis(500)).await;
    let got = watcher.next().await;
    assert_eq!(got.topic, "will/wd-late");
    broker.shutdown().await;
}

/// The will is published when its session ends before the Will Delay Interval passed
/// [MQTT-3.1.2-8]: a Session Expiry Interval of 1 s ends it after 1 s (not at once, not after
/// the 60 s delay), and a reconnection with Clean Start 1 ends it at once (3.1.2.4).
#[tokio::test]
async fn a_delayed_will_is_sent_when_its_session_ends_first() {
    let broker = start().await;
    let mut watcher = Client::connect(&broker, "end-watcher", true).await;
    subscribe(&mut watcher, "will/#", rumqttc::QoS::AtLeastOnce).await;
    let (raw, _) = Raw5::connect_with(&broker, delayed_will("wd-expires", true, 1, 60)).await;
    drop(raw);
    watcher.expect_nothing(Duration::from_millis(500)).await;
    let got = watcher.next().await;
    assert_eq!(got.topic, "will/wd-expires");
    let (raw, _) = Raw5::connect_with(&broker, delayed_will("wd-clean", true, 60, 60)).await;
    drop(raw);
    watcher.expect_nothing(Duration::from_millis(300)).await;
    let (mut again, _) = Raw5::connect_with(&broker, delayed_will("wd-clean", true, 60, 60)).await;
    let got = watcher.next().await;
    assert_eq!(got.topic, "will/wd-clean");
    again.ping().await;
    broker.shutdown().await;
}

/// Polls the store's waiting wills until `done` holds for them (bounded).
async fn wills_until(store: &Arc<dyn Store>, done: impl Fn(&[mqgate_store::StoredWill]) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let wills = store.load_wills().expect("load wills");
        if done(&wills) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "wills stayed {wills:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A will waiting for its Will Delay Interval outlives a restart of the broker: it is still
/// published when due [MQTT-3.1.2-8], and still never sent if its session resumes first
/// [MQTT-3.1.3-9]; either way it then leaves the store.
#[tokio::test]
async fn a_delayed_will_survives_a_restart() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let broker = start_with_store(BrokerConfig::ephemeral(), store.clone()).await;
    // A persistent watcher: a will published before it is back waits in its session.
    let mut watcher = Client::connect(&broker, "restart-watcher", false).await;
    subscribe(&mut watcher, "will/#", rumqttc::QoS::AtLeastOnce).await;
    watcher.disconnect().await;
    let (raw, _) = Raw5::connect_with(&broker, delayed_will("wr-due", true, 60, 2)).await;
    drop(raw);
    let (raw, _) = Raw5::connect_with(&broker, delayed_will("wr-back", true, 60, 60)).await;
    drop(raw);
    wills_until(&store, |w| w.len() == 2).await;
    broker.shutdown().await;
    assert_eq!(
        store.load_wills().expect("load").len(),
        2,
        "kept at shutdown"
    );

    let broker = start_with_store(BrokerConfig::ephemeral(), store.clone()).await;
    let mut watcher = Client::connect(&broker, "restart-watcher", false).await;
    let (mut back, ack) = Raw5::connect_with(&broker, delayed_will("wr-back", false, 60, 60)).await;
    assert!(ack.session_present);
    let got = watcher.next().await;
    assert_eq!(got.topic, "will/wr-due", "the due will, and only it");
    assert_eq!(&got.payload[..], b"gone");
    watcher.expect_nothing(Duration::from_millis(500)).await;
    wills_until(&store, <[_]>::is_empty).await;
    back.ping().await;
    broker.shutdown().await;
}

// ------------------------------------------------------------------ session expiry

/// "If the Session Expiry Interval is absent the value 0 is used. If it is set to 0, or is
/// absent, the Session ends when the Network Connection is closed" (3.1.2.11.2); with an
/// interval above 0 and Clean Start 0 the session is resumed: "If the Server accepts a
/// connection with Clean Start set to 0 and the Server has Session State for the ClientID,
/// it MUST set Session Present in the CONNACK packet to 1" [MQTT-3.2.2-3].
#[tokio::test]
async fn session_expiry_0_ends_the_session_and_above_0_keeps_it() {
    let broker = start().await;
    let (mut raw, present) = Raw5::connect(&broker, "short", false, 0).await;
    assert!(!present);
    raw.subscribe(1, &[("se/t", qos(QoS::AtLeastOnce))], None)
        .await;
    raw.send(Packet::Disconnect(v5::ReasonAndProperties::default()))
        .await;
    assert_eq!(raw.recv().await, None);
    let (_raw, present) = Raw5::connect(&broker, "short", false, 0).await;
    assert!(!present, "expiry 0: the session ended with the connection");

    let (mut raw, _) = Raw5::connect(&broker, "long", false, 600).await;
    raw.subscribe(1, &[("se/t", qos(QoS::AtLeastOnce))], None)
        .await;
    raw.send(Packet::Disconnect(v5::ReasonAndProperties::default()))
        .await;
    assert_eq!(raw.recv().await, None);
    let mut publisher = Client::connect(&broker, "sepub", true).await;
    publisher
        .client
        .publish("se/t", rumqttc::QoS::AtLeastOnce, false, "queued")
        .await
        .expect("queued");
    publisher.acked(1).await;
    let (mut raw, present) = Raw5::connect(&broker, "long", false, 600).await;
    assert!(present, "expiry 600: the session was kept");
    let got = raw.publish_in().await;
    assert_eq!(&got.payload[..], b"queued");
    broker.shutdown().await;
}

/// "The Client and Server MUST store the Session State after the Network Connection is
/// closed if the Session Expiry Interval is greater than 0" [MQTT-3.1.2-23], and no longer
/// than that: once it has passed the session ends, its record leaves the store and a new
/// connection with Clean Start 0 finds none (Session Present 0) [MQTT-3.2.2-2 of MQTT 5].
#[tokio::test]
async fn an_offline_session_ends_when_its_expiry_interval_has_passed() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let broker = start_with_store(BrokerConfig::ephemeral(), store.clone()).await;
    let (mut raw, _) = Raw5::connect(&broker, "brief", true, 1).await;
    raw.subscribe(1, &[("brief/t", qos(QoS::AtLeastOnce))], None)
        .await;
    raw.send(Packet::Disconnect(v5::ReasonAndProperties::default()))
        .await;
    assert_eq!(raw.recv().await, None);
    let stored = |id: &str| {
        store
            .load_sessions()
            .expect("load")
            .iter()
            .any(|s| &*s.client_id == id)
    };
    // Gone within a few sweeps of the second it is kept (bounded: 50 x 100 ms).
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !stored("brief") {
            gone = true;
            break;
        }
    }
    assert!(gone, "the expired session left the store");
    let (_raw, present) = Raw5::connect(&broker, "brief", false, 1).await;
    assert!(!present, "the session ended");
    broker.shutdown().await;
}

/// The record keeps the MQTT 5 fields: a session with a long Session Expiry Interval is
/// restored after a restart, and resumed (Session Present 1) [MQTT-3.2.2-3] with its
/// subscription's identifier.
#[tokio::test]
async fn an_expiring_session_survives_a_restart() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let broker = start_with_store(BrokerConfig::ephemeral(), store.clone()).await;
    let (mut raw, _) = Raw5::connect(&broker, "durable5", true, 600).await;
    raw.subscribe(1, &[("d5/t", qos(QoS::AtLeastOnce))], Some(5))
        .await;
    raw.send(Packet::Disconnect(v5::ReasonAndProperties::default()))
        .await;
    assert_eq!(raw.recv().await, None);
    broker.shutdown().await;
    let record = store
        .load_sessions()
        .expect("load")
        .into_iter()
        .find(|s| &*s.client_id == "durable5")
        .expect("stored");
    assert_eq!(record.protocol, 5);
    assert_eq!(record.expiry_interval_s, Some(600));
    assert!(record.offline_since_ms.is_some());
    assert_eq!(record.subscriptions[0].identifier, Some(5));

    let broker = start_with_store(BrokerConfig::ephemeral(), store.clone()).await;
    let (mut raw, present) = Raw5::connect(&broker, "durable5", false, 600).await;
    assert!(present);
    let mut publisher = Client::connect(&broker, "d5pub", true).await;
    publisher
        .client
        .publish("d5/t", rumqttc::QoS::AtLeastOnce, false, "again")
        .await
        .expect("queued");
    publisher.acked(1).await;
    let got = raw.publish_in().await;
    assert_eq!(&got.payload[..], b"again");
    assert_eq!(
        got.properties.subscription_identifiers,
        [NonZeroU32::MIN.saturating_add(4)]
    );
    broker.shutdown().await;
}

/// "If the Session Expiry Interval in the CONNECT packet was zero, then it is a Protocol
/// Error to set a non-zero Session Expiry Interval in the DISCONNECT packet sent by the
/// Client" [MQTT-3.14.2-2]: the broker answers with DISCONNECT 0x82 (Protocol Error).
#[tokio::test]
async fn disconnect_raising_a_zero_session_expiry_is_a_protocol_error() {
    let broker = start().await;
    let (mut raw, _) = Raw5::connect(&broker, "raiser", true, 0).await;
    raw.send(Packet::Disconnect(v5::ReasonAndProperties {
        reason: ReasonCode::Success,
        properties: Properties::build([Property::FourByteInt(
            PropertyId::SessionExpiryInterval,
            60,
        )])
        .expect("properties"),
    }))
    .await;
    raw.expect_disconnect(ReasonCode::ProtocolError).await;
    broker.shutdown().await;
}

// ------------------------------------------------------------------ DISCONNECTs the broker sends

/// "The Server MAY send a DISCONNECT packet before closing the connection" with the reason
/// why (3.14.2.1): 0x8E Session taken over when another connection uses the same Client
/// Identifier [MQTT-3.1.4-3].
#[tokio::test]
async fn a_taken_over_connection_gets_disconnect_0x8e() {
    let broker = start().await;
    let (mut first, _) = Raw5::connect(&broker, "twin", true, 0).await;
    let (_second, _) = Raw5::connect(&broker, "twin", true, 0).await;
    first.expect_disconnect(ReasonCode::SessionTakenOver).await;
    broker.shutdown().await;
}

/// "If the Keep Alive value is non-zero and the Server does not receive an MQTT Control
/// Packet from the Client within one and a half times the Keep Alive time period, it MUST
/// close the Network Connection" [MQTT-3.1.2-22], with DISCONNECT 0x8D (Keep Alive timeout).
#[tokio::test]
async fn a_silent_client_gets_disconnect_0x8d() {
    let broker = start().await;
    let connect = v5::Connect {
        clean_start: true,
        keep_alive: 1,
        client_id: ByteStr::from_static("silent"),
        ..v5::Connect::default()
    };
    let (mut raw, _) = Raw5::connect_with(&broker, connect).await;
    raw.expect_disconnect(ReasonCode::KeepAliveTimeout).await;
    broker.shutdown().await;
}

/// "A Topic Alias value of 0 or greater than the Maximum Topic Alias is a Protocol Error
/// ... the receiver uses DISCONNECT with Reason Code of 0x94 (Topic Alias invalid)"
/// [MQTT-3.3.2-8 and 3.3.2.3.4]; the broker announces 64.
#[tokio::test]
async fn a_topic_alias_beyond_the_maximum_gets_disconnect_0x94() {
    let broker = start().await;
    let (mut raw, _) = Raw5::connect(&broker, "aliaser", true, 0).await;
    raw.publish_aliased("ta/t", 65, b"x").await;
    raw.expect_disconnect(ReasonCode::TopicAliasInvalid).await;
    broker.shutdown().await;
}

/// "If the Topic Name has length zero and there is no Topic Alias mapping for the Topic
/// Alias, it is a Protocol Error" (3.3.4): DISCONNECT 0x82.
#[tokio::test]
async fn an_alias_used_before_it_was_set_gets_disconnect_0x82() {
    let broker = start().await;
    let (mut raw, _) = Raw5::connect(&broker, "unset", true, 0).await;
    raw.publish_aliased("", 3, b"x").await;
    raw.expect_disconnect(ReasonCode::ProtocolError).await;
    broker.shutdown().await;
}

/// "A sender can modify the Topic Alias mapping by sending another PUBLISH in the same
/// Network Connection with the same Topic Alias value and a different non-zero length Topic
/// Name" (3.3.2.3.4); a PUBLISH with a zero-length Topic Name and the alias uses the
/// mapping: a 3.1.1 subscriber gets every message under its full topic name.
#[tokio::test]
async fn topic_aliases_from_the_client_name_the_topic() {
    let broker = start().await;
    let mut sub = Client::connect(&broker, "aliasee", true).await;
    subscribe(&mut sub, "al/#", rumqttc::QoS::AtMostOnce).await;
    let (mut raw, _) = Raw5::connect(&broker, "aliasing", true, 0).await;
    raw.publish_aliased("al/one", 1, b"1").await;
    raw.publish_aliased("", 1, b"2").await;
    raw.publish_aliased("al/two", 1, b"3").await;
    raw.publish_aliased("", 1, b"4").await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let p = sub.next().await;
        got.push((p.topic.clone(), p.payload.to_vec()));
    }
    let want = [
        ("al/one", b"1"),
        ("al/one", b"2"),
        ("al/two", b"3"),
        ("al/two", b"4"),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(t, p)| (t.to_string(), p.to_vec()))
        .collect();
    assert_eq!(got, want);
    broker.shutdown().await;
}

/// "The Client uses [Topic Alias Maximum] to limit the number of Topic Aliases that it is
/// willing to hold"; "The Server MUST NOT send a Topic Alias in a PUBLISH packet to the
/// Client greater than this value" [MQTT-3.1.2-26]. With 1: the first topic gets alias 1
/// (sent with its name, then as the alias alone), a second topic goes out in full.
#[tokio::test]
async fn the_broker_sends_topic_aliases_up_to_the_clients_maximum() {
    let broker = start().await;
    let connect = with_properties(
        "aliased",
        [Property::TwoByteInt(PropertyId::TopicAliasMaximum, 1)],
    );
    let (mut raw, ack) = Raw5::connect_with(&broker, connect).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    raw.subscribe(1, &[("ob/#", qos(QoS::AtMostOnce))], None)
        .await;
    let publisher = Client::connect(&broker, "obpub", true).await;
    for topic in ["ob/x", "ob/x", "ob/y", "ob/x"] {
        publisher
            .client
            .publish(topic, rumqttc::QoS::AtMostOnce, false, "p")
            .await
            .expect("queued");
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        let p = raw.publish_in().await;
        got.push((
            p.topic.to_string(),
            p.properties.topic_alias.map(|a| a.get()),
        ));
    }
    assert_eq!(
        got,
        [
            ("ob/x".to_string(), Some(1)),
            (String::new(), Some(1)),
            ("ob/y".to_string(), None),
            (String::new(), Some(1)),
        ]
    );
    // rumqttc's v5 client takes them (it stays connected and acknowledges nothing wrong);
    // it hands out the packets as they came, the alias not resolved.
    let addr = tcp_addr(&broker);
    let mut options = MqttOptions::new("aliased-rumqttc", addr.ip().to_string(), addr.port());
    options.set_topic_alias_max(Some(2));
    let mut sub5 = Client5::with_options(options).await;
    sub5.subscribe("ob/#", rumqttc::v5::mqttbytes::QoS::AtMostOnce)
        .await;
    for topic in ["ob/x", "ob/x", "ob/y"] {
        publisher
            .client
            .publish(topic, rumqttc::QoS::AtMostOnce, false, "q")
            .await
            .expect("queued");
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let p = sub5.next().await;
        let alias = p.properties.and_then(|props| props.topic_alias);
        seen.push((String::from_utf8_lossy(&p.topic).into_owned(), alias));
    }
    let want = [("ob/x", Some(1)), ("", Some(1)), ("ob/y", Some(2))];
    let want: Vec<_> = want.iter().map(|(t, a)| (t.to_string(), *a)).collect();
    assert_eq!(seen, want);
    broker.shutdown().await;
}

/// Bytes that are not a packet: "Where a Malformed Packet or Protocol Error is detected ...
/// the Server MAY send a DISCONNECT with reason code 0x81 (Malformed Packet)" (4.13.1)
/// [MQTT-4.13.1-1] (here a PUBLISH with QoS 3).
#[tokio::test]
async fn a_malformed_packet_gets_disconnect_0x81() {
    let broker = start().await;
    let (mut raw, _) = Raw5::connect(&broker, "mangler", true, 0).await;
    raw.raw
        .send_bytes(&[0x36, 0x06, 0x00, 0x01, b't', 0x00, 0x01, 0x00])
        .await;
    raw.expect_disconnect(ReasonCode::MalformedPacket).await;
    broker.shutdown().await;
}

/// The broker's own shutdown: DISCONNECT 0x8B (Server shutting down) before it closes.
#[tokio::test]
async fn shutdown_sends_disconnect_0x8b() {
    let broker = start().await;
    let (mut raw, _) = Raw5::connect(&broker, "stayer", true, 0).await;
    raw.ping().await;
    let stopping = tokio::spawn(async move { broker.shutdown().await });
    raw.expect_disconnect(ReasonCode::ServerShuttingDown).await;
    timeout(WAIT, stopping)
        .await
        .expect("shut down in time")
        .expect("shutdown task");
}

/// A packet larger than the broker's Maximum Packet Size: "the Server uses a DISCONNECT
/// packet with Reason Code 0x95 (Packet too large)" [MQTT-3.1.2-24 and 4.13].
#[tokio::test]
async fn an_oversize_packet_gets_disconnect_0x95() {
    let mut config = BrokerConfig::ephemeral();
    config.limits.max_packet_size = 1024;
    let broker = start_with(config).await;
    let (mut raw, _) = Raw5::connect(&broker, "big", true, 0).await;
    let p = Publish::new(
        QoS::AtMostOnce,
        None,
        ByteStr::from_static("big/t"),
        Bytes::from(vec![0u8; 2048]),
    );
    raw.send(Packet::Publish(p)).await;
    raw.expect_disconnect(ReasonCode::PacketTooLarge).await;
    broker.shutdown().await;
}

// ------------------------------------------------------------------ every listener

/// MQTT 5 over WebSocket: the listeners share the connection code, so a v5 client on the
/// WebSocket listener publishes to a v5 client on TCP with its properties.
#[tokio::test]
async fn mqtt5_works_over_websocket() {
    let mut config = BrokerConfig::ephemeral();
    config.listeners.ws = Some("127.0.0.1:0".parse().expect("addr"));
    let broker = start_with(config).await;
    let mut sub = Client5::connect(&broker, "tcp5").await;
    sub.subscribe("ws/#", rumqttc::v5::mqttbytes::QoS::AtMostOnce)
        .await;
    let ws = broker.local_addr(ListenerKind::Ws).expect("ws listener");
    let mut options = MqttOptions::new("ws5", format!("ws://{ws}/mqtt"), ws.port());
    options.set_transport(rumqttc::Transport::Ws);
    let publisher = Client5::with_options(options).await;
    let props = RProps {
        user_properties: vec![("via".into(), "ws".into())],
        ..RProps::default()
    };
    publisher
        .client
        .publish_with_properties(
            "ws/t",
            rumqttc::v5::mqttbytes::QoS::AtMostOnce,
            false,
            "over ws",
            props,
        )
        .await
        .expect("queued");
    let got = sub.next().await;
    assert_eq!(&got.payload[..], b"over ws");
    let user = got.properties.expect("properties").user_properties;
    assert_eq!(user, vec![("via".to_string(), "ws".to_string())]);
    broker.shutdown().await;
}

// ------------------------------------------------------------------ server redirection

fn server_reference(properties: &Properties) -> Option<&str> {
    properties
        .get(PropertyId::ServerReference)
        .and_then(|p| p.as_str())
}

/// Server redirection (4.11): "The Server uses a Reason Code of 0x9C (Use another server) or
/// 0x9D (Server moved) ... and MAY include a Server Reference" in the CONNACK or DISCONNECT.
/// Configured from the start, every MQTT 5 CONNECT gets CONNACK 0x9C with the Server
/// Reference, and a 3.1.1 client, which has no such code, CONNACK 3 (server unavailable).
#[tokio::test]
async fn a_configured_redirect_refuses_connects_with_the_server_reference() {
    let mut config = BrokerConfig::ephemeral();
    config.mqtt5.redirect = Some(mqgate_broker::Redirect {
        server_reference: "mqtt-2.example.com:1883".into(),
        permanent: false,
    });
    let broker = start_with(config).await;
    let connect = v5::Connect {
        clean_start: true,
        client_id: ByteStr::from_static("sent-away"),
        ..v5::Connect::default()
    };
    let (mut raw, ack) = Raw5::connect_with(&broker, connect).await;
    assert_eq!(ack.reason, ReasonCode::UseAnotherServer);
    assert_eq!(
        server_reference(&ack.properties),
        Some("mqtt-2.example.com:1883")
    );
    assert_eq!(raw.recv().await, None, "closed after the CONNACK");
    let addr = tcp_addr(&broker);
    let options = rumqttc::MqttOptions::new("sent-away-311", addr.ip().to_string(), addr.port());
    assert_eq!(
        auth_support::connack_code(options).await,
        rumqttc::ConnectReturnCode::ServiceUnavailable
    );
    let metrics = broker.metrics();
    assert_eq!(metrics.connects_redirected, 2);
    assert_eq!(metrics.sessions_started, 0);
    broker.shutdown().await;
}

/// Redirecting at run time (an operator draining the node): the clients online get
/// DISCONNECT 0x9D (Server moved) with the Server Reference and their wills are not
/// published (they move, they are not gone); new CONNECTs get CONNACK 0x9D until the
/// redirect is lifted, after which clients are served again.
#[tokio::test]
async fn redirecting_at_run_time_sends_connected_clients_away() {
    let broker = start().await;
    let (mut online, _) = Raw5::connect_with(&broker, delayed_will("moving", true, 0, 0)).await;
    let moved = mqgate_broker::Redirect {
        server_reference: "mqtt-3.example.com:8883".into(),
        permanent: true,
    };
    broker.redirect(Some(moved), true);
    match online.recv().await {
        Some(Packet::Disconnect(d)) => {
            assert_eq!(d.reason, ReasonCode::ServerMoved);
            assert_eq!(
                server_reference(&d.properties),
                Some("mqtt-3.example.com:8883")
            );
        }
        other => panic!("expected DISCONNECT 0x9D, got {other:?}"),
    }
    assert_eq!(online.recv().await, None, "closed after the DISCONNECT");
    let (_, ack) = Raw5::connect_with(&broker, delayed_will("moving", true, 0, 0)).await;
    assert_eq!(ack.reason, ReasonCode::ServerMoved);
    broker.redirect(None, false);
    let (mut back, ack) = Raw5::connect_with(&broker, delayed_will("moving", true, 0, 0)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    back.ping().await;
    assert_eq!(broker.metrics().wills_published, 0, "no will on a redirect");
    broker.shutdown().await;
}

// ------------------------------------------------------------------ what 3.1.1 has

/// What 3.1.1 clients have, MQTT 5 clients have too: the three login modes (Signature,
/// Token, DeviceCredential), P2P messages (`{parent}/p2p/{clientId}`, no subscription
/// needed) from a client and from the embedding API, and the status events of their
/// connects and disconnects.
#[tokio::test]
async fn mqtt5_clients_log_in_every_way_get_p2p_messages_and_status_events() {
    use auth_support::{AK, INSTANCE, SECRET};
    use mqgate_auth::Registry as _;
    use mqgate_status::EventType;
    let (store, registry) = auth_support::seeded_store();
    let expires = auth_support::now_ms() + 3_600_000;
    auth_support::put_token(&registry, "tok5", &["shop/#"], "R,W", expires);
    registry
        .put_device_credential(mqgate_auth::DeviceCredential {
            client_id: "GID_a@@@dev5".into(),
            instance_id: INSTANCE.into(),
            device_access_key_id: "DEVAK5".into(),
            device_access_key_secret: "DEVSECRET5".into(),
            create_time_ms: 0,
            update_time_ms: 0,
        })
        .expect("stored");
    let broker = auth_support::start(auth_support::config(""), Some(store)).await;
    let mut status = broker.status_events();
    let login = |id: &'static str, username: String, password: String| v5::Connect {
        clean_start: true,
        keep_alive: 30,
        client_id: ByteStr::from_static(id),
        username: Some(ByteStr::try_from(username).expect("name")),
        password: Some(Bytes::from(password)),
        ..v5::Connect::default()
    };
    let logins = [
        login(
            "GID_a@@@sig5",
            format!("Signature|{AK}|{INSTANCE}"),
            mqgate_auth::sign_client_id(SECRET, "GID_a@@@sig5"),
        ),
        login(
            "GID_a@@@tok5",
            format!("Token|{AK}|{INSTANCE}"),
            "RW|tok5".into(),
        ),
        login(
            "GID_a@@@dev5",
            format!("DeviceCredential|DEVAK5|{INSTANCE}"),
            mqgate_auth::sign_client_id("DEVSECRET5", "GID_a@@@dev5"),
        ),
    ];
    let mut clients = Vec::new();
    for connect in logins {
        let id = connect.client_id.to_string();
        let (raw, ack) = Raw5::connect_with(&broker, connect).await;
        assert_eq!(ack.reason, ReasonCode::Success, "{id}");
        clients.push(raw);
    }
    let (Some(mut device), Some(mut token), Some(mut signed)) =
        (clients.pop(), clients.pop(), clients.pop())
    else {
        panic!("three clients");
    };
    // P2P from an MQTT 5 client to another, and from the embedding API.
    signed
        .publish("shop/p2p/GID_a@@@tok5", b"to tok5", false)
        .await;
    let got = token.publish_in().await;
    assert_eq!(
        (&*got.topic, &got.payload[..]),
        ("shop/p2p/GID_a@@@tok5", &b"to tok5"[..])
    );
    // A P2P message to oneself arrives too: No Local is about subscriptions, and a P2P
    // message matches none (this client has no subscription at all).
    token
        .publish("shop/p2p/GID_a@@@tok5", b"to myself", false)
        .await;
    let got = token.publish_in().await;
    assert_eq!(&got.payload[..], b"to myself");
    broker
        .publish("shop/p2p/GID_a@@@dev5", "to dev5", QoS::AtLeastOnce, false)
        .await
        .expect("published");
    let got = device.publish_in().await;
    assert_eq!(&got.payload[..], b"to dev5");
    assert!(
        got.properties.forward.is_empty(),
        "no MQTT 5 properties from the API"
    );
    signed.expect_nothing(Duration::from_millis(200)).await;
    // A status event for each connect, then for the disconnect.
    device
        .send(Packet::Disconnect(v5::ReasonAndProperties::default()))
        .await;
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = timeout(WAIT, status.recv())
            .await
            .expect("status event in time")
            .expect("status stream open");
        seen.push((event.client_id, event.event_type));
    }
    let connects: Vec<&str> = seen
        .iter()
        .filter(|(_, t)| *t == EventType::Connect)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(connects, ["GID_a@@@sig5", "GID_a@@@tok5", "GID_a@@@dev5"]);
    assert!(seen.contains(&("GID_a@@@dev5".to_owned(), EventType::Disconnect)));
    token.ping().await;
    broker.shutdown().await;
}
