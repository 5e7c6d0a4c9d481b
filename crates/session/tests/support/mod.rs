//! Builders and drains shared by the scenario tests, so each test reads as a script.
#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use mqgate_codec::{ByteStr, Connect, LastWill, Packet, PacketId, Publish, QoS};
use mqgate_session::{Event, Message, MessageId, Session, SessionConfig};

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("test packet ids are not 0")
}

pub fn session(config: SessionConfig) -> Session {
    Session::new(ByteStr::from_static("GID_test@@@dev-1"), config)
}

pub fn connect_packet(clean_session: bool, keep_alive: u16) -> Connect {
    Connect {
        clean_session,
        keep_alive,
        client_id: ByteStr::from_static("GID_test@@@dev-1"),
        ..Connect::default()
    }
}

pub fn will() -> LastWill {
    LastWill {
        topic: ByteStr::from_static("status/dev-1"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
    }
}

/// Connects and returns the session-present flag, checking the CONNACK comes first.
pub fn connect(s: &mut Session, clean_session: bool, now: u64) -> bool {
    let outcome = s
        .connect(&connect_packet(clean_session, 0), now)
        .expect("session is offline");
    match s.poll_transmit() {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.session_present, outcome.session_present),
        other => panic!("expected CONNACK first, got {other:?}"),
    }
    outcome.session_present
}

pub fn message(id: u128, qos: QoS, published_at_ms: u64) -> Arc<Message> {
    Arc::new(Message::new(
        MessageId(id),
        ByteStr::from_static("shop/price"),
        Bytes::from(id.to_be_bytes().to_vec()),
        qos,
        published_at_ms,
    ))
}

/// The message id a PUBLISH built by [`message`] carries.
pub fn id_of(p: &Publish) -> u128 {
    let bytes: [u8; 16] = p.payload().try_into().expect("payload is a message id");
    u128::from_be_bytes(bytes)
}

pub fn transmits(s: &mut Session) -> Vec<Packet> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

pub fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// The PUBLISHes among `packets`.
pub fn publishes(packets: &[Packet]) -> Vec<&Publish> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// (message id, QoS, DUP) of each PUBLISH, in order.
pub fn sent(packets: &[Packet]) -> Vec<(u128, QoS, bool)> {
    publishes(packets)
        .into_iter()
        .map(|p| (id_of(p), p.qos, p.dup))
        .collect()
}

/// Acknowledges every QoS 1 and 2 PUBLISH in `packets` as a client would (PUBACK / PUBREC).
pub fn ack_all(s: &mut Session, packets: &[Packet], now: u64) {
    for p in publishes(packets) {
        let Some(id) = p.packet_id else { continue }; // QoS 0
        let ack = match p.qos {
            QoS::AtLeastOnce => Packet::PubAck(id),
            _ => Packet::PubRec(id),
        };
        s.handle_packet(ack, now).expect("ack for a sent PUBLISH");
    }
}

/// A session with the default config but an in-flight window of `window`.
pub fn windowed(window: u16) -> Session {
    session(SessionConfig {
        inflight_window: window,
        ..SessionConfig::default()
    })
}

/// Delivers messages `(id, QoS)` at their own QoS, published at `now`.
pub fn deliver(
    s: &mut Session,
    messages: &[(u128, QoS)],
    now: u64,
) -> Vec<mqgate_session::DeliveryOutcome> {
    messages
        .iter()
        .map(|&(id, qos)| s.handle_delivery(message(id, qos, now), qos, now))
        .collect()
}

/// Two QoS 2 and two QoS 1 messages, alternating, ids 1 to 4.
pub const MIXED: [(u128, QoS); 4] = [
    (1, QoS::ExactlyOnce),
    (2, QoS::AtLeastOnce),
    (3, QoS::ExactlyOnce),
    (4, QoS::AtLeastOnce),
];
