//! [`Session`]: the state machine, its lifecycle and its drained outputs.

use std::collections::VecDeque;
use std::num::NonZeroU64;

use std::sync::Arc;

use mqgate_codec::{
    ByteStr, ConnAck, Connect, ConnectReturnCode, LastWill, Packet, PacketId, Publish, QoS, SubAck,
    SubscribeReturnCode,
};
use serde::{Deserialize, Serialize};

use crate::inbound::{Inbound, InboundAction};
use crate::outbound::InFlightWindow;
use crate::queue::OfflineQueue;
use crate::thin::{Events, Thin};
use crate::{
    ConnectOutcome, DropReason, Event, InboundToken, Message, Pacing, SessionConfig, SessionError,
};

/// One accepted subscription: a filter, the maximum QoS granted for it and, for an MQTT 5
/// client, its subscription options and identifier.
///
/// The MQTT 5 fields default to what a 3.1.1 subscription means (and are left out of the
/// stored record while they have that value), so a record written before they existed reads
/// back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The topic filter, as the client sent it.
    #[serde(with = "crate::message::serde_byte_str")]
    pub filter: ByteStr,
    /// The maximum QoS granted.
    #[serde(with = "crate::message::serde_qos")]
    pub qos: QoS,
    /// MQTT 5 No Local: the client's own messages are not delivered on this subscription.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_local: bool,
    /// MQTT 5 Retain As Published: forwarded messages keep the RETAIN flag they were
    /// published with.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retain_as_published: bool,
    /// MQTT 5 Retain Handling: 0 send retained messages at subscribe, 1 only for a new
    /// subscription, 2 never.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retain_handling: u8,
    /// MQTT 5 Subscription Identifier, written in every PUBLISH this subscription matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<u32>,
}

impl Subscription {
    /// A subscription with the 3.1.1 meaning: no MQTT 5 options, no identifier.
    pub fn new(filter: ByteStr, qos: QoS) -> Self {
        Subscription {
            filter,
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
            identifier: None,
        }
    }
}

// serde's `skip_serializing_if` takes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// The MQTT protocol level of a 3.1.1 CONNECT: what a session is until told otherwise.
pub const PROTOCOL_V311: u8 = 4;

/// What an MQTT 5 session holds besides the 3.1.1 state.
#[derive(Debug, Default)]
pub(crate) struct V5Part {
    /// Session Expiry Interval (s); `None`: the 3.1.1 rules.
    pub(crate) expiry_interval_s: Option<u32>,
    /// Wall-clock time (ms) the client went offline, for an expiring session.
    pub(crate) offline_since_ms: Option<u64>,
    /// The message of every PUBLISH in `transmits`, in order, so the driver can write its
    /// properties; `None` for one whose MQTT 5 form needs nothing from it (see
    /// [`Session::poll_transmit_with_message`]).
    pub(crate) transmit_messages: VecDeque<Option<OutgoingMessage>>,
}

/// The message an outgoing PUBLISH carries, and which of the session's copies of it the
/// PUBLISH is (see [`Session::poll_transmit_with_message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The message.
    pub message: Arc<Message>,
    /// The copy a shared subscription picked the session for
    /// ([`Session::handle_shared_delivery`]), not one of its plain subscriptions'.
    pub shared: bool,
}

/// The message an MQTT 5 PUBLISH of it needs beside the packet, if any (see
/// [`Session::poll_transmit_with_message`]).
fn outgoing_message(
    subscriptions: &[Subscription],
    message: &Arc<Message>,
    shared: bool,
) -> Option<OutgoingMessage> {
    let own = !message.properties.is_empty() || message.expires_at_ms.is_some() || message.retain;
    (own || subscriptions.iter().any(|s| s.identifier.is_some())).then(|| OutgoingMessage {
        message: message.clone(),
        shared,
    })
}

