//! Inbound QoS 1 and 2: acknowledgements held until the broker says a message is safe, and
//! the awaiting-PUBREL set that keeps a QoS 2 message from being delivered twice.

use std::collections::VecDeque;

use crate::thin::Thin;

use mqgate_codec::{Packet, PacketId, QoS};

use crate::InboundToken;

/// An acknowledgement owed on the current connection, in the order of the PUBLISHes
/// (MQTT-4.6.0-2, -3): it goes out once it and everything before it are done.
#[derive(Debug, Clone, Copy)]
struct OwedAck {
    seq: u64,
    packet_id: PacketId,
    qos: QoS,
    done: bool,
}

/// A QoS 2 packet id between PUBLISH and PUBREL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Received {
    /// Emitted as the event with token `seq`; not yet safe, so no PUBREC yet. `handed`: the
    /// broker took the event (polled it), so the message's store writes are submitted.
    Routing { seq: u64, handed: bool },
    /// Safe, PUBREC sent (or owed): a repeated PUBLISH gets only another PUBREC.
    Stored,
}

/// What to do with an inbound PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InboundAction {
    /// Emit the PUBLISH event with this token (`None` for QoS 0).
    Route(Option<InboundToken>),
    /// A QoS 2 repeat: no event; the PUBREC owed (or now owed) answers it.
    Duplicate,
}

/// Why a PUBREL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnexpectedPubRel;

#[derive(Debug, Default)]
pub(crate) struct Inbound {
    next_seq: u64,
    owed: Thin<VecDeque<OwedAck>>,
    /// Sorted by packet id, for binary search.
    awaiting_pubrel: Thin<Vec<(PacketId, Received)>>,
}

impl Inbound {
    /// Frees the buffers while nothing is in them.
    pub(crate) fn release_idle_memory(&mut self) {
        self.owed.release_if_empty();
        self.awaiting_pubrel.release_if_empty();
    }

