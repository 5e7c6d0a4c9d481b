//! Every cell of the offline QoS x cleanSession table (`src/rules.md`), online and offline.

mod support;

use mqgate_codec::{Packet, QoS};
use mqgate_session::{DeliveryOutcome, DropReason, SessionConfig};
use support::*;

const ALL: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

/// (QoS, cleanSession, outcome while offline, delivered after reconnect)
#[rustfmt::skip]
const OFFLINE: &[(QoS, bool, DeliveryOutcome, bool)] = &[
    (QoS::AtMostOnce, true, DeliveryOutcome::Dropped(DropReason::Offline), false),
    (QoS::AtMostOnce, false, DeliveryOutcome::Dropped(DropReason::Offline), false),
    (QoS::AtLeastOnce, true, DeliveryOutcome::Dropped(DropReason::CleanSession), false),
    (QoS::AtLeastOnce, false, DeliveryOutcome::Queued, true),
    (QoS::ExactlyOnce, true, DeliveryOutcome::Dropped(DropReason::CleanSession), false),
    // Beyond the model service: kept and delivered exactly once.
    (QoS::ExactlyOnce, false, DeliveryOutcome::Queued, true),
];

#[test]
fn offline_column_of_every_cell() {
    for &(qos, clean, outcome, delivered) in OFFLINE {
        let mut s = session(SessionConfig::default());
        connect(&mut s, clean, 0);
        let _ = s.connection_lost(10);
        assert_eq!(
            s.handle_delivery(message(1, qos, 20), qos, 20),
            outcome,
            "{qos:?} clean={clean}"
        );
        let present = connect(&mut s, clean, 30);
        assert_eq!(present, !clean, "{qos:?} clean={clean}");
        let out = transmits(&mut s);
        let expected = if delivered {
            vec![(1, qos, false)]
        } else {
            vec![]
        };
        assert_eq!(sent(&out), expected, "{qos:?} clean={clean}");
    }
}

#[test]
fn online_is_one_attempt_for_qos0_and_guaranteed_for_qos1_and_2() {
    for qos in ALL {
        for clean in [true, false] {
            let mut s = session(SessionConfig::default());
            connect(&mut s, clean, 0);
            assert_eq!(
                s.handle_delivery(message(1, qos, 0), qos, 0),
                DeliveryOutcome::Sent
            );
            assert_eq!(sent(&transmits(&mut s)), [(1, qos, false)]);
            // The connection drops before any acknowledgement.
            let _ = s.connection_lost(5);
            let present = connect(&mut s, clean, 10);
            let resent = sent(&transmits(&mut s));
            // Only a persistent session remembers; QoS 0 is never resent.
            let expected = if !clean && qos != QoS::AtMostOnce {
                vec![(1, qos, true)]
            } else {
                vec![]
            };
            assert_eq!(resent, expected, "{qos:?} clean={clean}");
            assert_eq!(present, !clean);
        }
    }
}

#[test]
fn delivery_qos_is_the_lower_of_publish_and_granted() {
    for publish_qos in ALL {
        for granted in ALL {
            let mut s = session(SessionConfig::default());
            connect(&mut s, false, 0);
            let _ = s.handle_delivery(message(1, publish_qos, 0), granted, 0);
            let out = transmits(&mut s);
            let p = publishes(&out);
            assert_eq!(p.len(), 1);
            assert_eq!(p[0].qos, publish_qos.min(granted));
            assert_eq!(
                p[0].packet_id.is_some(),
                publish_qos.min(granted) != QoS::AtMostOnce
            );
        }
    }
}

#[test]
fn qos2_offline_is_delivered_exactly_once_across_reconnects() {
    let mut s = session(SessionConfig::default());
    connect(&mut s, false, 0);
    let _ = s.connection_lost(1);
    assert_eq!(
        s.handle_delivery(message(7, QoS::ExactlyOnce, 2), QoS::ExactlyOnce, 2),
        DeliveryOutcome::Queued
    );
    connect(&mut s, false, 3);
    let out = transmits(&mut s);
    assert_eq!(sent(&out), [(7, QoS::ExactlyOnce, false)]);
    let id = publishes(&out)[0].packet_id.expect("QoS 2");
    s.handle_packet(Packet::PubRec(id), 4).expect("in flight");
    assert_eq!(transmits(&mut s), [Packet::PubRel(id)]);
    // PUBCOMP lost with the connection: the resumed session owes the PUBREL, not the PUBLISH.
    let _ = s.connection_lost(5);
    connect(&mut s, false, 6);
    assert_eq!(transmits(&mut s), [Packet::PubRel(id)]);
    s.handle_packet(Packet::PubComp(id), 7).expect("released");
    assert_eq!(s.inflight_len(), 0);
    let _ = s.connection_lost(8);
    connect(&mut s, false, 9);
    assert_eq!(transmits(&mut s), []);
}
