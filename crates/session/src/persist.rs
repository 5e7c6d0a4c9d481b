//! The persistent part of a session, as plain serde data a store can save.

use std::collections::HashMap;
use std::sync::Arc;

use mqgate_codec::{ByteStr, PacketId, QoS};
use serde::{Deserialize, Serialize};

use crate::outbound::{InFlight, Stage};
use crate::queue::QueuedMessage;
use crate::{Message, MessageId, RestoreError, Session, SessionConfig, Subscription};

/// A queued message, by reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRef {
    /// The message.
    pub message: MessageId,
    /// The QoS it will be sent at.
    #[serde(with = "crate::message::serde_qos")]
    pub qos: QoS,
    /// A shared subscription picked the session for this copy
    /// ([`Session::handle_shared_delivery`]). Absent from records written before it was
    /// kept (read as `false`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub shared: bool,
}

/// For `skip_serializing_if`: a `false` mark is left out of the record.
fn is_false(value: &bool) -> bool {
    !*value
}

/// Where a stored in-flight message is in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InFlightStage {
    /// PUBLISH sent, no PUBACK / PUBREC yet: resent with DUP on resume.
    Published,
    /// QoS 2, PUBREC received: PUBREL resent on resume.
    Released,
}

/// An outbound message in flight, by reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightRef {
    /// The packet id it was sent with.
    pub packet_id: PacketId,
    /// The message (not needed, so possibly not stored, once `Released`).
    pub message: MessageId,
    /// The QoS it was sent at (1 or 2).
    #[serde(with = "crate::message::serde_qos")]
    pub qos: QoS,
    /// Its stage.
    pub stage: InFlightStage,
    /// A shared subscription's copy, as in [`QueuedRef::shared`].
    #[serde(default, skip_serializing_if = "is_false")]
    pub shared: bool,
}

/// A session's persistent state with messages by id, so a store can keep a message delivered
/// to many sessions once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The client id.
    #[serde(with = "crate::message::serde_byte_str")]
    pub client_id: ByteStr,
    /// Accepted subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Queued messages, oldest first.
    pub queue: Vec<QueuedRef>,
    /// In-flight outbound messages, in the order they were first sent.
    pub inflight: Vec<InFlightRef>,
    /// Inbound QoS 2 packet ids acknowledged with PUBREC and not yet released.
    pub awaiting_pubrel: Vec<PacketId>,
    /// The next outbound packet id to try.
    pub next_packet_id: u16,
    /// The protocol level of the last CONNECT (4: MQTT 3.1.1, 5: MQTT 5): whether queued
    /// messages are written with their MQTT 5 properties on resume.
    #[serde(
        default = "default_protocol",
        skip_serializing_if = "is_default_protocol"
    )]
    pub protocol: u8,
    /// MQTT 5 Session Expiry Interval in seconds: how long the session is kept once its
    /// client is offline (`u32::MAX`: never ends). `None`: kept until a clean session
    /// replaces it, as 3.1.1 does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_interval_s: Option<u32>,
    /// When the client went offline (wall clock, ms since the epoch), for an expiring
    /// session; `None` while online or for a session that does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_since_ms: Option<u64>,
    /// The broker's configuration declared the session (as `[amqp] queues` declares a cloud
    /// SDK endpoint queue's) rather than a client or a first use making it: a start whose
    /// configuration no longer declares it removes it. Absent (older records): `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub configured: bool,
}

fn default_protocol() -> u8 {
    crate::session::PROTOCOL_V311
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` takes a reference
fn is_default_protocol(level: &u8) -> bool {
    *level == crate::session::PROTOCOL_V311
}

impl SessionRecord {
    /// Ids of the messages this record needs to be restored: queued ones and those in flight
    /// before PUBREC.
    pub fn message_ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        let queued = self.queue.iter().map(|q| q.message);
        let inflight = self
            .inflight
            .iter()
            .filter(|e| e.stage == InFlightStage::Published)
            .map(|e| e.message);
        queued.chain(inflight)
    }
}

/// A self-contained snapshot: the record and every message it refers to, once each.
///
/// ```
/// use mqgate_codec::{ByteStr, Connect};
/// use mqgate_session::{Session, SessionConfig};
///
/// let mut session = Session::new(ByteStr::from_static("GID_a@@@1"), SessionConfig::default());
/// let _ = session.connect(&Connect::default(), 0)?; // cleanSession = 0
/// let saved = serde_json::to_string(&session.persistent_state()).unwrap();
/// let restored = Session::restore(serde_json::from_str(&saved).unwrap(), SessionConfig::default(), 0).unwrap();
/// assert_eq!(restored.client_id(), "GID_a@@@1");
/// assert!(!restored.is_online());
/// # Ok::<(), mqgate_session::SessionError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistentSession {
    /// What the session holds, messages by id.
    pub record: SessionRecord,
    /// The messages the record refers to.
    pub messages: Vec<Message>,
}

impl Session {
    /// The persistent part of the session (subscriptions, queue, in-flight state,
    /// awaiting-PUBREL ids, packet id counter), with its messages.
    pub fn persistent_state(&self) -> PersistentSession {
        let record = self.record();
        let mut seen = std::collections::HashSet::new();
        let queued = self.queue.iter().map(|q| &q.message);
        let inflight = self.inflight.iter().filter_map(|e| e.message.as_ref());
        let messages = queued
            .chain(inflight)
            .filter(|m| seen.insert(m.id))
            .map(|m| Message::clone(m))
            .collect();
        PersistentSession { record, messages }
    }