/// State of the open connection, gone when it ends.
#[derive(Debug)]
pub(crate) struct Link {
    /// 1.5 times the keep-alive, 0 for none (at most 98 302 500 ms: a `u32`, so the
    /// link packs beside `batch_left`).
    keep_alive_ms: u32,
    /// When the client is declared gone unless a packet arrives first.
    /// Never 0 (it is a time plus a keep-alive above 0): `NonZeroU64` keeps it one word.
    pub(crate) deadline: Option<NonZeroU64>,
    /// Boxed: most clients set none, and an idle session should not carry its room.
    will: Option<Box<LastWill>>,
    /// This connection resumed a stored session.
    pub(crate) resumed: bool,
    /// The client sent DISCONNECT; nothing more is accepted or sent.
    pub(crate) disconnected: bool,
    /// Batch pacing: messages the current batch may still release, and when the next starts.
    pub(crate) batch_left: u32,
    pub(crate) next_batch_at: u64,
}

/// Everything the broker knows about one client, between and during its connections.
///
/// See the [crate documentation](crate) for the driving loop; the rules it implements follow.
///
#[doc = include_str!("rules.md")]
#[derive(Debug)]
pub struct Session {
    pub(crate) client_id: ByteStr,
    pub(crate) config: SessionConfig,
    /// cleanSession = 0: state outlives connections.
    pub(crate) persistent: bool,
    /// Declared by the broker's configuration (see [`SessionRecord::configured`](crate::SessionRecord::configured)).
    pub(crate) configured: bool,
    pub(crate) subscriptions: Vec<Subscription>,
    /// What an MQTT 5 session has besides; `None` for 3.1.1 (one word in every session).
    pub(crate) v5: Option<Box<V5Part>>,
    pub(crate) queue: OfflineQueue,
    pub(crate) inflight: InFlightWindow,
    pub(crate) inbound: Inbound,
    pub(crate) link: Option<Link>,
    pub(crate) transmits: Thin<VecDeque<Packet>>,
    pub(crate) events: Events,
}

