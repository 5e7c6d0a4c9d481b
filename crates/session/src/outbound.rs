//! The in-flight window: outbound QoS 1 and 2 messages sent and not yet fully acknowledged.

use std::collections::VecDeque;

use crate::thin::Thin;
use std::sync::Arc;

use mqgate_codec::{PacketId, Publish, QoS};

use crate::{Message, MessageId};

/// Where an outbound QoS 1 or 2 message is in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// QoS 2 only: PUBREC received, PUBREL sent; waiting for PUBCOMP.
    Released,
}

/// One packet id in use.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    pub(crate) packet_id: PacketId,
    pub(crate) message_id: MessageId,
    /// `None` once released: after PUBREC the sender must not send the message again, so
    /// its payload need not be held.
    pub(crate) message: Option<Arc<Message>>,
    pub(crate) qos: QoS,
    pub(crate) stage: Stage,
    /// A shared subscription's copy (see [`Session::handle_shared_delivery`](crate::Session::handle_shared_delivery)).
    pub(crate) shared: bool,
}

impl InFlight {
    /// The PUBLISH for this entry, `dup` set for a resend. `None` once released.
    pub(crate) fn publish(&self, dup: bool) -> Option<Publish> {
        let message = self.message.as_ref()?;
        let mut publish = InFlight::first_publish(self.packet_id, self.qos, message);
        publish.dup = dup;
        Some(publish)
    }

    /// The first PUBLISH of `message` under `packet_id` (DUP clear).
    pub(crate) fn first_publish(packet_id: PacketId, qos: QoS, message: &Message) -> Publish {
        let mut publish = Publish::new(
            qos,
            Some(packet_id),
            message.topic.clone(),
            message.payload.clone(),
        );
        publish.retain = message.retain;
        publish
    }
}

/// The in-flight entries in the order their PUBLISHes were first sent (the order resends
/// must keep, MQTT-4.6.0-1), and the packet id counter.
///
/// Lookups scan: the window is small (32 by default) and acknowledgements come mostly in
/// order, so the entry is nearly always at the front.
#[derive(Debug)]
pub(crate) struct InFlightWindow {
    entries: Thin<VecDeque<InFlight>>,
    next_packet_id: u16,
}

impl Default for InFlightWindow {
    fn default() -> Self {
        InFlightWindow {
            entries: Thin::default(),
            next_packet_id: 1,
        }
    }
}

impl InFlightWindow {
    /// Frees the buffer while nothing is in it.
    pub(crate) fn release_idle_memory(&mut self) {
        self.entries.release_if_empty();
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &InFlight> {
        self.entries.iter()
    }

    pub(crate) fn next_packet_id(&self) -> u16 {
        self.next_packet_id
    }

    pub(crate) fn set_next_packet_id(&mut self, id: u16) {
        self.next_packet_id = id.max(1);
    }

    pub(crate) fn contains(&self, packet_id: PacketId) -> bool {
        self.entries.iter().any(|e| e.packet_id == packet_id)
    }

    /// Takes the next packet id not in flight (MQTT-2.3.1-2). `None` only when all 65 535
    /// are in use, which a window of at most 65 535 never allows.
    pub(crate) fn allocate(&mut self) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            let candidate = PacketId::new(self.next_packet_id);
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if let Some(id) = candidate {
                if !self.contains(id) {
                    return Some(id);
                }
            }
        }
        None
    }

    pub(crate) fn push(&mut self, entry: InFlight) {
        self.entries.push_back(entry);
    }

    /// The entry for `packet_id` if it is in `stage`.
    pub(crate) fn find_mut(&mut self, packet_id: PacketId, stage: Stage) -> Option<&mut InFlight> {
        self.entries
            .iter_mut()
            .find(|e| e.packet_id == packet_id && e.stage == stage)
    }

    /// Removes and returns the entry for `packet_id` if it is in `stage`.
    pub(crate) fn remove(&mut self, packet_id: PacketId, stage: Stage) -> Option<InFlight> {
        let index = self
            .entries
            .iter()
            .position(|e| e.packet_id == packet_id && e.stage == stage)?;
        self.entries.remove(index)
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = InFlight> + '_ {
        self.entries.take_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: PacketId) -> InFlight {
        InFlight {
            packet_id: id,
            message_id: MessageId(0),
            message: None,
            qos: QoS::AtLeastOnce,
            stage: Stage::Published,
            shared: false,
        }
    }

    #[test]
    fn packet_ids_wrap_and_skip_those_in_flight() {
        let mut w = InFlightWindow::default();
        let first = w.allocate();
        assert_eq!(first.map(PacketId::get), Some(1));
        if let Some(id) = first {
            w.push(entry(id));
        }
        w.set_next_packet_id(u16::MAX);
        let ids: Vec<u16> = (0..3)
            .filter_map(|_| w.allocate())
            .map(PacketId::get)
            .collect();
        // 65535, then wrap past 0 and past 1 (still in flight).
        assert_eq!(ids, [u16::MAX, 2, 3]);
    }

    #[test]
    fn remove_needs_the_right_stage() {
        let mut w = InFlightWindow::default();
        let id = PacketId::MIN;
        w.push(entry(id));
        assert!(w.remove(id, Stage::Released).is_none());
        assert!(w.remove(id, Stage::Published).is_some());
        assert_eq!(w.len(), 0);
    }
}
