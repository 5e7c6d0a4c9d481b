//! Model-based test: random interleavings of publishes, client acks, lost connections,
//! reconnects and clock jumps, checked against what the QoS rules promise.
//!
//! The client here behaves like a conforming MQTT client: it acknowledges in order, delivers a
//! QoS 2 message on its first PUBLISH and ignores repeats of that packet id until PUBREL. The
//! model keeps, per message, the QoS it was accepted at and whether the session later reported
//! it dropped. Checked: nothing delivered that was never published (or at another QoS); QoS 0
//! and 2 at most once; messages of QoS 1 and 2 first delivered in publication order; limits
//! held after every step; and at the end, once the client has caught up, every accepted QoS 1
//! or 2 message not reported dropped delivered (QoS 2: exactly once).

mod support;

use std::collections::{HashMap, HashSet, VecDeque};

use mqgate_codec::{Packet, QoS};
use mqgate_session::{DeliveryOutcome, Event, FullPolicy, Pacing, Session, SessionConfig};
use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
enum Op {
    Publish { qos: QoS, granted: QoS },
    ClientReads,
    ClientAcks(usize),
    ConnectionLost,
    Reconnect { clean: bool },
    ClockJump(u64),
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (qos(), qos()).prop_map(|(qos, granted)| Op::Publish { qos, granted }),
        4 => Just(Op::ClientReads),
        4 => (0usize..6).prop_map(Op::ClientAcks),
        1 => Just(Op::ConnectionLost),
        1 => prop::bool::weighted(0.15).prop_map(|clean| Op::Reconnect { clean }),
        2 => (0u64..3_000).prop_map(Op::ClockJump),
    ]
}

prop_compose! {
    fn config()(
        inflight_window in 1u16..5,
        max_queued_messages in 1usize..8,
        // A test message counts 26 bytes: room for 1 to 7.
        max_queued_bytes in 26usize..200,
        message_ttl_ms in 1_000u64..50_000,
        refuse in any::<bool>(),
        batch in prop::option::of((1u32..4, 100u64..1_000)),
    ) -> SessionConfig {
        SessionConfig {
            inflight_window,
            max_queued_messages,
            max_queued_bytes,
            message_ttl_ms,
            full_policy: if refuse { FullPolicy::RefuseNew } else { FullPolicy::DropOldest },
            pacing: batch.map_or(Pacing::Window, |(size, interval_ms)| Pacing::Batches { size, interval_ms }),
        }
    }
}

/// A conforming client plus the model's bookkeeping.
#[derive(Default)]
struct World {
    now: u64,
    published: u128,
    /// Message id -> QoS it was accepted at (Sent or Queued).
    accepted: HashMap<u128, QoS>,
    excused: HashSet<u128>,
    delivered: HashMap<u128, usize>,
    first_deliveries: Vec<u128>,
    /// Client state: acks to send, QoS 2 ids received and not yet released.
    to_send: VecDeque<Packet>,
    qos2_unreleased: HashSet<u16>,
}

impl World {
    fn client_reads(&mut self, s: &mut Session) {
        while let Some(packet) = s.poll_transmit() {
            match packet {
                Packet::Publish(p) => {
                    let id = id_of(&p);
                    assert!(id < self.published, "delivered {id}, never published");
                    assert_eq!(
                        self.accepted.get(&id),
                        Some(&p.qos),
                        "message {id} at the wrong QoS"
                    );
                    let new = match (p.qos, p.packet_id) {
                        (QoS::AtMostOnce, _) => true,
                        (QoS::AtLeastOnce, Some(pid)) => {
                            self.to_send.push_back(Packet::PubAck(pid));
                            true
                        }
                        (_, Some(pid)) => {
                            self.to_send.push_back(Packet::PubRec(pid));
                            self.qos2_unreleased.insert(pid.get())
                        }
                        (_, None) => panic!("QoS > 0 without packet id"),
                    };
                    if new {
                        let count = self.delivered.entry(id).or_default();
                        if *count == 0 {
                            self.first_deliveries.push(id);
                        }
                        *count += 1;
                    }
                }
                Packet::PubRel(pid) => {
                    self.qos2_unreleased.remove(&pid.get());
                    self.to_send.push_back(Packet::PubComp(pid));
                }
                _ => {}
            }
        }
    }