impl Session {
    /// A new, empty, offline session.
    pub fn new(client_id: ByteStr, config: SessionConfig) -> Self {
        Session {
            client_id,
            config,
            persistent: false,
            configured: false,
            subscriptions: Vec::new(),
            v5: None,
            queue: OfflineQueue::default(),
            inflight: InFlightWindow::default(),
            inbound: Inbound::default(),
            link: None,
            transmits: Thin::default(),
            events: Thin::default(),
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &ByteStr {
        &self.client_id
    }

    /// The limits and policies in force.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Replaces the limits and policies; they apply from the next input on.
    pub fn set_config(&mut self, config: SessionConfig) {
        self.config = config;
    }

    /// Whether a connection is open (and has not sent DISCONNECT).
    pub fn is_online(&self) -> bool {
        self.link.as_ref().is_some_and(|l| !l.disconnected)
    }

    /// Whether the state outlives connections (the last CONNECT had cleanSession = 0).
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Whether the broker's configuration declared the session (see
    /// [`SessionRecord::configured`](crate::SessionRecord::configured)); saved and restored with it.
    pub fn is_configured(&self) -> bool {
        self.configured
    }

    /// Marks the session as declared by the broker's configuration, or not.
    pub fn set_configured(&mut self, configured: bool) {
        self.configured = configured;
    }

    /// The protocol level of the last CONNECT: 4 (MQTT 3.1.1, also for 3.1) or 5 (MQTT 5).
    pub fn protocol(&self) -> u8 {
        if self.v5.is_some() {
            5
        } else {
            PROTOCOL_V311
        }
    }

    /// Sets the protocol level the client connected with (call before
    /// [`connect`](Self::connect)); a level other than 5 means 3.1.1.
    pub fn set_protocol(&mut self, level: u8) {
        match (level == 5, self.v5.is_some()) {
            (true, false) => self.v5 = Some(Box::default()),
            (false, true) => self.v5 = None,
            _ => {}
        }
    }

    /// The MQTT 5 Session Expiry Interval in seconds (`None`: the 3.1.1 rules).
    pub fn expiry_interval_s(&self) -> Option<u32> {
        self.v5.as_ref().and_then(|v5| v5.expiry_interval_s)
    }

    /// Sets the MQTT 5 Session Expiry Interval (from CONNECT or DISCONNECT); ignored by a
    /// 3.1.1 session.
    pub fn set_expiry_interval_s(&mut self, seconds: Option<u32>) {
        if let Some(v5) = &mut self.v5 {
            v5.expiry_interval_s = seconds;
        }
    }

    /// When the client went offline (wall clock, ms), for a session that expires.
    pub fn offline_since_ms(&self) -> Option<u64> {
        self.v5.as_ref().and_then(|v5| v5.offline_since_ms)
    }

    /// Records when the client went offline (wall clock, ms; `None` when it comes back);
    /// ignored by a 3.1.1 session.
    pub fn set_offline_since_ms(&mut self, at: Option<u64>) {
        if let Some(v5) = &mut self.v5 {
            v5.offline_since_ms = at;
        }
    }

    /// Whether an offline session has outlived its Session Expiry Interval at wall-clock
    /// time `wall_now_ms` (never for a session without an interval, or with `u32::MAX`).
    pub fn is_expired_at(&self, wall_now_ms: u64) -> bool {
        match (self.expiry_interval_s(), self.offline_since_ms()) {
            (Some(u32::MAX), _) | (None, _) | (_, None) => false,
            (Some(s), Some(since)) => {
                wall_now_ms.saturating_sub(since) >= u64::from(s).saturating_mul(1000)
            }
        }
    }

    /// Makes the state outlive connections, or not (an MQTT 5 DISCONNECT that sets the
    /// Session Expiry Interval to 0 ends the session with the connection).
    pub fn set_persistent(&mut self, persistent: bool) {
        self.persistent = persistent;
    }

    /// Accepted subscriptions, in the order they were first made.
    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// Messages waiting in the queue (the whole queue, also the part a queue kept in the
    /// store holds only there; see [`queued_in_memory`](Self::queued_in_memory)).
    pub fn queued_len(&self) -> usize {
        self.queue.len()
    }

    /// Bytes (topic + payload) waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes()
    }

    /// Outbound packet ids in use (QoS 1 and 2 not yet fully acknowledged).
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// The message sent under the outbound `packet_id`, while it is in flight and not yet
    /// released: a driver that hands the session's PUBLISHes on by packet id (the broker's
    /// cloud SDK queues) finds the message's id and origin here, which the PUBLISH does not
    /// carry. Searched from the newest entry, the one a driver asks about right after
    /// [`poll_transmit`](Self::poll_transmit) gave its PUBLISH.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use mqgate_codec::{ByteStr, Connect, Packet, QoS};
    /// # use mqgate_session::{Message, MessageId, Session, SessionConfig};
    /// let mut session = Session::new(ByteStr::from_static("q"), SessionConfig::default());
    /// let _ = session.connect(&Connect::default(), 0)?;
    /// let payload = bytes::Bytes::from_static(b"hi");
    /// let topic = ByteStr::from_static("a/b");
    /// let message = Message::new(MessageId(7), topic, payload, QoS::AtLeastOnce, 0)
    ///     .with_origin(ByteStr::from_static("GID_a@@@1"));
    /// let _ = session.handle_delivery(Arc::new(message), QoS::AtLeastOnce, 0);
    /// assert!(matches!(session.poll_transmit(), Some(Packet::ConnAck(_))));
    /// let Some(Packet::Publish(publish)) = session.poll_transmit() else {
    ///     panic!("a PUBLISH");
    /// };
    /// let id = publish.packet_id.expect("QoS 1 has one");
    /// let sent = session.inflight_message(id).expect("in flight");
    /// assert_eq!((sent.id, sent.origin.as_str()), (MessageId(7), "GID_a@@@1"));
    /// session.handle_packet(Packet::PubAck(id), 0)?;
    /// assert!(session.inflight_message(id).is_none());
    /// # Ok::<(), mqgate_session::SessionError>(())
    /// ```
    pub fn inflight_message(&self, packet_id: PacketId) -> Option<&std::sync::Arc<crate::Message>> {
        self.inflight
            .iter()
            .rev()
            .find(|e| e.packet_id == packet_id)
            .and_then(|e| e.message.as_ref())
    }

    /// A connection was accepted (the broker checked authentication first). Queues the
    /// CONNACK (return code 0) as the first packet of `poll_transmit`, then, for a resumed
    /// session, the unacknowledged PUBLISHes (DUP set) and owed PUBRELs in their original
    /// order, then queued messages as the pacing allows.
    ///
    /// cleanSession = 1 discards any stored state first (reported as
    /// [`DropReason::SessionDiscarded`]). A refused connection never reaches the session: the
    /// broker sends that CONNACK itself.
    ///
    /// # Errors
    /// [`SessionError::AlreadyConnected`] if a connection is open: end it with
    /// [`connection_lost`](Self::connection_lost) first.
    pub fn connect(&mut self, connect: &Connect, now: u64) -> Result<ConnectOutcome, SessionError> {
        let clean = connect.clean_session;
        self.connect_with(connect, clean, !clean, now)
    }

    /// [`connect`](Self::connect) with MQTT 5's two decisions apart: `clean_start` discards
    /// a stored session (otherwise it is resumed, and the CONNACK says so), and `persistent`
    /// keeps the state once the connection ends (a Session Expiry Interval above 0). For
    /// 3.1.1 both come from cleanSession.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_with(
        &mut self,
        connect: &Connect,
        clean_start: bool,
        persistent: bool,
        now: u64,
    ) -> Result<ConnectOutcome, SessionError> {
        if self.link.is_some() {
            return Err(SessionError::AlreadyConnected);
        }
        let session_present = !clean_start && self.persistent;
        if !session_present {
            self.discard_state();
        }
        self.persistent = persistent;
        self.set_offline_since_ms(None);
        if !self.persistent {
            // A clean session's queue lives and dies with its connection: in memory.
            self.queue.keep_in_memory();
        }
        self.queue.unpark();
        let keep_alive_ms = u32::from(connect.keep_alive).saturating_mul(1500);
        let (batch_left, next_batch_at) = self.fresh_batch(now);
        self.link = Some(Link {
            keep_alive_ms,
            deadline: NonZeroU64::new(now.saturating_add(keep_alive_ms.into()))
                .filter(|_| keep_alive_ms > 0),
            will: connect.will.clone().map(Box::new),
            resumed: session_present,
            disconnected: false,
            batch_left,
            next_batch_at,
        });
        self.clear_transmits();
        self.transmits.push_back(Packet::ConnAck(ConnAck {
            session_present,
            code: ConnectReturnCode::Accepted,
        }));
        for entry in self.inflight.iter() {
            self.transmits.push_back(match entry.publish(true) {
                Some(publish) => {
                    if let Some(v5) = &mut self.v5 {
                        let outgoing = entry.message.as_ref().and_then(|message| {
                            outgoing_message(&self.subscriptions, message, entry.shared)
                        });
                        v5.transmit_messages.push_back(outgoing);
                    }
                    Packet::Publish(publish)
                }
                None => Packet::PubRel(entry.packet_id),
            });
        }
        self.queue
            .drop_expired(self.config.message_ttl_ms, now, &mut self.events);
        self.release_queued(now);
        Ok(ConnectOutcome { session_present })
    }

