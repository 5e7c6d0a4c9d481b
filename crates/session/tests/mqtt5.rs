//! The session's MQTT 5 hooks: PUBLISHes paired with their messages, inbound properties
//! passed on, Clean Start apart from the session's lifetime, and a message's own expiry.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use mqgate_codec::v5::PublishProperties;
use mqgate_codec::{ByteStr, Packet, Publish, QoS};
use mqgate_session::{DeliveryOutcome, Event, Message, SessionConfig};
use support::*;

fn v5_session() -> mqgate_session::Session {
    let mut s = session(SessionConfig::default());
    s.set_protocol(5);
    s
}

/// Each PUBLISH of an MQTT 5 session whose form needs its message comes with it (QoS 0 sent
/// at once, QoS 1 into the window, and resent on resume); one that needs nothing from it
/// comes alone until a subscription has an identifier; a 3.1.1 session pairs none.
#[test]
fn publishes_come_with_their_messages_for_mqtt5_only() {
    let mut s = v5_session();
    s.set_expiry_interval_s(Some(60));
    let _ = s
        .connect_with(&connect_packet(false, 0), false, true, 0)
        .expect("offline");
    let mut m0 = message(1, QoS::AtMostOnce, 0);
    Arc::make_mut(&mut m0).properties = Bytes::from_static(b"\x01\x01");
    let mut m1 = message(2, QoS::AtLeastOnce, 0);
    Arc::make_mut(&mut m1).expires_at_ms = Some(60_000);
    let plain = message(3, QoS::AtMostOnce, 0);
    for m in [&m0, &m1, &plain] {
        assert_eq!(
            s.handle_delivery(m.clone(), QoS::AtLeastOnce, 1),
            DeliveryOutcome::Sent
        );
    }
    s.subscribed(
        mqgate_codec::PacketId::new(1).expect("not 0"),
        [(ByteStr::from_static("shop/+"), Some(QoS::AtMostOnce))],
    );
    let _ = s.handle_delivery(plain.clone(), QoS::AtMostOnce, 1);
    s.subscription_mut("shop/+").expect("granted").identifier = Some(7);
    let _ = s.handle_delivery(plain.clone(), QoS::AtMostOnce, 1);
    let out: Vec<_> = std::iter::from_fn(|| s.poll_transmit_with_message()).collect();
    assert!(matches!(out[0], (Packet::ConnAck(_), None)));
    let ids: Vec<_> = out[1..]
        .iter()
        .map(|(p, m)| {
            (
                matches!(p, Packet::Publish(_)),
                m.as_ref().map(|m| m.message.id),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            (true, Some(m0.id)),
            (true, Some(m1.id)),
            (true, None),
            (false, None),
            (true, None),
            (true, Some(plain.id)),
        ]
    );
    // Resumed: the unacknowledged QoS 1 PUBLISH is resent with its message.
    let _ = s.connection_lost(2);
    let _ = s
        .connect_with(&connect_packet(false, 0), false, true, 3)
        .expect("offline");
    let out: Vec<_> = std::iter::from_fn(|| s.poll_transmit_with_message()).collect();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].1.as_ref().map(|m| m.message.id), Some(m1.id));

    let mut old = session(SessionConfig::default());
    connect(&mut old, true, 0);
    let _ = old.handle_delivery(m0, QoS::AtMostOnce, 1);
    assert!(matches!(
        old.poll_transmit_with_message(),
        Some((Packet::Publish(_), None))
    ));
}

/// An MQTT 5 PUBLISH's properties are handed on with the event; a 3.1.1 one has none.
#[test]
fn inbound_properties_are_passed_on() {
    let mut s = v5_session();
    connect(&mut s, true, 0);
    let publish = Publish::new(
        QoS::AtMostOnce,
        None,
        ByteStr::from_static("a/b"),
        Bytes::from_static(b"x"),
    );
    let properties = PublishProperties {
        message_expiry_interval: Some(9),
        ..PublishProperties::default()
    };
    s.handle_publish_v5(publish.clone(), properties.clone(), 1)
        .expect("accepted");
    s.handle_packet(Packet::Publish(publish), 2)
        .expect("accepted");
    let got: Vec<_> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Publish { v5, .. } => Some(v5.map(|b| *b)),
            _ => None,
        })
        .collect();
    assert_eq!(got, [Some(properties), None]);
}

