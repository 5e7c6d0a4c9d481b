//! Outbound: deliveries from the router, the window, the pacing and the acknowledgement flows.

use std::sync::Arc;

use mqgate_codec::{Packet, PacketId, Publish, QoS};

use crate::outbound::{InFlight, Stage};
use crate::queue::QueuedMessage;
use crate::session::unknown_id;
use crate::{DeliveryOutcome, DropReason, Event, Message, Pacing, Session, SessionError};

impl Session {
    /// Delivers a routed message at `granted_qos` (the matching subscription's QoS; the
    /// message goes out at the lower of the two).
    ///
    /// - Online: QoS 0 is sent at once. QoS 1 and 2 are sent when the window has room and
    ///   nothing is queued before them, otherwise queued behind what is.
    /// - Offline: QoS 0 is dropped; QoS 1 and 2 are queued for a persistent session and
    ///   dropped for a clean one (see [`Session`](crate::Session) for the table).
    ///
    /// A queued message is subject to the queue's limits and policy.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use mqgate_codec::{ByteStr, Connect, Packet, QoS};
    /// # use mqgate_session::{DeliveryOutcome, Message, MessageId, Session, SessionConfig};
    /// let mut session = Session::new(ByteStr::from_static("GID_a@@@1"), SessionConfig::default());
    /// let _ = session.connect(&Connect { keep_alive: 60, ..Connect::default() }, 0)?;
    /// let message = Arc::new(Message::new(
    ///     MessageId(1),
    ///     ByteStr::from_static("a/b"),
    ///     bytes::Bytes::from_static(b"hi"),
    ///     QoS::ExactlyOnce,
    ///     0,
    /// ));
    /// assert_eq!(session.handle_delivery(message, QoS::AtLeastOnce, 5), DeliveryOutcome::Sent);
    /// assert!(matches!(session.poll_transmit(), Some(Packet::ConnAck(_))));
    /// match session.poll_transmit() {
    ///     Some(Packet::Publish(p)) => assert_eq!(p.qos, QoS::AtLeastOnce),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), mqgate_session::SessionError>(())
    /// ```
    pub fn handle_delivery(
        &mut self,
        message: Arc<Message>,
        granted_qos: QoS,
        now: u64,
    ) -> DeliveryOutcome {
        self.deliver(message, granted_qos, false, now)
    }

    /// [`handle_delivery`](Self::handle_delivery) for the copy of a message that a shared
    /// subscription (`$share/{group}/{filter}`) picked this session for. The session keeps
    /// the mark with the copy, queued, in flight, in its record and across a reconnect, and
    /// hands it out with the PUBLISH
    /// ([`poll_transmit_with_message`](Self::poll_transmit_with_message)): an MQTT 5 PUBLISH
    /// of a shared copy carries the shared subscriptions' identifiers, a plain copy of the
    /// same message the plain subscriptions' (MQTT-3.3.4-5). (The mark comes with the
    /// message when the PUBLISH needs it: here, a subscription has an identifier.)
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use mqgate_codec::{ByteStr, Connect, Packet, PacketId, QoS};
    /// # use mqgate_session::{Message, MessageId, Session, SessionConfig};
    /// let mut session = Session::new(ByteStr::from_static("GID_a@@@1"), SessionConfig::default());
    /// session.set_protocol(5);
    /// let _ = session.connect(&Connect { keep_alive: 60, ..Connect::default() }, 0)?;
    /// let filter = ByteStr::from_static("a/b");
    /// session.subscribed(PacketId::MIN, [(filter, Some(QoS::AtLeastOnce))]);
    /// if let Some(subscription) = session.subscription_mut("a/b") {
    ///     subscription.identifier = Some(1);
    /// }
    /// let message = Arc::new(Message::new(
    ///     MessageId(1), ByteStr::from_static("a/b"), bytes::Bytes::new(), QoS::AtLeastOnce, 0,
    /// ));
    /// session.handle_shared_delivery(message.clone(), QoS::AtLeastOnce, 5);
    /// session.handle_delivery(message, QoS::AtLeastOnce, 5);
    /// let _connack = session.poll_transmit_with_message();
    /// let marks: Vec<bool> = std::iter::from_fn(|| session.poll_transmit_with_message())
    ///     .filter_map(|(_, copy)| copy.map(|c| c.shared))
    ///     .collect();
    /// assert_eq!(marks, [true, false]);
    /// # Ok::<(), mqgate_session::SessionError>(())
    /// ```
    pub fn handle_shared_delivery(
        &mut self,
        message: Arc<Message>,
        granted_qos: QoS,
        now: u64,
    ) -> DeliveryOutcome {
        self.deliver(message, granted_qos, true, now)
    }