    /// The connection ended, for any reason. Returns the will to publish when the end was
    /// abnormal (no DISCONNECT came first, MQTT-3.1.2-8), `None` otherwise or when there was
    /// no connection.
    ///
    /// Afterwards the session is offline: a persistent session keeps its state and queues
    /// QoS 1 and 2 deliveries; a clean session discards everything (each message reported
    /// as [`Event::Dropped`]) and refuses deliveries.
    #[must_use = "a returned will must be published"]
    pub fn connection_lost(&mut self, _now: u64) -> Option<LastWill> {
        let link = self.link.take()?;
        // The driver drops a page read with the connection; the next one asks again. A
        // queue kept in the store holds nothing in memory while the client is away.
        self.queue.park();
        self.inbound.connection_ended();
        self.clear_transmits();
        if !self.persistent {
            self.discard_state();
        }
        if link.disconnected {
            None
        } else {
            link.will.map(|will| *will)
        }
    }

    /// Handles one packet the client sent after CONNECT.
    ///
    /// # Errors
    /// A protocol violation (see [`SessionError`]): close the connection and call
    /// [`connection_lost`](Self::connection_lost). The session stays consistent.
    pub fn handle_packet(&mut self, packet: Packet, now: u64) -> Result<(), SessionError> {
        let link = self.link.as_mut().ok_or(SessionError::NotConnected)?;
        if link.disconnected {
            return Err(SessionError::AfterDisconnect(packet.name()));
        }
        if link.keep_alive_ms > 0 {
            link.deadline = NonZeroU64::new(now.saturating_add(link.keep_alive_ms.into()));
        }
        let resumed = link.resumed;
        match packet {
            Packet::Publish(publish) => self.on_publish(publish, None)?,
            Packet::PubAck(id) => self.on_puback(id, now)?,
            Packet::PubRec(id) => self.on_pubrec(id)?,
            Packet::PubComp(id) => self.on_pubcomp(id, now)?,
            Packet::PubRel(id) => {
                self.inbound
                    .on_pubrel(id, resumed)
                    .map_err(|_| unknown_id("PUBREL", id))?;
                self.transmits.push_back(Packet::PubComp(id));
            }
            Packet::Subscribe(s) => self.events.push_back(Event::Subscribe {
                packet_id: s.packet_id,
                filters: s.filters,
            }),
            Packet::Unsubscribe(u) => self.events.push_back(Event::Unsubscribe {
                packet_id: u.packet_id,
                filters: u.filters,
            }),
            Packet::PingReq => self.transmits.push_back(Packet::PingResp),
            Packet::Disconnect => {
                link.disconnected = true;
                link.will = None;
                link.deadline = None;
                self.events.push_back(Event::Disconnect);
            }
            Packet::Connect(_) => return Err(SessionError::SecondConnect),
            other @ (Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp) => return Err(SessionError::UnexpectedPacket(other.name())),
        }
        Ok(())
    }