/// Clean Start 0 with a Session Expiry Interval of 0 resumes a stored session (Session
/// Present) for this connection only: it ends when the connection does.
#[test]
fn resumed_for_one_connection_then_ended() {
    let mut s = v5_session();
    assert!(!connect(&mut s, false, 0));
    s.subscribed(
        pid(1),
        [(ByteStr::from_static("a/#"), Some(QoS::AtLeastOnce))],
    );
    let _ = s.connection_lost(1);
    let outcome = s
        .connect_with(&connect_packet(false, 0), false, false, 2)
        .expect("offline");
    assert!(outcome.session_present);
    assert_eq!(s.subscriptions().len(), 1);
    let _ = s.connection_lost(3);
    assert!(!s.is_persistent());
    assert!(
        s.subscriptions().is_empty(),
        "the session ended with the connection"
    );
}

/// A queued message past its own expiry is not sent; one without expiry is.
#[test]
fn an_expired_queued_message_is_dropped_not_sent() {
    let mut s = v5_session();
    connect(&mut s, false, 0);
    let _ = s.connection_lost(1);
    let mut short = Message::clone(&message(1, QoS::AtLeastOnce, 0));
    short.expires_at_ms = Some(1_000);
    let _ = s.handle_delivery(Arc::new(short), QoS::AtLeastOnce, 10);
    let _ = s.handle_delivery(message(2, QoS::AtLeastOnce, 0), QoS::AtLeastOnce, 10);
    assert!(connect(&mut s, false, 1_000));
    let sent: Vec<_> = publishes(&transmits(&mut s))
        .iter()
        .map(|p| id_of(p))
        .collect();
    assert_eq!(sent, [2]);
    assert!(events(&mut s).iter().any(|e| matches!(
        e,
        Event::Dropped {
            reason: mqgate_session::DropReason::Expired,
            ..
        }
    )));
}

/// The remaining expiry a delivery carries is the whole seconds left, rounded up, at most
/// the interval it was published with.
#[test]
fn remaining_expiry_rounds_up() {
    let mut m = Message::clone(&message(1, QoS::AtMostOnce, 0));
    assert_eq!(m.remaining_expiry_s(0), None);
    m.expires_at_ms = Some(10_000);
    assert_eq!(m.remaining_expiry_s(0), Some(10));
    assert_eq!(m.remaining_expiry_s(8_001), Some(2));
    assert_eq!(m.remaining_expiry_s(20_000), Some(0));
    // A reading behind the clock that stamped the message does not lengthen the interval.
    m.published_at_ms = 5_000;
    m.expires_at_ms = Some(65_000);
    assert_eq!(m.remaining_expiry_s(4_990), Some(60));
}

/// A message with a Message Expiry Interval of 0 (its expiry at its own publish instant) is
/// expired for every queue, also read by a clock a little behind the one that stamped it.
#[test]
fn an_expiry_at_the_publish_instant_is_expired_whatever_the_clock_says() {
    let mut message = Message::new(
        mqgate_session::MessageId(1),
        ByteStr::from_static("t"),
        Bytes::from_static(b"m"),
        QoS::AtLeastOnce,
        1_000,
    );
    message.expires_at_ms = Some(1_000);
    assert!(message.is_expired(1_000, u64::MAX));
    assert!(message.is_expired(999, u64::MAX), "a clock 1 ms behind");
    message.expires_at_ms = Some(2_000);
    assert!(!message.is_expired(999, u64::MAX));
    assert!(message.is_expired(2_000, u64::MAX));
}
