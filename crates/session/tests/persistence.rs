//! The persistent part of a session survives serialisation and a restart.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use mqgate_codec::{ByteStr, Packet, Publish, QoS};
use mqgate_session::{
    Event, InFlightRef, InFlightStage, Message, MessageId, PersistentSession, RestoreError,
    Session, SessionConfig,
};
use support::*;

const CONFIG: SessionConfig = SessionConfig {
    inflight_window: 3,
    max_queued_messages: 1000,
    max_queued_bytes: 1 << 20,
    message_ttl_ms: 1 << 40,
    full_policy: mqgate_session::FullPolicy::DropOldest,
    pacing: mqgate_session::Pacing::Window,
};

/// A session with every kind of persistent state, offline.
fn busy_session() -> Session {
    let mut s = session(CONFIG);
    connect(&mut s, false, 0);
    s.subscribed(
        pid(1),
        [(ByteStr::from_static("shop/#"), Some(QoS::ExactlyOnce))],
    );
    let _ = deliver(&mut s, &MIXED, 0);
    let out = transmits(&mut s);
    let first = publishes(&out)[0].packet_id.expect("QoS 2");
    s.handle_packet(Packet::PubRec(first), 1)
        .expect("in flight");
    // An inbound QoS 2 message made safe, awaiting PUBREL.
    let inbound = Publish::new(
        QoS::ExactlyOnce,
        Some(pid(40)),
        ByteStr::from_static("up"),
        Bytes::new(),
    );
    s.handle_packet(Packet::Publish(inbound), 2)
        .expect("online");
    for e in events(&mut s) {
        if let Event::Publish { token: Some(t), .. } = e {
            s.inbound_done(t);
        }
    }
    let _ = s.connection_lost(3);
    let _ = s.handle_delivery(message(5, QoS::AtLeastOnce, 4), QoS::AtLeastOnce, 4);
    let _ = events(&mut s);
    s
}

#[test]
fn a_restored_session_resumes_exactly_like_the_original() {
    let mut original = busy_session();
    let json = serde_json::to_string(&original.persistent_state()).expect("serialise");
    let state: PersistentSession = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(state, original.persistent_state());
    assert_eq!(
        state.messages.len(),
        4,
        "messages 2, 3 in flight, 4, 5 queued; 1 released"
    );
    let mut restored = Session::restore(state, CONFIG, 10).expect("consistent");
    assert_eq!(restored.subscriptions(), original.subscriptions());
    assert!(
        connect(&mut restored, false, 10),
        "a restored session is present"
    );
    connect(&mut original, false, 10);
    let replay = transmits(&mut restored);
    assert_eq!(replay, transmits(&mut original));
    assert!(matches!(replay.first(), Some(Packet::PubRel(_))));
    assert_eq!(
        sent(&replay),
        [(2, QoS::AtLeastOnce, true), (3, QoS::ExactlyOnce, true)]
    );
    // The inbound QoS 2 id survived: a repeat is answered, not routed.
    let mut repeat = Publish::new(
        QoS::ExactlyOnce,
        Some(pid(40)),
        ByteStr::from_static("up"),
        Bytes::new(),
    );
    repeat.dup = true;
    restored
        .handle_packet(Packet::Publish(repeat), 11)
        .expect("online");
    assert_eq!(events(&mut restored), []);
    assert_eq!(transmits(&mut restored), [Packet::PubRec(pid(40))]);
}

#[test]
fn a_record_refers_to_shared_messages_by_id() {
    let shared = message(9, QoS::AtLeastOnce, 0);
    let mut table: HashMap<MessageId, Arc<Message>> = HashMap::new();
    let mut records = Vec::new();
    for name in ["GID_a@@@1", "GID_a@@@2"] {
        let mut s = Session::new(ByteStr::from_static(name), CONFIG);
        connect(&mut s, false, 0);
        let _ = s.connection_lost(0);
        let _ = s.handle_delivery(Arc::clone(&shared), QoS::AtLeastOnce, 0);
        let record = s.record();
        assert_eq!(record.message_ids().collect::<Vec<_>>(), [MessageId(9)]);
        table.insert(MessageId(9), Arc::clone(&shared));
        records.push(record);
    }
    for record in records {
        let mut s =
            Session::restore_with(record, |id| table.get(&id).cloned(), CONFIG, 0).expect("found");
        connect(&mut s, false, 1);
        assert_eq!(sent(&transmits(&mut s)), [(9, QoS::AtLeastOnce, false)]);
    }
    assert_eq!(
        Arc::strong_count(&shared),
        2,
        "the table and the test hold it; the sessions let go"
    );
}

#[test]
fn inconsistent_records_are_refused() {
    let base = busy_session().record();
    let in_flight = |packet_id, stage, qos| InFlightRef {
        packet_id,
        message: MessageId(2),
        qos,
        stage,
        shared: false,
    };
    let cases = [
        (
            vec![in_flight(pid(1), InFlightStage::Published, QoS::AtLeastOnce); 2],
            RestoreError::DuplicatePacketId(1),
        ),
        (
            vec![in_flight(pid(1), InFlightStage::Released, QoS::AtLeastOnce)],
            RestoreError::InvalidInFlight(1),
        ),
        (
            vec![in_flight(pid(1), InFlightStage::Published, QoS::AtMostOnce)],
            RestoreError::InvalidInFlight(1),
        ),
    ];
    for (inflight, error) in cases {
        let record = mqgate_session::SessionRecord {
            inflight,
            ..base.clone()
        };
        let got = Session::restore_with(
            record,
            |id| Some(message(id.0, QoS::AtLeastOnce, 0)),
            CONFIG,
            0,
        );
        assert_eq!(got.err(), Some(error));
    }
    let missing = Session::restore_with(base, |_| None, CONFIG, 0);
    assert!(matches!(
        missing.err(),
        Some(RestoreError::UnknownMessage(_))
    ));
}

#[test]
fn restoring_under_smaller_limits_applies_them() {
    let state = busy_session().persistent_state();
    let smaller = SessionConfig {
        max_queued_messages: 1,
        ..CONFIG
    };
    let mut s = Session::restore(state, smaller, 10).expect("consistent");
    assert_eq!(s.queued_len(), 1);
    assert_eq!(
        events(&mut s),
        [Event::Dropped {
            message: MessageId(4),
            reason: mqgate_session::DropReason::QueueFull
        }]
    );
}

#[test]
fn bad_stored_values_fail_to_deserialise_instead_of_panicking() {
    let mut json: serde_json::Value =
        serde_json::to_value(busy_session().persistent_state()).expect("serialise");
    json["record"]["queue"][0]["qos"] = 3.into();
    assert!(serde_json::from_value::<PersistentSession>(json.clone()).is_err());
    json["record"]["queue"][0]["qos"] = 1.into();
    json["record"]["client_id"] = "a\u{0}b".into();
    assert!(serde_json::from_value::<PersistentSession>(json).is_err());
}
