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
//!
//! Half the runs are MQTT 5 sessions with MQTT 5 flows: messages with their own Message
//! Expiry Interval (none is first sent once it passed: "If the Message Expiry Interval has
//! passed and the Server has not managed to start onward delivery to a matching subscriber,
//! then it MUST delete the copy of the message for that subscriber" [MQTT-3.3.2-5]), every
//! PUBLISH paired with the message it carries, and a client that refuses some QoS 2
//! messages with an error PUBREC, which ends the flow without PUBREL (4.3.3): the broker
//! hands the session the PUBREC and a PUBCOMP at once.

mod support;

use std::collections::{HashMap, HashSet, VecDeque};

use mqgate_codec::{ByteStr, Packet, PacketId, QoS};
use mqgate_session::{DeliveryOutcome, Event, FullPolicy, Pacing, Session, SessionConfig};
use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
enum Op {
    /// `expires_in`: the message's own expiry (MQTT 5), in ms from now.
    Publish {
        qos: QoS,
        granted: QoS,
        expires_in: Option<u64>,
        /// Delivered as a shared subscription's copy.
        shared: bool,
    },
    ClientReads,
    ClientAcks(usize),
    ConnectionLost,
    Reconnect {
        clean: bool,
    },
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
        // From 1 ms: an expiry at the publish instant itself (an interval of 0) reaches the
        // receivers online at that instant, and this model checks only that nothing is
        // first sent once its expiry passed.
        6 => (qos(), qos(), prop::option::weighted(0.3, 1u64..4_000), prop::bool::weighted(0.3))
            .prop_map(|(qos, granted, expires_in, shared)| Op::Publish { qos, granted, expires_in, shared }),
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
    /// An MQTT 5 session, whose client refuses the QoS 2 messages whose id is a multiple
    /// of 3 (PUBREC 0x80).
    v5: bool,
    /// The MQTT 5 session holds a subscription with an identifier, so every PUBLISH needs
    /// its message (otherwise only one with its own expiry does).
    identified: bool,
    now: u64,
    /// Message id -> when it expires, for those with their own expiry.
    expires: HashMap<u128, u64>,
    /// Packet ids of QoS 2 flows the client refused on this connection.
    refused: HashSet<u16>,
    /// What the session wrote and the client has not read yet, with when it was written.
    /// Also whether a subscription had an identifier then.
    wire: VecDeque<(u64, Packet, Option<mqgate_session::OutgoingMessage>, bool)>,
    /// Ids of the messages delivered as a shared subscription's copy.
    shared: HashSet<u128>,
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
    fn client_reads(&mut self) {
        while let Some((written_at, packet, paired, identified)) = self.wire.pop_front() {
            match packet {
                Packet::Publish(p) => {
                    let id = id_of(&p);
                    assert!(id < self.published, "delivered {id}, never published");
                    if self.v5 {
                        let paired = paired.map(|m| (m.message.id.0, m.shared));
                        let copy = (id, self.shared.contains(&id));
                        // A message with nothing of its own (the model's carry no
                        // properties and no RETAIN) to a session without subscription
                        // identifiers is not paired: its MQTT 5 form needs nothing from it.
                        let needed = identified || self.expires.contains_key(&id);
                        assert_eq!(
                            paired,
                            needed.then_some(copy),
                            "MQTT 5 PUBLISH paired with its message and copy when it needs it"
                        );
                    }
                    if let Some(&at) = self.expires.get(&id).filter(|_| !p.dup) {
                        assert!(
                            written_at < at,
                            "message {id} first sent at {written_at}, expired at {at}"
                        );
                    }
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
                        (_, Some(pid)) if self.v5 && id % 3 == 0 => {
                            // Refused: the flow ends with the PUBREC (the broker's v5 layer
                            // completes it for the session). Not delivered, so excused.
                            self.to_send.push_back(Packet::PubRec(pid));
                            self.to_send.push_back(Packet::PubComp(pid));
                            self.refused.insert(pid.get());
                            self.excused.insert(id);
                            false
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
                // The PUBREL of a refused flow on this connection: the broker's v5 layer
                // does not write it.
                Packet::PubRel(pid) if self.refused.remove(&pid.get()) => {}
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
        if self.identified && s.subscriptions().is_empty() {
            let granted = [(ByteStr::from_static("#"), Some(QoS::ExactlyOnce))];
            s.subscribed(PacketId::new(1).expect("not 0"), granted);
            s.subscription_mut("#").expect("just granted").identifier = Some(1);
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
            Op::Publish {
                qos,
                granted,
                expires_in,
                shared,
            } => {
                let id = self.published;
                self.published += 1;
                let mut m = message(id, qos, self.now);
                if let Some(ms) = expires_in.filter(|_| self.v5) {
                    let at = self.now + ms;
                    std::sync::Arc::make_mut(&mut m).expires_at_ms = Some(at);
                    self.expires.insert(id, at);
                }
                let outcome = if shared {
                    self.shared.insert(id);
                    s.handle_shared_delivery(m, granted, self.now)
                } else {
                    s.handle_delivery(m, granted, self.now)
                };
                if matches!(outcome, DeliveryOutcome::Sent | DeliveryOutcome::Queued) {
                    self.accepted.insert(id, qos.min(granted));
                }
            }
            Op::ClientReads if s.is_online() => self.client_reads(),
            Op::ClientAcks(n) if s.is_online() => self.client_acks(s, n),
            Op::ConnectionLost => {
                let _ = s.connection_lost(self.now);
                self.to_send.clear();
                self.wire.clear();
                self.refused.clear();
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
        while let Some((packet, paired)) = s.poll_transmit_with_message() {
            let identified = s.subscriptions().iter().any(|x| x.identifier.is_some());
            self.wire.push_back((self.now, packet, paired, identified));
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
            if s.inflight_len() == 0 && s.queued_len() == 0 && self.wire.is_empty() {
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
    fn session_keeps_the_qos_promises(config in config(), v5 in any::<bool>(), identified in any::<bool>(), clean_first in prop::bool::weighted(0.2), ops in prop::collection::vec(op(), 0..150)) {
        let mut s = session(config);
        if v5 {
            s.set_protocol(5);
        }
        let mut world = World { v5, identified: v5 && identified, ..World::default() };
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
