//! A scripted driver for fuzzing and property tests: arbitrary bytes become a sequence of
//! inputs (connects, packets, deliveries, clock jumps, ends of connections, snapshots), and
//! the session's invariants are checked after each.

use std::sync::Arc;

use bytes::Bytes;
use mqgate_codec::{ByteStr, Connect, Packet, PacketId, Publish, QoS, Subscribe, SubscribeFilter};

use crate::{Event, FullPolicy, InboundToken, Message, MessageId, Pacing, Session, SessionConfig};

/// Runs the script in `data` against a session with small limits.
///
/// # Panics
/// When an invariant breaks: the window or a queue limit exceeded, or a packet id in flight
/// twice. That is what a fuzzer looks for; no input should make this panic otherwise.
pub fn run_script(data: &[u8]) {
    let config = SessionConfig {
        inflight_window: 3,
        max_queued_messages: 5,
        max_queued_bytes: 64,
        message_ttl_ms: 10_000,
        full_policy: if data.first().is_some_and(|b| b & 1 == 1) {
            FullPolicy::RefuseNew
        } else {
            FullPolicy::DropOldest
        },
        pacing: Pacing::Batches {
            size: 2,
            interval_ms: 1_000,
        },
    };
    let mut session = Session::new(ByteStr::from_static("fuzz"), config);
    let mut tokens: Vec<InboundToken> = Vec::new();
    let mut now = 0u64;
    let mut next_message = 0u128;
    let mut bytes = data.iter().copied();
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        let id = PacketId::new(u16::from(arg % 8) + 1).unwrap_or(PacketId::MIN);
        let qos = QoS::from_u8((op >> 3) % 3).unwrap_or_default();
        let result = match op % 8 {
            0 => session
                .connect(
                    &Connect {
                        clean_session: op & 0x40 != 0,
                        keep_alive: u16::from(arg % 4),
                        ..Connect::default()
                    },
                    now,
                )
                .map(drop),
            1 => session.handle_packet(ack_packet(op >> 3, id), now),
            2 => session.handle_packet(publish_packet(qos, id, arg), now),
            3 => {
                next_message = next_message.wrapping_add(1);
                let message = Arc::new(Message::new(
                    MessageId(next_message),
                    ByteStr::from_static("t"),
                    Bytes::from_static(&[0; 16]),
                    qos,
                    now,
                ));
                let granted = QoS::from_u8(arg % 3).unwrap_or_default();
                let _ = session.handle_delivery(message, granted, now);
                Ok(())
            }
            4 => {
                now = now.saturating_add(u64::from(arg).saturating_mul(97));
                session.handle_timeout(now);
                Ok(())
            }
            5 => {
                let _ = session.connection_lost(now);
                Ok(())
            }
            6 => {
                if let Some(token) = tokens.pop() {
                    session.inbound_done(token);
                }
                Ok(())
            }
            _ => {
                let snapshot = session.persistent_state();
                if !session.is_online() && session.is_persistent() {
                    if let Ok(restored) = Session::restore(snapshot, config, now) {
                        session = restored;
                    }
                }
                Ok(())
            }
        };
        if result.is_err() {
            let _ = session.connection_lost(now);
        }
        while let Some(event) = session.poll_event() {
            match event {
                Event::Publish { token: Some(t), .. } => tokens.push(t),
                Event::Subscribe { packet_id, filters } => session.subscribed(
                    packet_id,
                    filters.into_iter().map(|f| (f.filter, Some(f.qos))),
                ),
                Event::Unsubscribe { packet_id, filters } => {
                    session.unsubscribed(packet_id, filters)
                }
                _ => {}
            }
        }
        while session.poll_transmit().is_some() {}
        check_invariants(&session, &config);
    }
}

fn ack_packet(kind: u8, id: PacketId) -> Packet {
    match kind % 8 {
        0 => Packet::PubAck(id),
        1 => Packet::PubRec(id),
        2 => Packet::PubRel(id),
        3 => Packet::PubComp(id),
        4 => Packet::PingReq,
        5 => Packet::Disconnect,
        6 => Packet::Subscribe(Subscribe {
            packet_id: id,
            filters: vec![SubscribeFilter {
                filter: ByteStr::from_static("a/#"),
                qos: QoS::AtLeastOnce,
            }],
        }),
        _ => Packet::Connect(Box::default()),
    }
}

fn publish_packet(qos: QoS, id: PacketId, arg: u8) -> Packet {
    let packet_id = (qos != QoS::AtMostOnce).then_some(id);
    let mut publish = Publish::new(qos, packet_id, ByteStr::from_static("in"), Bytes::new());
    publish.dup = arg & 0x80 != 0;
    Packet::Publish(publish)
}

fn check_invariants(session: &Session, config: &SessionConfig) {
    assert!(session.inflight_len() <= config.window(), "window exceeded");
    assert!(
        session.queued_len() <= config.max_queued_messages,
        "queue length exceeded"
    );
    assert!(
        session.queued_bytes() <= config.max_queued_bytes,
        "queue bytes exceeded"
    );
    let mut ids: Vec<u16> = session.inflight.iter().map(|e| e.packet_id.get()).collect();
    let before = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), before, "packet id in flight twice");
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// The same function the fuzz target calls, over random scripts.
        #[test]
        fn random_scripts_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            super::run_script(&data);
        }
    }
}
