//! Model-based test of the inbound direction: a client publishing at QoS 1 and 2, repeating
//! QoS 2 PUBLISHes before PUBREC, and resending PUBLISHes and PUBRELs on reconnect, across lost connections and reconnects, while
//! the broker makes messages safe late and in any order.
//!
//! Checked: a QoS 2 message is routed exactly once; a QoS 1 message at least once; no
//! PUBACK or PUBREC leaves before the broker made that message safe; and once everything has
//! settled, every message the client saw completed was routed.

mod support;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use mqgate_codec::{ByteStr, Packet, PacketId, Publish, QoS};
use mqgate_session::{Event, InboundToken, Session, SessionConfig};
use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
enum Op {
    Publish { exactly_once: bool },
    Repeat(usize),
    BrokerDone(usize),
    ClientReads,
    ConnectionLost,
    Reconnect { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(|exactly_once| Op::Publish { exactly_once }),
        2 => (0usize..8).prop_map(Op::Repeat),
        4 => (0usize..8).prop_map(Op::BrokerDone),
        4 => Just(Op::ClientReads),
        1 => Just(Op::ConnectionLost),
        1 => prop::bool::weighted(0.15).prop_map(|clean| Op::Reconnect { clean }),
    ]
}

/// One of the client's outbound messages: packet id, content number, QoS, PUBREC received.
#[derive(Debug, Clone, Copy)]
struct Outgoing {
    packet_id: PacketId,
    content: u128,
    qos: QoS,
    released: bool,
}

#[derive(Default)]
struct World {
    next_content: u128,
    in_flight: Vec<Outgoing>,
    /// Tokens the broker has not yet made safe, with their content.
    routing: Vec<(InboundToken, u128)>,
    safe: HashSet<u128>,
    routed: HashMap<u128, usize>,
    completed: HashSet<u128>,
    qos_of: HashMap<u128, QoS>,
}

fn publish(o: &Outgoing, dup: bool) -> Packet {
    Packet::Publish({
        let mut p = Publish::new(
            o.qos,
            Some(o.packet_id),
            ByteStr::from_static("up"),
            Bytes::from(o.content.to_be_bytes().to_vec()),
        );
        p.dup = dup;
        p
    })
}

impl World {
    fn send(&mut self, s: &mut Session, packet: Packet) {
        s.handle_packet(packet, 0)
            .expect("a conforming client is never refused");
        while let Some(event) = s.poll_event() {
            if let Event::Publish { publish, token, .. } = event {
                let content = id_of(&publish);
                *self.routed.entry(content).or_default() += 1;
                self.routing.push((token.expect("QoS > 0"), content));
            }
        }
    }

    fn free_packet_id(&self) -> Option<PacketId> {
        (1..=8)
            .filter_map(PacketId::new)
            .find(|id| self.in_flight.iter().all(|o| o.packet_id != *id))
    }

    fn client_reads(&mut self, s: &mut Session) {
        let mut replies = Vec::new();
        while let Some(packet) = s.poll_transmit() {
            let (Packet::PubAck(id) | Packet::PubRec(id) | Packet::PubComp(id)) = packet else {
                continue;
            };
            let Some(i) = self.in_flight.iter().position(|o| o.packet_id == id) else {
                // A repeated PUBLISH may draw a second acknowledgement after the first
                // completed the flow; a client ignores it.
                assert!(
                    !matches!(packet, Packet::PubComp(_)),
                    "{packet:?} for nothing the client sent"
                );
                continue;
            };
            let o = self.in_flight[i];
            if o.released && matches!(packet, Packet::PubRec(_)) {
                continue; // PUBREL already sent
            }
            match packet {
                Packet::PubComp(_) => assert!(o.released, "PUBCOMP before PUBREL"),
                _ => assert!(
                    self.safe.contains(&o.content),
                    "{packet:?} before message {} was safe",
                    o.content
                ),
            }
            if matches!(packet, Packet::PubRec(_)) {
                self.in_flight[i].released = true;
                replies.push(Packet::PubRel(id));
            } else {
                self.completed.insert(o.content);
                self.in_flight.remove(i);
            }
        }
        for r in replies {
            self.send(s, r);
        }
    }

    fn step(&mut self, s: &mut Session, op: &Op) {
        let online = s.is_online();
        match *op {
            Op::Publish { exactly_once } if online => {
                let Some(packet_id) = self.free_packet_id() else {
                    return;
                };
                let qos = if exactly_once {
                    QoS::ExactlyOnce
                } else {
                    QoS::AtLeastOnce
                };
                let o = Outgoing {
                    packet_id,
                    content: self.next_content,
                    qos,
                    released: false,
                };
                self.next_content += 1;
                self.qos_of.insert(o.content, qos);
                self.in_flight.push(o);
                self.send(s, publish(&o, false));
            }
            Op::Repeat(i) if online => {
                // Only QoS 2 may be repeated on the same connection without ambiguity: its id
                // stays taken until PUBREL, while a QoS 1 repeat races its PUBACK.
                let repeatable = |o: &Outgoing| o.qos == QoS::ExactlyOnce && !o.released;
                if let Some(o) = self.in_flight.get(i).copied().filter(repeatable) {
                    self.send(s, publish(&o, true));
                }
            }
            Op::BrokerDone(i) if !self.routing.is_empty() => {
                let (token, content) = self.routing.remove(i % self.routing.len());
                self.safe.insert(content);
                s.inbound_done(token);
            }
            Op::ClientReads if online => self.client_reads(s),
            Op::ConnectionLost => {
                let _ = s.connection_lost(0);
            }
            Op::Reconnect { clean } if !online => {
                if !connect(s, clean, 0) {
                    // No session on the server: the client discards its own (MQTT-3.2.2-4).
                    self.in_flight.clear();
                }
                // Resend what is unfinished, in order (MQTT-4.4.0-1).
                for o in self.in_flight.clone() {
                    let packet = if o.released {
                        Packet::PubRel(o.packet_id)
                    } else {
                        publish(&o, true)
                    };
                    self.send(s, packet);
                }
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn inbound_qos2_is_routed_once_and_acknowledged_only_when_safe(ops in prop::collection::vec(op(), 0..150)) {
        let mut s = session(SessionConfig::default());
        let mut world = World::default();
        world.step(&mut s, &Op::Reconnect { clean: false });
        for op in &ops {
            world.step(&mut s, op);
        }
        // Settle: stay connected, make everything safe, let the client finish.
        if !s.is_online() {
            let clean = !s.is_persistent();
            world.step(&mut s, &Op::Reconnect { clean });
        }
        for _ in 0..100 {
            while !world.routing.is_empty() {
                world.step(&mut s, &Op::BrokerDone(0));
            }
            world.step(&mut s, &Op::ClientReads);
        }
        prop_assert!(world.in_flight.is_empty(), "client still waiting: {:?}", world.in_flight);
        for (content, count) in &world.routed {
            if world.qos_of[content] == QoS::ExactlyOnce {
                prop_assert_eq!(*count, 1, "QoS 2 message {} routed {} times", content, count);
            }
        }
        for content in &world.completed {
            prop_assert!(world.routed.contains_key(content), "message {} completed but never routed", content);
        }
    }
}
