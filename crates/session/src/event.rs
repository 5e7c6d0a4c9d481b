//! What a session tells its driver: [`Event`]s, [`DeliveryOutcome`]s and their reasons.

use mqgate_codec::{ByteStr, PacketId, Publish, QoS, SubscribeFilter};

use crate::MessageId;

/// Why a message will not reach this session's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// QoS 0 to a client that is not connected: QoS 0 is never queued offline.
    Offline,
    /// QoS 1 or 2 to an offline client with a clean session: nothing is kept for it.
    CleanSession,
    /// The queue was full and [`FullPolicy::DropOldest`](crate::FullPolicy::DropOldest)
    /// evicted this message for a newer one.
    QueueFull,
    /// The message alone is larger than the queue's byte limit.
    TooLarge,
    /// The message waited longer than the age limit.
    Expired,
    /// The session state was discarded: a clean session's connection ended, or a client
    /// connected with cleanSession = 1 over a stored session.
    SessionDiscarded,
}

/// What [`Session::handle_delivery`](crate::Session::handle_delivery) did with a message.
#[must_use = "a refused message must push back on its publisher; a dropped one should be counted"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A PUBLISH is ready in `poll_transmit`.
    Sent,
    /// Kept in the queue, to be sent when the window, the pacing or a reconnect allows.
    Queued,
    /// Not kept, by rule (see the reason); nothing more will happen to it here.
    Dropped(DropReason),
    /// The queue is full and the policy is [`FullPolicy::RefuseNew`](crate::FullPolicy::RefuseNew):
    /// the broker should not acknowledge the message to its publisher on this session's account.
    Refused,
}

/// Names an inbound QoS 1 or 2 PUBLISH until the broker has made it safe; hand it back to
/// [`Session::inbound_done`](crate::Session::inbound_done).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InboundToken {
    pub(crate) seq: u64,
    pub(crate) packet_id: PacketId,
    pub(crate) qos: QoS,
}

impl InboundToken {
    /// The client's packet id of the PUBLISH.
    pub fn packet_id(&self) -> PacketId {
        self.packet_id
    }
}

/// What [`Session::connect`](crate::Session::connect) found.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOutcome {
    /// A stored session was resumed (the CONNACK's session-present flag, MQTT-3.2.2-2).
    pub session_present: bool,
}

/// Something the driver must act on; drain them with
/// [`Session::poll_event`](crate::Session::poll_event) after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The client published a message: route it. For QoS 1 and 2, call
    /// [`Session::inbound_done`](crate::Session::inbound_done) with `token` once the message is
    /// safe (routed, and stored for durable receivers); only then is it acknowledged.
    Publish {
        /// The PUBLISH as received (topic and payload share the receive buffer).
        publish: Publish,
        /// `Some` for QoS 1 and 2.
        token: Option<InboundToken>,
        /// The PUBLISH's MQTT 5 properties, for a client connected with MQTT 5 (see
        /// [`Session::handle_publish_v5`](crate::Session::handle_publish_v5)); `None` for
        /// 3.1.1, and for an MQTT 5 PUBLISH without any (the common case: nothing is
        /// allocated for it). Boxed: an event without them carries one word for them.
        v5: Option<Box<mqgate_codec::v5::PublishProperties>>,
    },
    /// The client asks to subscribe: validate and authorise each filter, then call
    /// [`Session::subscribed`](crate::Session::subscribed).
    Subscribe {
        /// The SUBSCRIBE's packet id.
        packet_id: PacketId,
        /// The filters and requested QoS, in order.
        filters: Vec<SubscribeFilter>,
    },
    /// The client asks to unsubscribe: remove it from the index, then call
    /// [`Session::unsubscribed`](crate::Session::unsubscribed).
    Unsubscribe {
        /// The UNSUBSCRIBE's packet id.
        packet_id: PacketId,
        /// The filters.
        filters: Vec<ByteStr>,
    },
    /// The client sent DISCONNECT: its will is discarded. Close the connection, then call
    /// `connection_lost`.
    Disconnect,
    /// Nothing came from the client for 1.5 times its keep-alive: close the connection, then
    /// call `connection_lost` (an abnormal end, so the will is published).
    KeepAliveExpired,
    /// The client took responsibility for an outbound message (PUBACK for QoS 1, PUBREC for
    /// QoS 2): a trace point.
    Acknowledged {
        /// The message.
        message: MessageId,
        /// The QoS it was delivered with.
        qos: QoS,
    },
    /// A message accepted earlier will not be delivered (a limit, its age, or a discarded session).
    Dropped {
        /// The message.
        message: MessageId,
        /// Why.
        reason: DropReason,
    },
    /// A message of a queue kept in the store was dropped before it was read back into
    /// memory (the full policy evicted the oldest entry while none was held): the session
    /// does not know its id; the store drops the same entry by the same rule.
    DroppedUnread {
        /// Why.
        reason: DropReason,
    },
}