    /// The persistent part by reference only; pair it with the messages of
    /// [`SessionRecord::message_ids`], stored wherever the store keeps messages. For a queue
    /// kept in the store ([`keep_queue_in_store`](Self::keep_queue_in_store)) `queue` lists
    /// only the entries held in memory: the rest is the store's.
    pub fn record(&self) -> SessionRecord {
        let mut record = self.record_without_queue();
        record.queue = self
            .queue
            .iter()
            .map(|q| QueuedRef {
                message: q.message.id,
                qos: q.qos,
                shared: q.shared,
            })
            .collect();
        record
    }

    /// [`record`](Self::record) with an empty `queue`: for a store that keeps the queue
    /// itself, entry by entry, and saves the rest whenever it changes (cheap to call often).
    pub fn record_without_queue(&self) -> SessionRecord {
        SessionRecord {
            client_id: self.client_id.clone(),
            subscriptions: self.subscriptions.clone(),
            queue: Vec::new(),
            inflight: self
                .inflight
                .iter()
                .map(|e| InFlightRef {
                    packet_id: e.packet_id,
                    message: e.message_id,
                    qos: e.qos,
                    stage: match e.stage {
                        Stage::Published => InFlightStage::Published,
                        Stage::Released => InFlightStage::Released,
                    },
                    shared: e.shared,
                })
                .collect(),
            awaiting_pubrel: self.inbound.stored_ids().collect(),
            next_packet_id: self.inflight.next_packet_id(),
            protocol: self.protocol(),
            expiry_interval_s: self.expiry_interval_s(),
            offline_since_ms: self.offline_since_ms(),
            configured: self.configured,
        }
    }

    /// The bodies of the outbound messages in flight and not yet released (those a resume
    /// sends again), in the order they were first sent.
    pub fn inflight_messages(&self) -> impl Iterator<Item = &Arc<Message>> + '_ {
        self.inflight.iter().filter_map(|e| e.message.as_ref())
    }

    /// Rebuilds an offline, persistent session from a snapshot. The queue's limits and age
    /// limit apply at `now`; what they remove is reported by `poll_event`.
    ///
    /// # Errors
    /// See [`RestoreError`].
    pub fn restore(
        state: PersistentSession,
        config: SessionConfig,
        now: u64,
    ) -> Result<Session, RestoreError> {
        let table: HashMap<MessageId, Arc<Message>> = state
            .messages
            .into_iter()
            .map(|m| (m.id, Arc::new(m)))
            .collect();
        Session::restore_with(state.record, |id| table.get(&id).cloned(), config, now)
    }

    /// Like [`restore`](Self::restore), with messages looked up by id (a store's shared
    /// message table).
    ///
    /// # Errors
    /// See [`RestoreError`].
    pub fn restore_with(
        record: SessionRecord,
        mut lookup: impl FnMut(MessageId) -> Option<Arc<Message>>,
        config: SessionConfig,
        now: u64,
    ) -> Result<Session, RestoreError> {
        let mut session = Session::new(record.client_id, config);
        session.persistent = true;
        session.subscriptions = record.subscriptions;
        session.set_protocol(record.protocol);
        session.set_expiry_interval_s(record.expiry_interval_s);
        session.set_offline_since_ms(record.offline_since_ms);
        session.configured = record.configured;
        for e in record.inflight {
            let id = e.packet_id.get();
            if session.inflight.contains(e.packet_id) {
                return Err(RestoreError::DuplicatePacketId(id));
            }
            let (stage, message) = match (e.stage, e.qos) {
                (_, QoS::AtMostOnce) | (InFlightStage::Released, QoS::AtLeastOnce) => {
                    return Err(RestoreError::InvalidInFlight(id))
                }
                (InFlightStage::Published, _) => (
                    Stage::Published,
                    Some(lookup(e.message).ok_or(RestoreError::UnknownMessage(e.message))?),
                ),
                (InFlightStage::Released, _) => (Stage::Released, None),
            };
            session.inflight.push(InFlight {
                packet_id: e.packet_id,
                message_id: e.message,
                message,
                qos: e.qos,
                stage,
                shared: e.shared,
            });
        }
        session.inflight.set_next_packet_id(record.next_packet_id);
        session.inbound.restore(record.awaiting_pubrel);
        for q in record.queue {
            let message = lookup(q.message).ok_or(RestoreError::UnknownMessage(q.message))?;
            let entry = QueuedMessage {
                message,
                qos: q.qos,
                shared: q.shared,
            };
            // A refused or dropped entry is reported as a drop: the limits may have shrunk.
            let outcome = session
                .queue
                .push(entry, &session.config, now, &mut session.events);
            if let crate::DeliveryOutcome::Dropped(reason) = outcome {
                session.events.push_back(crate::Event::Dropped {
                    message: q.message,
                    reason,
                });
            } else if outcome == crate::DeliveryOutcome::Refused {
                session.events.push_back(crate::Event::Dropped {
                    message: q.message,
                    reason: crate::DropReason::QueueFull,
                });
            }
        }
        Ok(session)
    }
}