    fn reconnect(&mut self, s: &mut Session, clean: bool) {
        // A client told that no session is present drops its own (MQTT-3.2.2-4).
        if !connect(s, clean, self.now) {
            self.qos2_unreleased.clear();
        }
    }

    fn client_acks(&mut self, s: &mut Session, n: usize) {
        for _ in 0..n {
            let Some(ack) = self.to_send.pop_front() else {
                break;
            };
            s.handle_packet(ack, self.now)
                .expect("a conforming client's ack is accepted");
        }
    }

    fn step(&mut self, s: &mut Session, op: &Op) {
        // As the broker does whenever a connection waits: it must never lose state.
        s.release_idle_memory();
        match *op {
            Op::Publish { qos, granted } => {
                let id = self.published;
                self.published += 1;
                let outcome = s.handle_delivery(message(id, qos, self.now), granted, self.now);
                if matches!(outcome, DeliveryOutcome::Sent | DeliveryOutcome::Queued) {
                    self.accepted.insert(id, qos.min(granted));
                }
            }
            Op::ClientReads if s.is_online() => self.client_reads(s),
            Op::ClientAcks(n) if s.is_online() => self.client_acks(s, n),
            Op::ConnectionLost => {
                let _ = s.connection_lost(self.now);
                self.to_send.clear();
            }
            Op::Reconnect { clean } if !s.is_online() => self.reconnect(s, clean),
            Op::ClockJump(ms) => {
                self.now += ms;
                s.handle_timeout(self.now);
            }
            _ => {}
        }
        while let Some(event) = s.poll_event() {
            if let Event::Dropped { message, .. } = event {
                self.excused.insert(message.0);
            }
        }
    }

    /// Reconnects if needed and lets the client catch up, jumping the clock for pacing.
    fn drain(&mut self, s: &mut Session) {
        if !s.is_online() {
            let clean = !s.is_persistent();
            self.step(s, &Op::Reconnect { clean });
        }
        for _ in 0..10_000 {
            self.step(s, &Op::ClientReads);
            self.step(s, &Op::ClientAcks(usize::MAX));
            if s.inflight_len() == 0 && s.queued_len() == 0 {
                return;
            }
            if self.to_send.is_empty() {
                let next = s.poll_timeout().unwrap_or(self.now).max(self.now);
                self.step(s, &Op::ClockJump(next - self.now));
            }
        }
        panic!("the session never drained");
    }
}

fn check_limits(s: &Session, config: &SessionConfig) {
    assert!(s.inflight_len() <= usize::from(config.inflight_window.max(1)));
    assert!(s.queued_len() <= config.max_queued_messages);
    assert!(s.queued_bytes() <= config.max_queued_bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn session_keeps_the_qos_promises(config in config(), clean_first in prop::bool::weighted(0.2), ops in prop::collection::vec(op(), 0..150)) {
        let mut s = session(config);
        let mut world = World::default();
        world.step(&mut s, &Op::Reconnect { clean: clean_first });
        for op in &ops {
            world.step(&mut s, op);
            check_limits(&s, &config);
        }
        world.drain(&mut s);
        check_limits(&s, &config);

        for (id, count) in &world.delivered {
            if world.accepted[id] != QoS::AtLeastOnce {
                prop_assert_eq!(*count, 1, "message {} (QoS {:?}) delivered {} times", id, world.accepted[id], count);
            }
        }
        for (id, qos) in &world.accepted {
            if *qos != QoS::AtMostOnce && !world.excused.contains(id) {
                prop_assert!(world.delivered.contains_key(id), "accepted QoS {:?} message {} never delivered", qos, id);
            }
        }
        let ordered: Vec<u128> = world.first_deliveries.iter().copied().filter(|id| world.accepted[id] != QoS::AtMostOnce).collect();
        prop_assert!(ordered.windows(2).all(|w| w[0] < w[1]), "out of order: {:?}", ordered);
    }
}
