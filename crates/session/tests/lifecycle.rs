//! Connections, keep-alive, will, resume order, protocol violations, subscriptions, inbound QoS.

mod support;

use bytes::Bytes;
use mqgate_codec::{
    ByteStr, ConnAck, Packet, Publish, QoS, SubAck, Subscribe, SubscribeFilter,
    SubscribeReturnCode, Unsubscribe,
};
use mqgate_session::{Event, SessionConfig, SessionError};
use support::*;

#[test]
fn keep_alive_expires_at_one_and_a_half_times_and_activity_resets_it() {
    let mut s = session(SessionConfig::default());
    let _ = s
        .connect(&connect_packet(false, 10), 1_000)
        .expect("offline");
    assert_eq!(s.poll_timeout(), Some(16_000));
    s.handle_timeout(15_999);
    assert_eq!(events(&mut s), []);
    s.handle_packet(Packet::PingReq, 15_000).expect("online");
    assert_eq!(transmits(&mut s).last(), Some(&Packet::PingResp));
    assert_eq!(s.poll_timeout(), Some(30_000));
    s.handle_timeout(30_000);
    assert_eq!(events(&mut s), [Event::KeepAliveExpired]);
    // Fires once; the expiry is an abnormal end, so the will is published.
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn activity_the_driver_reports_moves_the_keep_alive_deadline() {
    let mut s = session(SessionConfig::default());
    let _ = s
        .connect(&connect_packet(false, 10), 1_000)
        .expect("offline");
    s.client_activity(12_000);
    assert_eq!(s.poll_timeout(), Some(27_000));
    assert_eq!(
        transmits(&mut s).last(),
        Some(&Packet::ConnAck(ConnAck {
            session_present: false,
            code: mqgate_codec::ConnectReturnCode::Accepted,
        })),
        "nothing sent for it"
    );
    s.handle_timeout(26_999);
    assert_eq!(events(&mut s), []);
}

#[test]
fn keep_alive_zero_means_no_deadline() {
    let mut s = session(SessionConfig::default());
    let _ = s.connect(&connect_packet(false, 0), 0).expect("offline");
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(u64::MAX);
    assert_eq!(events(&mut s), []);
}

#[test]
fn will_is_returned_on_abnormal_end_only() {
    // (end with DISCONNECT first, keep-alive expiry first, will expected)
    for (disconnect, expire, expect_will) in [
        (false, false, true),
        (true, false, false),
        (false, true, true),
    ] {
        let mut s = session(SessionConfig::default());
        let mut connect = connect_packet(false, 1);
        connect.will = Some(will());
        let _ = s.connect(&connect, 0).expect("offline");
        if disconnect {
            s.handle_packet(Packet::Disconnect, 10).expect("online");
            assert_eq!(events(&mut s), [Event::Disconnect]);
        }
        if expire {
            s.handle_timeout(1_500);
            assert_eq!(events(&mut s), [Event::KeepAliveExpired]);
        }
        let got = s.connection_lost(2_000);
        assert_eq!(
            got,
            expect_will.then(will),
            "disconnect={disconnect} expire={expire}"
        );
        assert_eq!(
            s.connection_lost(2_001),
            None,
            "a second end returns nothing"
        );
    }
}

#[test]
fn session_present_flag() {
    // (clean flags of successive connections, expected session-present of each)
    #[rustfmt::skip]
    let table: &[(&[bool], &[bool])] = &[
        (&[false, false], &[false, true]),
        (&[true, false], &[false, false]),
        (&[false, true, false], &[false, false, false]),
        (&[true, true], &[false, false]),
    ];
    for (cleans, present) in table {
        let mut s = session(SessionConfig::default());
        let got: Vec<bool> = cleans
            .iter()
            .enumerate()
            .map(|(i, clean)| {
                let p = connect(&mut s, *clean, i as u64);
                let _ = s.connection_lost(i as u64);
                p
            })
            .collect();
        assert_eq!(&got[..], *present, "{cleans:?}");
    }
}

#[test]
fn resume_resends_dup_publishes_and_owed_pubrels_in_order_before_the_queue() {
    let mut s = windowed(3);
    connect(&mut s, false, 0);
    let _ = deliver(&mut s, &MIXED, 0);
    let out = transmits(&mut s);
    assert_eq!(sent(&out).len(), 3, "window of 3; message 4 waits");
    let first = publishes(&out)[0].packet_id.expect("QoS 2");
    s.handle_packet(Packet::PubRec(first), 1)
        .expect("in flight");
    let _ = s.connection_lost(2);
    connect(&mut s, false, 3);
    let again = transmits(&mut s);
    assert_eq!(again.first(), Some(&Packet::PubRel(first)));
    assert_eq!(
        sent(&again),
        [(2, QoS::AtLeastOnce, true), (3, QoS::ExactlyOnce, true)],
        "then the unacknowledged PUBLISHes with DUP, and nothing queued yet (window full)"
    );
    let ids: Vec<_> = publishes(&out).iter().map(|p| p.packet_id).collect();
    assert_eq!(
        publishes(&again)
            .iter()
            .map(|p| p.packet_id)
            .collect::<Vec<_>>(),
        ids[1..]
    );
    // Completing the flows releases the queued message.
    s.handle_packet(Packet::PubComp(first), 4)
        .expect("released");
    assert_eq!(sent(&transmits(&mut s)), [(4, QoS::AtLeastOnce, false)]);
}

#[test]
fn protocol_violations_are_errors() {
    let connect_again = Packet::Connect(Box::new(connect_packet(false, 0)));
    let conn_ack = Packet::ConnAck(ConnAck {
        session_present: false,
        code: mqgate_codec::ConnectReturnCode::Accepted,
    });
    #[rustfmt::skip]
    let table: Vec<(Packet, SessionError)> = vec![
        (connect_again, SessionError::SecondConnect),
        (Packet::PubAck(pid(9)), SessionError::UnknownPacketId { packet: "PUBACK", packet_id: 9 }),
        (Packet::PubRec(pid(9)), SessionError::UnknownPacketId { packet: "PUBREC", packet_id: 9 }),
        (Packet::PubComp(pid(9)), SessionError::UnknownPacketId { packet: "PUBCOMP", packet_id: 9 }),
        (Packet::PubRel(pid(9)), SessionError::UnknownPacketId { packet: "PUBREL", packet_id: 9 }),
        (conn_ack, SessionError::UnexpectedPacket("CONNACK")),
        (Packet::PingResp, SessionError::UnexpectedPacket("PINGRESP")),
        (Packet::UnsubAck(pid(1)), SessionError::UnexpectedPacket("UNSUBACK")),
    ];
    for (packet, error) in table {
        let mut s = session(SessionConfig::default());
        connect(&mut s, true, 0);
        assert_eq!(s.handle_packet(packet, 1), Err(error));
    }
    let mut s = session(SessionConfig::default());
    assert_eq!(
        s.handle_packet(Packet::PingReq, 0),
        Err(SessionError::NotConnected)
    );
    connect(&mut s, true, 0);
    assert_eq!(
        s.connect(&connect_packet(true, 0), 0).err(),
        Some(SessionError::AlreadyConnected)
    );
    // An ack of the wrong kind for the stage is an unknown id too.
    let _ = s.handle_delivery(message(1, QoS::AtLeastOnce, 0), QoS::AtLeastOnce, 0);
    assert!(matches!(
        s.handle_packet(Packet::PubRec(pid(1)), 0),
        Err(SessionError::UnknownPacketId { .. })
    ));
    s.handle_packet(Packet::Disconnect, 1).expect("online");
    assert_eq!(
        s.handle_packet(Packet::PingReq, 2),
        Err(SessionError::AfterDisconnect("PINGREQ"))
    );
}

#[test]
fn subscribe_and_unsubscribe_are_answered_after_the_broker_decides() {
    let mut s = session(SessionConfig::default());
    connect(&mut s, false, 0);
    let filters = vec![
        SubscribeFilter {
            filter: ByteStr::from_static("a/+"),
            qos: QoS::ExactlyOnce,
        },
        SubscribeFilter {
            filter: ByteStr::from_static("secret/#"),
            qos: QoS::AtLeastOnce,
        },
    ];
    s.handle_packet(
        Packet::Subscribe(Subscribe {
            packet_id: pid(3),
            filters: filters.clone(),
        }),
        1,
    )
    .expect("online");
    assert_eq!(
        events(&mut s),
        [Event::Subscribe {
            packet_id: pid(3),
            filters
        }]
    );
    assert_eq!(transmits(&mut s), [], "no SUBACK before the broker decides");
    s.subscribed(
        pid(3),
        [
            (ByteStr::from_static("a/+"), Some(QoS::AtLeastOnce)),
            (ByteStr::from_static("secret/#"), None),
        ],
    );
    let codes = vec![
        SubscribeReturnCode::Success(QoS::AtLeastOnce),
        SubscribeReturnCode::Failure,
    ];
    assert_eq!(
        transmits(&mut s),
        [Packet::SubAck(SubAck {
            packet_id: pid(3),
            return_codes: codes
        })]
    );
    // Subscribing again to the same filter replaces the QoS.
    s.subscribed(
        pid(4),
        [(ByteStr::from_static("a/+"), Some(QoS::ExactlyOnce))],
    );
    let subs: Vec<_> = s
        .subscriptions()
        .iter()
        .map(|x| (x.filter.to_string(), x.qos))
        .collect();
    assert_eq!(subs, [("a/+".to_string(), QoS::ExactlyOnce)]);
    let filters = vec![ByteStr::from_static("a/+")];
    s.handle_packet(
        Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(5),
            filters: filters.clone(),
        }),
        2,
    )
    .expect("online");
    assert_eq!(
        events(&mut s),
        [Event::Unsubscribe {
            packet_id: pid(5),
            filters: filters.clone()
        }]
    );
    s.unsubscribed(pid(5), &filters);
    assert!(s.subscriptions().is_empty());
    assert_eq!(transmits(&mut s).last(), Some(&Packet::UnsubAck(pid(5))));
}

