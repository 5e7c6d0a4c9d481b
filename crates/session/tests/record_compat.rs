//! A session record written before the MQTT 5 fields existed reads back unchanged: every
//! field added since has a default that means "as before" (the rule of docs/records.md).

use mqgate_codec::{PacketId, QoS};
use mqgate_session::{InFlightRef, InFlightStage, MessageId, SessionRecord, Subscription};

/// A record as the build before the MQTT 5 fields wrote it, byte for byte.
const OLD_RECORD: &str = r#"{"client_id":"GID_a@@@1","subscriptions":[{"filter":"shop/+/price","qos":2}],"queue":[{"message":5,"qos":1}],"inflight":[{"packet_id":3,"message":6,"qos":2,"stage":"Published"}],"awaiting_pubrel":[7],"next_packet_id":4}"#;

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

/// The record `OLD_RECORD` holds, built with today's types.
fn old_record() -> SessionRecord {
    let json = r#"{"client_id":"GID_a@@@1","subscriptions":[{"filter":"shop/+/price","qos":2}],"queue":[],"inflight":[],"awaiting_pubrel":[],"next_packet_id":1}"#;
    let mut record: SessionRecord = serde_json::from_str(json).expect("a record");
    record.queue = vec![mqgate_session::QueuedRef {
        message: MessageId(5),
        qos: QoS::AtLeastOnce,
        shared: false,
    }];
    record.inflight = vec![InFlightRef {
        packet_id: pid(3),
        message: MessageId(6),
        qos: QoS::ExactlyOnce,
        stage: InFlightStage::Published,
        shared: false,
    }];
    record.awaiting_pubrel = vec![pid(7)];
    record.next_packet_id = 4;
    record
}

#[test]
fn an_old_record_reads_back_with_the_new_fields_at_their_defaults() {
    let record: SessionRecord = serde_json::from_str(OLD_RECORD).expect("an old record reads");
    assert_eq!(record, old_record());
    assert_eq!(&*record.client_id, "GID_a@@@1");
    assert_eq!(record.protocol, 4, "3.1.1");
    assert_eq!(
        record.expiry_interval_s, None,
        "kept until a clean session replaces it"
    );
    assert_eq!(record.offline_since_ms, None);
    let sub: &Subscription = &record.subscriptions[0];
    assert_eq!(
        *sub,
        Subscription::new(
            mqgate_codec::ByteStr::from_static("shop/+/price"),
            QoS::ExactlyOnce
        )
    );
    assert!(!sub.no_local && !sub.retain_as_published);
    assert_eq!((sub.retain_handling, sub.identifier), (0, None));
}

#[test]
fn the_mqtt5_fields_survive_a_round_trip() {
    let mut record = old_record();
    record.protocol = 5;
    record.expiry_interval_s = Some(3600);
    record.offline_since_ms = Some(1_700_000_000_000);
    let sub = &mut record.subscriptions[0];
    sub.no_local = true;
    sub.retain_as_published = true;
    sub.retain_handling = 2;
    sub.identifier = Some(268_435_455);
    let json = serde_json::to_string(&record).expect("serialises");
    let back: SessionRecord = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, record);
    assert!(json.contains(r#""no_local":true"#), "{json}");
    assert!(json.contains(r#""protocol":5"#), "{json}");
}

/// A session restored from a record keeps the MQTT 5 fields, and writes them back.
#[test]
fn a_restored_session_keeps_the_mqtt5_fields() {
    let mut record = old_record();
    record.queue.clear();
    record.inflight.clear();
    record.protocol = 5;
    record.expiry_interval_s = Some(60);
    record.offline_since_ms = Some(1_000);
    let session = mqgate_session::Session::restore_with(
        record.clone(),
        |_| None,
        mqgate_session::SessionConfig::default(),
        0,
    )
    .expect("restores");
    assert_eq!(session.protocol(), 5);
    assert!(!session.is_expired_at(60_999));
    assert!(session.is_expired_at(61_000));
    assert_eq!(session.record(), record);
}

#[test]
fn a_record_with_default_fields_is_written_as_before() {
    let written = serde_json::to_string(&old_record()).expect("serialises");
    assert_eq!(written, OLD_RECORD);
}

/// A session declared by the broker's configuration says so in its record, through a
/// restore; an older record (no such field) is one made by a client.
#[test]
fn the_configured_flag_survives_a_restore_and_defaults_to_false() {
    let record: SessionRecord = serde_json::from_str(OLD_RECORD).expect("an old record reads");
    assert!(!record.configured);
    let mut record = old_record();
    record.queue.clear();
    record.inflight.clear();
    record.configured = true;
    let json = serde_json::to_string(&record).expect("serialises");
    assert!(json.contains(r#""configured":true"#), "{json}");
    let session = mqgate_session::Session::restore_with(
        serde_json::from_str(&json).expect("reads back"),
        |_| None,
        mqgate_session::SessionConfig::default(),
        0,
    )
    .expect("restores");
    assert!(session.is_configured());
    assert_eq!(session.record(), record);
}