    /// Packet ids awaiting PUBREL whose message the broker took (safe, or with its store
    /// writes submitted): the persistent part. A broker saves them in the same commit as the
    /// message or after it, so a restored id never stands for a message that was not kept.
    /// An id whose event was not taken yet is left out: after a crash its PUBLISH, resent,
    /// must be routed.
    pub(crate) fn stored_ids(&self) -> impl Iterator<Item = PacketId> + '_ {
        self.awaiting_pubrel
            .iter()
            .filter(|(_, r)| matches!(r, Received::Stored | Received::Routing { handed: true, .. }))
            .map(|(id, _)| *id)
    }

    /// The broker took the event of `token` (see [`Received::Routing`]).
    pub(crate) fn handed(&mut self, token: InboundToken) {
        if token.qos != QoS::ExactlyOnce {
            return;
        }
        if let Ok(i) = self
            .awaiting_pubrel
            .binary_search_by_key(&token.packet_id, |(id, _)| *id)
        {
            if let Some((_, Received::Routing { seq, handed })) = self.awaiting_pubrel.get_mut(i) {
                if *seq == token.seq {
                    *handed = true;
                }
            }
        }
    }

    /// The broker could not make the message of `token` safe (its store write failed): the
    /// id is forgotten, so the PUBLISH, when the client resends it, is routed again instead of
    /// being acknowledged for a message that was not kept.
    pub(crate) fn failed(&mut self, token: InboundToken) {
        if token.qos == QoS::ExactlyOnce {
            if let Ok(i) = self
                .awaiting_pubrel
                .binary_search_by_key(&token.packet_id, |(id, _)| *id)
            {
                if matches!(self.awaiting_pubrel.get(i), Some((_, Received::Routing { seq, .. })) if *seq == token.seq)
                {
                    self.awaiting_pubrel.remove(i);
                }
            }
        }
        // Its acknowledgement is never sent; later ones must not wait behind it.
        self.owed.retain(|a| a.seq != token.seq);
    }

    pub(crate) fn restore(&mut self, ids: impl IntoIterator<Item = PacketId>) {
        self.awaiting_pubrel = Thin::from(
            ids.into_iter()
                .map(|id| (id, Received::Stored))
                .collect::<Vec<_>>(),
        );
        self.awaiting_pubrel.sort_unstable_by_key(|(id, _)| *id);
        self.awaiting_pubrel.dedup_by_key(|(id, _)| *id);
    }

    pub(crate) fn on_publish(&mut self, qos: QoS, packet_id: PacketId) -> InboundAction {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let token = InboundToken {
            seq,
            packet_id,
            qos,
        };
        let owe = |done| OwedAck {
            seq,
            packet_id,
            qos,
            done,
        };
        if qos != QoS::ExactlyOnce {
            self.owed.push_back(owe(false));
            return InboundAction::Route(Some(token));
        }
        match self
            .awaiting_pubrel
            .binary_search_by_key(&packet_id, |(id, _)| *id)
        {
            Ok(i) => {
                let stored = self.awaiting_pubrel.get(i).map(|(_, r)| *r) == Some(Received::Stored);
                let already_owed = self
                    .owed
                    .iter()
                    .any(|a| a.qos == QoS::ExactlyOnce && a.packet_id == packet_id);
                // An unsent PUBREC on this connection covers the repeat; otherwise owe one,
                // ready at once if the message is already safe.
                if !already_owed {
                    self.owed.push_back(owe(stored));
                }
                InboundAction::Duplicate
            }
            Err(i) => {
                self.awaiting_pubrel
                    .insert(i, (packet_id, Received::Routing { seq, handed: false }));
                self.owed.push_back(owe(false));
                InboundAction::Route(Some(token))
            }
        }
    }

    /// The broker made the message of `token` safe.
    pub(crate) fn done(&mut self, token: InboundToken) {
        if token.qos == QoS::ExactlyOnce {
            let Ok(i) = self
                .awaiting_pubrel
                .binary_search_by_key(&token.packet_id, |(id, _)| *id)
            else {
                return;
            };
            let Some(entry) = self.awaiting_pubrel.get_mut(i) else {
                return;
            };
            if !matches!(entry.1, Received::Routing { seq, .. } if seq == token.seq) {
                return;
            }
            entry.1 = Received::Stored;
            // Every PUBREC owed for this id on this connection can go now, including one
            // owed to a repeat that arrived on a later connection than the original.
            for ack in self.owed.iter_mut() {
                if ack.qos == QoS::ExactlyOnce && ack.packet_id == token.packet_id {
                    ack.done = true;
                }
            }
        } else if let Ok(i) = self.owed.binary_search_by_key(&token.seq, |a| a.seq) {
            if let Some(ack) = self.owed.get_mut(i) {
                ack.done = true;
            }
        }
    }

    /// The next acknowledgement that may be sent, in order.
    pub(crate) fn next_ack(&mut self) -> Option<Packet> {
        if !self.owed.front()?.done {
            return None;
        }
        let ack = self.owed.pop_front()?;
        Some(match ack.qos {
            QoS::ExactlyOnce => Packet::PubRec(ack.packet_id),
            _ => Packet::PubAck(ack.packet_id),
        })
    }

    /// PUBREL: frees the packet id. `resumed` says whether this connection resumed a stored
    /// session, where a PUBREL for an id already released is the client repeating itself
    /// after a lost PUBCOMP (MQTT-4.3.3), not a violation.
    pub(crate) fn on_pubrel(
        &mut self,
        packet_id: PacketId,
        resumed: bool,
    ) -> Result<(), UnexpectedPubRel> {
        match self
            .awaiting_pubrel
            .binary_search_by_key(&packet_id, |(id, _)| *id)
        {
            Ok(i) if self.awaiting_pubrel.get(i).map(|(_, r)| *r) == Some(Received::Stored) => {
                self.awaiting_pubrel.remove(i);
                // A PUBREC still owed to a repeat is void now: the client has had one, and
                // sent late it would answer the next message to reuse the id.
                self.owed
                    .retain(|a| !(a.qos == QoS::ExactlyOnce && a.packet_id == packet_id));
                Ok(())
            }
            Err(_) if resumed => Ok(()),
            _ => Err(UnexpectedPubRel),
        }
    }

    /// The connection ended: acknowledgements owed on it are void (the client resends the
    /// PUBLISH). Ids still routing stay, so a repeat is not routed twice.
    pub(crate) fn connection_ended(&mut self) {
        self.owed.clear();
    }

    pub(crate) fn clear(&mut self) {
        self.owed.clear();
        self.awaiting_pubrel.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap_or(PacketId::MIN)
    }

    fn token(action: InboundAction) -> InboundToken {
        match action {
            InboundAction::Route(Some(t)) => t,
            other => panic!("expected a routed publish, got {other:?}"),
        }
    }

    fn acks(inbound: &mut Inbound) -> Vec<Packet> {
        std::iter::from_fn(|| inbound.next_ack()).collect()
    }

    #[test]
    fn acks_leave_in_publish_order_whatever_order_done_comes_in() {
        let mut inbound = Inbound::default();
        let a = token(inbound.on_publish(QoS::AtLeastOnce, id(1)));
        let b = token(inbound.on_publish(QoS::ExactlyOnce, id(2)));
        let c = token(inbound.on_publish(QoS::AtLeastOnce, id(3)));
        inbound.done(c);
        inbound.done(b);
        assert_eq!(acks(&mut inbound), []);
        inbound.done(a);
        assert_eq!(
            acks(&mut inbound),
            [
                Packet::PubAck(id(1)),
                Packet::PubRec(id(2)),
                Packet::PubAck(id(3))
            ]
        );
    }

    #[test]
    fn qos2_repeat_is_not_routed_again_and_gets_one_pubrec_per_connection() {
        let mut inbound = Inbound::default();
        let first = token(inbound.on_publish(QoS::ExactlyOnce, id(9)));
        assert_eq!(
            inbound.on_publish(QoS::ExactlyOnce, id(9)),
            InboundAction::Duplicate
        );
        inbound.done(first);
        assert_eq!(acks(&mut inbound), [Packet::PubRec(id(9))]);
        assert_eq!(
            inbound.on_publish(QoS::ExactlyOnce, id(9)),
            InboundAction::Duplicate
        );
        assert_eq!(acks(&mut inbound), [Packet::PubRec(id(9))]);
        assert_eq!(inbound.on_pubrel(id(9), false), Ok(()));
        // After PUBREL the id is free: the same id is a new message.
        assert!(matches!(
            inbound.on_publish(QoS::ExactlyOnce, id(9)),
            InboundAction::Route(Some(_))
        ));
    }

    #[test]
    fn repeat_on_a_new_connection_while_routing_gets_its_pubrec_when_done() {
        let mut inbound = Inbound::default();
        let first = token(inbound.on_publish(QoS::ExactlyOnce, id(4)));
        inbound.connection_ended();
        assert_eq!(
            inbound.on_publish(QoS::ExactlyOnce, id(4)),
            InboundAction::Duplicate
        );
        assert_eq!(acks(&mut inbound), []);
        inbound.done(first);
        assert_eq!(acks(&mut inbound), [Packet::PubRec(id(4))]);
    }

    #[test]
    fn pubrel_rules() {
        let mut inbound = Inbound::default();
        let t = token(inbound.on_publish(QoS::ExactlyOnce, id(5)));
        // Before the PUBREC went out, a PUBREL is a violation.
        assert_eq!(inbound.on_pubrel(id(5), true), Err(UnexpectedPubRel));
        inbound.done(t);
        // Unknown id: a violation on a fresh session, a repeat on a resumed one.
        assert_eq!(inbound.on_pubrel(id(6), false), Err(UnexpectedPubRel));
        assert_eq!(inbound.on_pubrel(id(6), true), Ok(()));
        assert_eq!(inbound.stored_ids().collect::<Vec<_>>(), [id(5)]);
    }

    #[test]
    fn a_pubrec_owed_to_a_repeat_is_void_after_pubrel() {
        let mut inbound = Inbound::default();
        let t = token(inbound.on_publish(QoS::ExactlyOnce, id(4)));
        inbound.done(t);
        assert_eq!(acks(&mut inbound), [Packet::PubRec(id(4))]);
        // A repeat's PUBREC is held behind an unfinished QoS 1 message...
        let blocking = token(inbound.on_publish(QoS::AtLeastOnce, id(1)));
        assert_eq!(
            inbound.on_publish(QoS::ExactlyOnce, id(4)),
            InboundAction::Duplicate
        );
        assert_eq!(
            inbound.on_publish(QoS::ExactlyOnce, id(4)),
            InboundAction::Duplicate
        );
        // ...when the PUBREL for the first PUBREC comes: it must not go out afterwards.
        assert_eq!(inbound.on_pubrel(id(4), false), Ok(()));
        inbound.done(blocking);
        assert_eq!(acks(&mut inbound), [Packet::PubAck(id(1))]);
    }

    #[test]
    fn ids_the_broker_took_are_persistent_and_a_failed_one_is_forgotten() {
        let mut inbound = Inbound::default();
        let taken = token(inbound.on_publish(QoS::ExactlyOnce, id(3)));
        let not_taken = token(inbound.on_publish(QoS::ExactlyOnce, id(8)));
        assert_eq!(inbound.stored_ids().count(), 0, "nothing taken yet");
        inbound.handed(taken);
        assert_eq!(inbound.stored_ids().collect::<Vec<_>>(), [id(3)]);
        // The store refused the message: its id goes, and the next one is acknowledged.
        inbound.failed(taken);
        assert_eq!(inbound.stored_ids().count(), 0);
        inbound.done(not_taken);
        assert_eq!(acks(&mut inbound), [Packet::PubRec(id(8))]);
        // The client resends the failed one: routed again, as a new message.
        assert!(matches!(
            inbound.on_publish(QoS::ExactlyOnce, id(3)),
            InboundAction::Route(Some(_))
        ));
    }

    #[test]
    fn stale_tokens_are_ignored() {
        let mut inbound = Inbound::default();
        let t = token(inbound.on_publish(QoS::AtLeastOnce, id(1)));
        inbound.connection_ended();
        inbound.done(t);
        assert_eq!(acks(&mut inbound), []);
    }
}