    /// Handles a PUBLISH from a client connected with MQTT 5: as
    /// [`handle_packet`](Self::handle_packet) does a 3.1.1 one (the driver converted the
    /// packet's fields), with its properties passed on in [`Event::Publish`].
    ///
    /// # Errors
    /// As [`handle_packet`](Self::handle_packet).
    pub fn handle_publish_v5(
        &mut self,
        publish: Publish,
        properties: mqgate_codec::v5::PublishProperties,
        now: u64,
    ) -> Result<(), SessionError> {
        let link = self.link.as_mut().ok_or(SessionError::NotConnected)?;
        if link.disconnected {
            return Err(SessionError::AfterDisconnect("PUBLISH"));
        }
        if link.keep_alive_ms > 0 {
            link.deadline = NonZeroU64::new(now.saturating_add(link.keep_alive_ms.into()));
        }
        let none = properties.is_empty();
        self.on_publish(publish, (!none).then(|| Box::new(properties)))
    }

    fn on_publish(
        &mut self,
        publish: Publish,
        v5: Option<Box<mqgate_codec::v5::PublishProperties>>,
    ) -> Result<(), SessionError> {
        let action = match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => InboundAction::Route(None),
            (qos, Some(id)) => self.inbound.on_publish(qos, id),
            (_, None) => return Err(SessionError::MissingPacketId),
        };
        if let InboundAction::Route(token) = action {
            self.events.push_back(Event::Publish { publish, token, v5 });
        }
        self.send_owed_acks();
        Ok(())
    }

    /// The broker made the inbound message of `token` safe (routed, and stored for durable
    /// receivers): its PUBACK or PUBREC may now go out, in the order the PUBLISHes came.
    /// A token from an earlier connection is ignored for QoS 1 (the client resends the
    /// PUBLISH) and for QoS 2 marks the message safe, so the client's repeat is answered.
    ///
    /// Hand back every token, also for a message the broker decides not to forward (MQTT
    /// 3.1.1 lets a server acknowledge a PUBLISH it discards, for example an unauthorised
    /// one): until then a QoS 2 packet id stays taken and its PUBREC unsent.
    pub fn inbound_done(&mut self, token: InboundToken) {
        self.inbound.done(token);
        if self.link.is_some() {
            self.send_owed_acks();
        }
    }

    /// The message of `token` could not be made safe (the store refused it): no
    /// acknowledgement is sent for it, and a QoS 2 packet id is released, so the client's
    /// resent PUBLISH is routed again rather than acknowledged for a message that was not
    /// kept. Acknowledgements owed behind it are no longer held up.
    pub fn inbound_failed(&mut self, token: InboundToken) {
        self.inbound.failed(token);
        if self.link.is_some() {
            self.send_owed_acks();
        }
    }

    /// Answers an [`Event::Subscribe`]: records each granted filter (replacing an existing
    /// subscription to the same filter, MQTT-3.8.4-3) and queues the SUBACK, one return code
    /// per entry, in order. `None` means refused (0x80).
    pub fn subscribed(
        &mut self,
        packet_id: PacketId,
        results: impl IntoIterator<Item = (ByteStr, Option<QoS>)>,
    ) {
        let mut return_codes = Vec::new();
        for (filter, granted) in results {
            return_codes.push(match granted {
                Some(qos) => {
                    match self.subscriptions.iter_mut().find(|s| s.filter == filter) {
                        Some(existing) => existing.qos = qos,
                        None => self.subscriptions.push(Subscription::new(filter, qos)),
                    }
                    SubscribeReturnCode::Success(qos)
                }
                None => SubscribeReturnCode::Failure,
            });
        }
        if self.is_online() {
            self.transmits.push_back(Packet::SubAck(SubAck {
                packet_id,
                return_codes,
            }));
        }
    }

    /// Answers an [`Event::Unsubscribe`]: forgets the filters and queues the UNSUBACK.
    pub fn unsubscribed<S: AsRef<str>>(
        &mut self,
        packet_id: PacketId,
        filters: impl IntoIterator<Item = S>,
    ) {
        for filter in filters {
            self.subscriptions.retain(|s| &*s.filter != filter.as_ref());
        }
        if self.is_online() {
            self.transmits.push_back(Packet::UnsubAck(packet_id));
        }
    }

    /// The client sent a packet its driver handles without the session (an MQTT 5 AUTH): the
    /// keep-alive deadline moves as for any packet the session handles, since any control
    /// packet counts as the client's sign of life.
    pub fn client_activity(&mut self, now: u64) {
        if let Some(link) = self.link.as_mut() {
            if link.keep_alive_ms > 0 && !link.disconnected {
                link.deadline = NonZeroU64::new(now.saturating_add(link.keep_alive_ms.into()));
            }
        }
    }

    /// Time passed: checks the keep-alive and releases the next batch when one is due. Call
    /// it when the instant of [`poll_timeout`](Self::poll_timeout) is reached (earlier is
    /// harmless).
    pub fn handle_timeout(&mut self, now: u64) {
        if let Some(link) = self.link.as_mut() {
            if link.deadline.is_some_and(|d| now >= d.get()) {
                link.deadline = None;
                self.events.push_back(Event::KeepAliveExpired);
            }
        }
        self.release_queued(now);
    }

    /// The next instant (ms) at which [`handle_timeout`](Self::handle_timeout) has work:
    /// the keep-alive deadline, or the start of the next batch while queued messages wait for
    /// it. `None`: nothing is timed.
    pub fn poll_timeout(&self) -> Option<u64> {
        let link = self.link.as_ref()?;
        let batch = match self.config.pacing {
            Pacing::Batches { .. }
                if !link.disconnected
                    && link.batch_left == 0
                    && !self.queue.is_empty()
                    && self.inflight.len() < self.config.window() =>
            {
                Some(link.next_batch_at)
            }
            _ => None,
        };
        match (link.deadline.map(NonZeroU64::get), batch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next packet to send to the client. Call in a loop after every batch of inputs and
    /// write everything it yields in one go.
    pub fn poll_transmit(&mut self) -> Option<Packet> {
        self.transmits.pop_front()
    }

    /// Whether a packet waits for [`poll_transmit`](Self::poll_transmit).
    pub fn has_transmit(&self) -> bool {
        !self.transmits.is_empty()
    }

    /// [`poll_transmit`](Self::poll_transmit) for a client connected with MQTT 5: a
    /// PUBLISH comes with the message it carries and which copy of it that is, so the driver
    /// can write the message's MQTT 5 properties, remaining expiry and subscription
    /// identifiers.
    ///
    /// `None` for every other packet, for every packet of a 3.1.1 session, and for a PUBLISH
    /// whose MQTT 5 form needs nothing from its message: one without properties, expiry or
    /// RETAIN, to a session none of whose subscriptions (when the PUBLISH was queued) has an
    /// identifier. That PUBLISH goes out as it is, and the message's shared reference count
    /// is not touched once more per delivery.
    pub fn poll_transmit_with_message(&mut self) -> Option<(Packet, Option<OutgoingMessage>)> {
        let packet = self.transmits.pop_front()?;
        let message = match packet {
            Packet::Publish(_) => self
                .v5
                .as_mut()
                .and_then(|v5| v5.transmit_messages.pop_front())
                .flatten(),
            _ => None,
        };
        Some((packet, message))
    }

    /// Queues a PUBLISH of `message` for the client; `shared`: a shared subscription's copy.
    pub(crate) fn transmit_publish(
        &mut self,
        publish: Publish,
        message: &Arc<Message>,
        shared: bool,
    ) {
        if let Some(v5) = &mut self.v5 {
            let outgoing = outgoing_message(&self.subscriptions, message, shared);
            v5.transmit_messages.push_back(outgoing);
        }
        self.transmits.push_back(Packet::Publish(publish));
    }

    fn clear_transmits(&mut self) {
        self.transmits.clear();
        if let Some(v5) = &mut self.v5 {
            v5.transmit_messages.clear();
        }
    }

    /// The subscription to `filter`, to set its MQTT 5 options once it was granted.
    pub fn subscription_mut(&mut self, filter: &str) -> Option<&mut Subscription> {
        self.subscriptions.iter_mut().find(|s| &*s.filter == filter)
    }

    /// Gives back the memory of internal queues that are empty (packets to transmit, events,
    /// acknowledgements owed, in-flight and queued messages), so an idle session holds only
    /// its state. Call when the connection is about to wait; the next packet allocates again.
    ///
    /// ```
    /// use mqgate_codec::ByteStr;
    /// use mqgate_session::{Session, SessionConfig};
    /// let mut session = Session::new(ByteStr::from_static("device-1"), SessionConfig::default());
    /// session.release_idle_memory();
    /// assert_eq!(session.queued_len(), 0);
    /// ```
    pub fn release_idle_memory(&mut self) {
        self.transmits.release_if_empty();
        if let Some(v5) = self
            .v5
            .as_mut()
            .filter(|v5| v5.transmit_messages.is_empty())
        {
            v5.transmit_messages = VecDeque::new();
        }
        self.events.release_if_empty();
        self.inbound.release_idle_memory();
        self.inflight.release_idle_memory();
        self.queue.release_idle_memory();
    }

    /// The next event for the driver. Drain after every input.
    ///
    /// Polling a QoS 2 [`Event::Publish`] tells the session the driver took the message:
    /// from then on its packet id is part of [`record`](Self::record)'s `awaiting_pubrel`,
    /// so the driver must make the message's store writes (if any) no later than the next
    /// save of the record, as the broker does by submitting them together.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Event::Publish {
            token: Some(token), ..
        } = &event
        {
            self.inbound.handed(*token);
        }
        Some(event)
    }

    fn send_owed_acks(&mut self) {
        while let Some(ack) = self.inbound.next_ack() {
            self.transmits.push_back(ack);
        }
    }

    /// A batch that starts now.
    pub(crate) fn fresh_batch(&self, now: u64) -> (u32, u64) {
        match self.config.pacing {
            Pacing::Window => (u32::MAX, now),
            Pacing::Batches { size, interval_ms } => (size.max(1), now.saturating_add(interval_ms)),
        }
    }

    /// Forgets everything but the client id, reporting each undelivered message.
    pub(crate) fn discard_state(&mut self) {
        for entry in self.inflight.drain() {
            if entry.message.is_some() {
                self.events.push_back(Event::Dropped {
                    message: entry.message_id,
                    reason: DropReason::SessionDiscarded,
                });
            }
        }
        self.inflight.set_next_packet_id(1);
        self.queue
            .clear(DropReason::SessionDiscarded, &mut self.events);
        self.subscriptions.clear();
        self.inbound.clear();
    }
}

pub(crate) fn unknown_id(packet: &'static str, id: PacketId) -> SessionError {
    SessionError::UnknownPacketId {
        packet,
        packet_id: id.get(),
    }
}