fn inbound(qos: QoS, id: u16, dup: bool) -> Packet {
    Packet::Publish({
        let mut p = Publish::new(
            qos,
            Some(pid(id)),
            ByteStr::from_static("up"),
            Bytes::from_static(b"x"),
        );
        p.dup = dup;
        p
    })
}

fn tokens(s: &mut mqgate_session::Session) -> Vec<mqgate_session::InboundToken> {
    events(s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Publish { token, .. } => token,
            _ => None,
        })
        .collect()
}

#[test]
fn inbound_qos1_is_acknowledged_only_when_safe() {
    let mut s = session(SessionConfig::default());
    connect(&mut s, false, 0);
    s.handle_packet(inbound(QoS::AtLeastOnce, 1, false), 1)
        .expect("online");
    let t = tokens(&mut s);
    assert_eq!(t.len(), 1);
    assert_eq!(transmits(&mut s), []);
    s.inbound_done(t[0]);
    assert_eq!(transmits(&mut s), [Packet::PubAck(pid(1))]);
}

#[test]
fn inbound_qos2_duplicates_are_never_routed_twice_even_across_reconnects() {
    let mut s = session(SessionConfig::default());
    connect(&mut s, false, 0);
    s.handle_packet(inbound(QoS::ExactlyOnce, 2, false), 1)
        .expect("online");
    s.handle_packet(inbound(QoS::ExactlyOnce, 2, true), 2)
        .expect("online");
    let t = tokens(&mut s);
    assert_eq!(t.len(), 1, "the repeat is not routed");
    s.inbound_done(t[0]);
    assert_eq!(transmits(&mut s), [Packet::PubRec(pid(2))]);
    // PUBREC lost: the client reconnects and repeats the PUBLISH.
    let _ = s.connection_lost(3);
    connect(&mut s, false, 4);
    s.handle_packet(inbound(QoS::ExactlyOnce, 2, true), 5)
        .expect("online");
    assert_eq!(tokens(&mut s), []);
    assert_eq!(transmits(&mut s), [Packet::PubRec(pid(2))]);
    s.handle_packet(Packet::PubRel(pid(2)), 6)
        .expect("awaiting PUBREL");
    assert_eq!(transmits(&mut s), [Packet::PubComp(pid(2))]);
    // PUBCOMP lost too: the repeated PUBREL on a resumed session is answered, not an error.
    let _ = s.connection_lost(7);
    connect(&mut s, false, 8);
    s.handle_packet(Packet::PubRel(pid(2)), 9)
        .expect("repeat after lost PUBCOMP");
    assert_eq!(transmits(&mut s), [Packet::PubComp(pid(2))]);
}