    fn deliver(
        &mut self,
        message: Arc<Message>,
        granted_qos: QoS,
        shared: bool,
        now: u64,
    ) -> DeliveryOutcome {
        let qos = message.qos.min(granted_qos);
        if qos != QoS::AtMostOnce && !message.retain && self.queue.take_paged(message.id) {
            // A store-backed queue read this message's entry before this delivery of it
            // arrived: it is held, in flight or delivered already.
            return DeliveryOutcome::Queued;
        }
        if !self.is_online() {
            return match qos {
                QoS::AtMostOnce => DeliveryOutcome::Dropped(DropReason::Offline),
                _ if !self.persistent => DeliveryOutcome::Dropped(DropReason::CleanSession),
                _ => self.enqueue(
                    QueuedMessage {
                        message,
                        qos,
                        shared,
                    },
                    now,
                ),
            };
        }
        if qos == QoS::AtMostOnce {
            self.transmit_publish(at_most_once(&message), &message, shared);
            return DeliveryOutcome::Sent;
        }
        let entry = QueuedMessage {
            message,
            qos,
            shared,
        };
        // Anything queued goes first, so messages keep their order (MQTT-4.6.0-5).
        if self.queue.is_empty() && self.inflight.len() < self.config.window() {
            self.send(entry);
            return DeliveryOutcome::Sent;
        }
        self.enqueue(entry, now)
    }

    fn enqueue(&mut self, entry: QueuedMessage, now: u64) -> DeliveryOutcome {
        self.queue.push(entry, &self.config, now, &mut self.events)
    }

    /// Sends a QoS 1 or 2 message under a fresh packet id.
    fn send(&mut self, entry: QueuedMessage) {
        let Some(packet_id) = self.inflight.allocate() else {
            // Unreachable with a window of at most 65 535; keep the message rather than lose it.
            self.queue.push_front(entry);
            return;
        };
        let QueuedMessage {
            message,
            qos,
            shared,
        } = entry;
        let publish = InFlight::first_publish(packet_id, qos, &message);
        self.transmit_publish(publish, &message, shared);
        self.inflight.push(InFlight {
            packet_id,
            message_id: message.id,
            message: Some(message),
            qos,
            stage: Stage::Published,
            shared,
        });
    }

    /// Moves queued messages into the window as far as the window and the pacing allow.
    pub(crate) fn release_queued(&mut self, now: u64) {
        if !self.is_online() {
            return;
        }
        while self.inflight.len() < self.config.window()
            && !self.queue.is_empty()
            && self.batch_has_room(now)
        {
            let Some(next) = self
                .queue
                .pop_live(self.config.message_ttl_ms, now, &mut self.events)
            else {
                break;
            };
            if let Some(link) = self.link.as_mut() {
                link.batch_left = link.batch_left.saturating_sub(1);
            }
            self.send(next);
        }
    }

    /// Whether the current batch may release one more message, starting a new batch when
    /// one is due. Always true under [`Pacing::Window`].
    fn batch_has_room(&mut self, now: u64) -> bool {
        let Pacing::Batches { size, interval_ms } = self.config.pacing else {
            return true;
        };
        let Some(link) = self.link.as_mut() else {
            return false;
        };
        if link.batch_left == 0 && now >= link.next_batch_at {
            link.batch_left = size.max(1);
            link.next_batch_at = now.saturating_add(interval_ms);
        }
        link.batch_left > 0
    }

    pub(crate) fn on_puback(&mut self, id: PacketId, now: u64) -> Result<(), SessionError> {
        let entry = self
            .inflight
            .remove(id, Stage::Published)
            .filter(|e| e.qos == QoS::AtLeastOnce);
        let entry = entry.ok_or_else(|| unknown_id("PUBACK", id))?;
        self.events.push_back(Event::Acknowledged {
            message: entry.message_id,
            qos: QoS::AtLeastOnce,
        });
        self.release_queued(now);
        Ok(())
    }

    pub(crate) fn on_pubrec(&mut self, id: PacketId) -> Result<(), SessionError> {
        if let Some(entry) = self
            .inflight
            .find_mut(id, Stage::Published)
            .filter(|e| e.qos == QoS::ExactlyOnce)
        {
            entry.stage = Stage::Released;
            entry.message = None;
            let message = entry.message_id;
            self.events.push_back(Event::Acknowledged {
                message,
                qos: QoS::ExactlyOnce,
            });
        } else if self.inflight.find_mut(id, Stage::Released).is_none() {
            return Err(unknown_id("PUBREC", id));
        }
        // A repeated PUBREC (its PUBREL was lost) gets the PUBREL again.
        self.transmits.push_back(Packet::PubRel(id));
        Ok(())
    }

    pub(crate) fn on_pubcomp(&mut self, id: PacketId, now: u64) -> Result<(), SessionError> {
        self.inflight
            .remove(id, Stage::Released)
            .ok_or_else(|| unknown_id("PUBCOMP", id))?;
        self.release_queued(now);
        Ok(())
    }
}

fn at_most_once(message: &Message) -> Publish {
    let mut publish = Publish::at_most_once(message.topic.clone(), message.payload.clone());
    publish.retain = message.retain;
    publish
}
