//! MQTT 5 on a connection: the CONNECT read as the session's terms, every inbound packet
//! handed to the session (which keeps the 3.1.1 state machine: packet ids, QoS flows,
//! queue), and every packet the session sends written as MQTT 5, with reason codes, the
//! message's forwarded properties, its remaining expiry and the subscription identifiers
//! that match.
//!
//! A 3.1.1 connection never reaches this module: its packets go to the session and back to
//! the wire as they are.

use std::collections::{HashMap, VecDeque};
use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use mqgate_codec::v5::{self, RetainHandling, SubscriptionOptions};
use mqgate_codec::{
    ByteStr, Connect, EncodeError, LastWill, Packet, PacketId, Properties, Property, PropertyId,
    Protocol, Publish, QoS, ReasonCode, Subscribe, SubscribeFilter, SubscribeReturnCode,
    Unsubscribe,
};
use mqgate_session::{Message, MessageId, OutgoingMessage, Session, Subscription};
use tokio::io::{AsyncRead, AsyncWrite};

use super::close::CloseReason;
use super::enhanced::{self, Enhanced};
use crate::config::{Mqtt5Settings, Redirect};
use crate::transport::io::{Io, Outbound};

/// What an MQTT 5 connection keeps beside its session. Boxed in the connection: a 3.1.1
/// connection carries one word for it.
#[derive(Debug, Default)]
pub(crate) struct V5State {
    /// The CONNACK to write in place of the session's 3.1.1 one.
    pub(crate) connack: Option<v5::ConnAck>,
    /// The Session Expiry Interval the CONNECT gave (0 when absent): a DISCONNECT may
    /// change it only when it was not 0 (MQTT-3.14.2-2).
    pub(crate) connect_expiry_s: u32,
    /// The options of each SUBSCRIBE not yet answered, by packet id, in order.
    pub(crate) subscribes: VecDeque<PendingSubscribe>,
    /// The reason codes of each UNSUBSCRIBE answered by the session, by packet id.
    pub(crate) unsubscribes: VecDeque<(PacketId, Vec<ReasonCode>)>,
    /// Refusal reasons of the SUBACK the session is about to send, by packet id.
    pub(crate) suback_refusals: VecDeque<(PacketId, Vec<ReasonCode>)>,
    /// Largest packet the client accepts (CONNECT's Maximum Packet Size).
    pub(crate) client_max_packet: Option<u32>,
    /// The topics of the aliases the client set, alias 1 first (at most
    /// [`TOPIC_ALIAS_MAXIMUM`]).
    pub(crate) inbound_aliases: Vec<Option<ByteStr>>,
    /// How many aliases the client takes (its Topic Alias Maximum; 0: none).
    pub(crate) outbound_alias_max: u16,
    /// The aliases the broker set for topics it sent, first come first served.
    pub(crate) outbound_aliases: HashMap<ByteStr, NonZeroU16>,
    /// Packet ids whose PUBREL the session queued after a PUBREC with an error reason: not
    /// written (the client ended the flow).
    pub(crate) unsent_pubrels: Vec<PacketId>,
    /// QoS 1 and 2 PUBLISHes not written because they are larger than the client accepts:
    /// the session completes them as if acknowledged.
    pub(crate) unsent_publishes: Vec<(PacketId, QoS)>,
    /// What the will carries beyond its 3.1.1 fields.
    pub(crate) will: WillTerms,
    /// The reason codes of PUBACKs and PUBRECs that are not 0x00 (not authorized, no
    /// matching subscribers), by packet id, until they are written.
    pub(crate) ack_reasons: Vec<(PacketId, ReasonCode)>,
    /// QoS 2 PUBLISHes refused with their PUBREC (a reason of 0x80 or above): the flow ends
    /// there (4.3.3), so the session completes them as if the client had sent PUBREL.
    pub(crate) refused_pubrecs: Vec<PacketId>,
    /// Packet ids whose PUBCOMP the session queued for such a completion: not written.
    pub(crate) unsent_pubcomps: Vec<PacketId>,
    /// Whether Reason Strings may go on packets other than PUBLISH, CONNACK and DISCONNECT
    /// (the client's Request Problem Information, MQTT-3.1.2-29).
    pub(crate) problem_information: bool,
    /// The enhanced authentication method the client connected with, if any.
    pub(crate) enhanced: Option<Enhanced>,
    /// AUTH packets to send (the steps of a re-authentication), before anything else.
    pub(crate) auth_replies: Vec<v5::Packet>,
    /// The retained messages sent because of a SUBSCRIBE, with that SUBSCRIBE's Subscription
    /// Identifier, in the order they were queued, until they are written: such a PUBLISH
    /// carries that identifier only, not those of the client's other matching subscriptions
    /// (it is published as the result of that subscription alone, MQTT-3.3.4-3).
    pub(crate) retained_replays: VecDeque<(MessageId, Option<NonZeroU32>)>,
    /// The Receive Maximum the CONNACK announced: most QoS 1 and 2 PUBLISHes the client may
    /// have unacknowledged at once.
    pub(crate) receive_maximum: u16,
    /// The client's QoS 1 and 2 PUBLISHes of this connection not yet completed: from the
    /// PUBLISH until the broker writes its PUBACK, its PUBCOMP, or a PUBREC with an error
    /// reason (the client's send quota, MQTT 5.0 4.9, as the broker sees it).
    pub(crate) receiving: u16,
}

/// The Topic Alias Maximum the broker announces: how many aliases a client may set.
pub(crate) const TOPIC_ALIAS_MAXIMUM: u16 = 64;

/// The MQTT 5 part of a SUBSCRIBE: each filter's options and the identifier.
#[derive(Debug)]
pub(crate) struct PendingSubscribe {
    pub(crate) packet_id: PacketId,
    pub(crate) options: Vec<SubscriptionOptions>,
    pub(crate) identifier: Option<NonZeroU32>,
}

/// What the broker announces in an MQTT 5 CONNACK.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Announce<'a> {
    /// Receive Maximum: the in-flight window of a session.
    pub(crate) receive_maximum: u16,
    /// Maximum Packet Size the broker accepts.
    pub(crate) max_packet_size: u32,
    /// The client id the broker assigned, when the client sent none.
    pub(crate) assigned: Option<&'a str>,
    /// Server Keep Alive, when the broker overrides the client's.
    pub(crate) server_keep_alive: Option<u16>,
    /// Response Information, when the client asked and the broker gives some.
    pub(crate) response_information: Option<&'a str>,
    /// The Authentication Method the client was authenticated with, and the Authentication
    /// Data the method's success gave.
    pub(crate) authentication: Option<(&'a str, Option<&'a [u8]>)>,
}

/// What an MQTT 5 CONNECT asks for beyond its 3.1.1 fields.
#[derive(Debug, Clone)]
pub(crate) struct ClientTerms {
    /// Session Expiry Interval (0 when absent).
    pub(crate) expiry_s: u32,
    /// Largest packet the client accepts.
    pub(crate) client_max_packet: Option<u32>,
    /// Most QoS 1 and 2 PUBLISHes the client takes unacknowledged (its Receive Maximum).
    pub(crate) receive_maximum: Option<u16>,
    /// How many topic aliases the client takes (its Topic Alias Maximum; 0 when absent).
    pub(crate) topic_alias_max: u16,
    /// What the will carries beyond its 3.1.1 fields (all empty without a will).
    pub(crate) will: WillTerms,
    /// The keep-alive the broker imposes (Server Keep Alive), when it is not the client's.
    pub(crate) server_keep_alive: Option<u16>,
    /// Whether the client asked for Response Information.
    pub(crate) wants_response_information: bool,
    /// Whether the client takes Reason Strings and User Properties on packets other than
    /// PUBLISH, CONNACK and DISCONNECT (its Request Problem Information, 1 when absent).
    pub(crate) problem_information: bool,
    /// The Authentication Method and Data of an enhanced authentication.
    pub(crate) authentication: Option<(String, Option<Bytes>)>,
}

/// What an MQTT 5 will carries beyond its 3.1.1 fields (3.1.3.2).
#[derive(Debug, Clone, Default)]
pub(crate) struct WillTerms {
    /// Payload Format Indicator, Content Type, Response Topic, Correlation Data and User
    /// Properties, in their wire encoding: forwarded with the will message as a PUBLISH's.
    pub(crate) forward: Bytes,
    /// The will message's Message Expiry Interval.
    pub(crate) expiry_s: Option<u32>,
    /// Will Delay Interval: how long after the connection ends the will waits (0: none).
    pub(crate) delay_s: u32,
}

/// Reads an MQTT 5 CONNECT as a 3.1.1 CONNECT (its fields as the authenticator and the
/// registry read them; `clean_session` is Clean Start; the keep-alive as `settings` bound
/// it) and what MQTT 5 adds.
pub(crate) fn terms(connect: &v5::Connect, settings: &Mqtt5Settings) -> (Connect, ClientTerms) {
    let int = |id| connect.properties.get(id).and_then(|p| p.as_u32());
    let will = connect.will.as_ref().map(|w| LastWill {
        topic: w.topic.clone(),
        payload: w.payload.clone(),
        qos: w.qos,
        retain: w.retain,
    });
    let will_terms = connect
        .will
        .as_ref()
        .map(|w| {
            let int = |id| w.properties.get(id).and_then(|p| p.as_u32());
            WillTerms {
                forward: w.properties.forwardable(),
                expiry_s: int(PropertyId::MessageExpiryInterval),
                delay_s: int(PropertyId::WillDelayInterval).unwrap_or(0),
            }
        })
        .unwrap_or_default();
    // Server Keep Alive (3.2.2.3.14): a client asking for longer than the maximum, or for
    // none, is given the maximum.
    let max = settings.max_keep_alive;
    let server_keep_alive =
        (max > 0 && (connect.keep_alive == 0 || connect.keep_alive > max)).then_some(max);
    let as_v3 = Connect {
        protocol: Protocol::V311,
        clean_session: connect.clean_start,
        keep_alive: server_keep_alive.unwrap_or(connect.keep_alive),
        client_id: connect.client_id.clone(),
        will,
        username: connect.username.clone(),
        password: connect.password.clone(),
    };
    let authentication = enhanced::method_of(&connect.properties)
        .map(|method| (method.to_owned(), enhanced::data_of(&connect.properties)));
    (
        as_v3,
        ClientTerms {
            expiry_s: int(PropertyId::SessionExpiryInterval).unwrap_or(0),
            client_max_packet: int(PropertyId::MaximumPacketSize),
            receive_maximum: int(PropertyId::ReceiveMaximum).and_then(|n| u16::try_from(n).ok()),
            topic_alias_max: int(PropertyId::TopicAliasMaximum)
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(0),
            will: will_terms,
            server_keep_alive,
            wants_response_information: int(PropertyId::RequestResponseInformation) == Some(1),
            problem_information: int(PropertyId::RequestProblemInformation) != Some(0),
            authentication,
        },
    )
}

/// The MQTT 5 reason code of a refused CONNECT, from the 3.1.1 return code the
/// authenticator and the client id rules give.
pub(crate) fn refusal(code: mqgate_codec::ConnectReturnCode) -> ReasonCode {
    use mqgate_codec::ConnectReturnCode as C;
    match code {
        C::Accepted => ReasonCode::Success,
        C::UnacceptableProtocolVersion => ReasonCode::UnsupportedProtocolVersion,
        C::IdentifierRejected => ReasonCode::ClientIdentifierNotValid,
        C::ServerUnavailable => ReasonCode::ServerUnavailable,
        C::BadUsernameOrPassword => ReasonCode::BadUserNameOrPassword,
        C::NotAuthorized => ReasonCode::NotAuthorized,
    }
}

/// The properties of an accepting CONNACK: what the broker supports, the client id it
/// assigned when the client sent none, the keep-alive it imposes and the Response
/// Information asked for.
pub(crate) fn connack_properties(
    announce: Announce<'_>,
) -> Result<Properties, mqgate_codec::EncodeError> {
    let mut props = vec![
        Property::TwoByteInt(PropertyId::ReceiveMaximum, announce.receive_maximum.max(1)),
        Property::Byte(PropertyId::RetainAvailable, 1),
        Property::FourByteInt(PropertyId::MaximumPacketSize, announce.max_packet_size),
        Property::Byte(PropertyId::WildcardSubscriptionAvailable, 1),
        Property::Byte(PropertyId::SubscriptionIdentifierAvailable, 1),
        Property::Byte(PropertyId::SharedSubscriptionAvailable, 1),
        Property::TwoByteInt(PropertyId::TopicAliasMaximum, TOPIC_ALIAS_MAXIMUM),
    ];
    if let Some(id) = announce.assigned {
        props.push(Property::Utf8(PropertyId::AssignedClientIdentifier, id));
    }
    if let Some(keep_alive) = announce.server_keep_alive {
        props.push(Property::TwoByteInt(
            PropertyId::ServerKeepAlive,
            keep_alive,
        ));
    }
    if let Some(info) = announce.response_information {
        props.push(Property::Utf8(PropertyId::ResponseInformation, info));
    }
    if let Some((method, data)) = announce.authentication {
        props.push(Property::Utf8(PropertyId::AuthenticationMethod, method));
        if let Some(data) = data {
            props.push(Property::Binary(PropertyId::AuthenticationData, data));
        }
    }
    Properties::build(props)
}

/// Hands one MQTT 5 packet from the client to the session.
///
/// # Errors
/// Why the connection must close: a protocol violation, or the client's DISCONNECT.
#[inline]
pub(crate) fn inbound(
    state: &mut V5State,
    session: &mut Session,
    packet: v5::Packet,
    now: u64,
) -> Result<(), CloseReason> {
    // The bulk of the traffic, PUBLISH and PUBACK, is handled where the packet was decoded
    // (this is inlined there), without moving the packet value into another frame first.
    match packet {
        v5::Packet::Publish(p) => inbound_publish(state, session, p, now),
        v5::Packet::PubAck(a) => session
            .handle_packet(Packet::PubAck(a.packet_id), now)
            .map_err(CloseReason::Protocol),
        other => inbound_other(state, session, other, now),
    }
}

#[inline]
fn inbound_publish(
    state: &mut V5State,
    session: &mut Session,
    p: v5::Publish,
    now: u64,
) -> Result<(), CloseReason> {
    // A QoS 2 PUBLISH marked DUP may repeat one already counted (its PUBCOMP answers both):
    // only a first send counts, so a repeat never leaves the count too high.
    let counted = p.qos == QoS::AtLeastOnce || (p.qos == QoS::ExactlyOnce && !p.dup);
    if counted {
        state.receiving = state.receiving.saturating_add(1);
        if state.receiving > state.receive_maximum {
            // MQTT-3.3.4-7 and 3.3.4: the client sent more unacknowledged QoS 1 and 2
            // PUBLISHes than the Receive Maximum the broker announced.
            return Err(CloseReason::ProtocolV5(
                ReasonCode::ReceiveMaximumExceeded,
                "more unacknowledged QoS 1 and 2 PUBLISHes than the Receive Maximum",
            ));
        }
    }
    let topic = match p.properties.topic_alias {
        None => p.topic,
        Some(alias) => aliased_topic(state, alias, p.topic)?,
    };
    let mut publish = Publish::new(p.qos, p.packet_id, topic, p.payload);
    publish.dup = p.dup;
    publish.retain = p.retain;
    session
        .handle_publish_v5(publish, p.properties, now)
        .map_err(CloseReason::Protocol)
}

/// [`inbound`] for every packet but PUBLISH and PUBACK.
#[inline(never)]
fn inbound_other(
    state: &mut V5State,
    session: &mut Session,
    packet: v5::Packet,
    now: u64,
) -> Result<(), CloseReason> {
    let as_v3 = match packet {
        v5::Packet::Publish(p) => return inbound_publish(state, session, p, now),
        v5::Packet::PubAck(a) => Packet::PubAck(a.packet_id),
        v5::Packet::PubRec(a) if a.reason.is_error() => {
            // The client refused the message: the flow ends here, without PUBREL (MQTT 5.0
            // 4.3.3). The session completes it as if PUBREL and PUBCOMP had passed, and the
            // PUBREL it queues is not written.
            session
                .handle_packet(Packet::PubRec(a.packet_id), now)
                .map_err(CloseReason::Protocol)?;
            state.unsent_pubrels.push(a.packet_id);
            Packet::PubComp(a.packet_id)
        }
        v5::Packet::PubRec(a) => Packet::PubRec(a.packet_id),
        v5::Packet::PubRel(a) => Packet::PubRel(a.packet_id),
        v5::Packet::PubComp(a) => Packet::PubComp(a.packet_id),
        v5::Packet::Subscribe(s) => {
            if s.filters
                .iter()
                .any(|f| f.options.no_local && is_shared(&f.filter))
            {
                // MQTT-3.8.3-4: a protocol error.
                return Err(CloseReason::ProtocolV5(
                    ReasonCode::ProtocolError,
                    "No Local on a shared subscription",
                ));
            }
            let identifier = s.subscription_identifier();
            let options = s.filters.iter().map(|f| f.options).collect();
            state.subscribes.push_back(PendingSubscribe {
                packet_id: s.packet_id,
                options,
                identifier,
            });
            let filters = s
                .filters
                .into_iter()
                .map(|f| SubscribeFilter {
                    filter: f.filter,
                    qos: f.options.qos,
                })
                .collect();
            Packet::Subscribe(Subscribe {
                packet_id: s.packet_id,
                filters,
            })
        }
        v5::Packet::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
            packet_id: u.packet_id,
            filters: u.filters,
        }),
        v5::Packet::PingReq => Packet::PingReq,
        v5::Packet::Disconnect(d) => {
            if let Some(expiry) = d
                .properties
                .get(PropertyId::SessionExpiryInterval)
                .and_then(|p| p.as_u32())
            {
                if state.connect_expiry_s == 0 && expiry != 0 {
                    return Err(CloseReason::ProtocolV5(
                        ReasonCode::ProtocolError,
                        "DISCONNECT set a session expiry after CONNECT gave 0",
                    ));
                }
                session.set_expiry_interval_s(Some(expiry));
                if session.is_persistent() && expiry == 0 {
                    session.set_persistent(false);
                }
            }
            if d.reason == ReasonCode::DisconnectWithWillMessage {
                // The session is not told: it keeps the will, which the end publishes.
                return Err(CloseReason::DisconnectWithWill);
            }
            Packet::Disconnect
        }
        v5::Packet::Auth(a) => {
            // A sign of life like any other packet, though the session never sees it.
            session.client_activity(now);
            let reply = enhanced::reauthenticate(state.enhanced.as_mut(), session.client_id(), &a)?;
            state.auth_replies.push(reply);
            return Ok(());
        }
        other => {
            return Err(CloseReason::ProtocolV5(
                ReasonCode::ProtocolError,
                other.name(),
            ))
        }
    };
    session
        .handle_packet(as_v3, now)
        .map_err(CloseReason::Protocol)
}

/// The topic of a PUBLISH with a Topic Alias: a topic name sets the alias, an empty one
/// uses it (MQTT 5.0 3.3.2.3.4).
fn aliased_topic(
    state: &mut V5State,
    alias: NonZeroU16,
    topic: ByteStr,
) -> Result<ByteStr, CloseReason> {
    if alias.get() > TOPIC_ALIAS_MAXIMUM {
        return Err(CloseReason::ProtocolV5(
            ReasonCode::TopicAliasInvalid,
            "topic alias above the maximum",
        ));
    }
    let slot = usize::from(alias.get() - 1);
    if state.inbound_aliases.len() <= slot {
        state.inbound_aliases.resize(slot + 1, None);
    }
    if !topic.is_empty() {
        // Owned: the alias outlives the packet it came in.
        state.inbound_aliases[slot] = Some(topic.detached());
        return Ok(topic);
    }
    state.inbound_aliases[slot]
        .clone()
        .ok_or(CloseReason::ProtocolV5(
            ReasonCode::ProtocolError,
            "topic alias used before it was set",
        ))
}

/// A PUBLISH whose MQTT 5 form carries no property, written from the session's packet
/// without building a [`v5::Packet`] first (the bulk of the traffic). A newtype, so the
/// packet moves in without its fields being laid out anew.
#[derive(Debug)]
pub(crate) struct PlainPublish(Publish);

impl Outbound for PlainPublish {
    #[inline]
    fn publish_payload_len(&self) -> Option<usize> {
        Some(self.0.payload().len())
    }
    fn encode_header(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.0.encode_header_v5(buf)
    }
    fn into_payload(self) -> Bytes {
        self.0.into_payload()
    }
    #[inline]
    fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.0.encode_v5(buf)
    }
}

/// What [`outbound`] writes for a packet the session sends, besides a [`PlainPublish`].
#[derive(Debug)]
pub(crate) enum Wire {
    /// A packet whose MQTT 5 form is the same bytes as its 3.1.1 form: an acknowledgement
    /// with reason 0 and no properties (the short form, MQTT 5 3.4.2.1), PINGRESP.
    Same(Packet),
    /// Any other packet, in its MQTT 5 form.
    V5(v5::Packet),
}

impl Outbound for Wire {
    fn publish_payload_len(&self) -> Option<usize> {
        match self {
            Wire::Same(_) => None,
            Wire::V5(p) => p.publish_payload_len(),
        }
    }
    fn encode_header(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Wire::Same(p) => p.encode(buf),
            Wire::V5(p) => Outbound::encode_header(p, buf),
        }
    }
    fn into_payload(self) -> Bytes {
        match self {
            Wire::Same(_) => Bytes::new(),
            Wire::V5(p) => p.into_payload(),
        }
    }
    fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Wire::Same(p) => p.encode(buf),
            Wire::V5(p) => p.encode(buf),
        }
    }
}

/// Queues the MQTT 5 form of a packet the session sends on `io`; nothing for one that is
/// not written (a PUBLISH larger than the client accepts).
#[inline]
pub(crate) fn outbound<S: AsyncRead + AsyncWrite + Unpin>(
    state: &mut V5State,
    subscriptions: &[Subscription],
    client_id: &str,
    packet: Packet,
    message: Option<OutgoingMessage>,
    now: u64,
    io: &mut Io<S>,
) {
    let wire = match packet {
        Packet::Publish(p) if message.is_none() && state.outbound_alias_max == 0 => {
            // Nothing of its own and no alias to set (the bulk of the traffic, inlined in
            // the caller): written as it is, with no properties.
            if too_large(state, p.encoded_len_v5()) {
                unsent(state, p.packet_id, p.qos);
                return;
            }
            io.queue_one(PlainPublish(p));
            return;
        }
        // The PUBACK of a QoS 1 PUBLISH from the client, with nothing to say: the short
        // form, the same bytes as in 3.1.1.
        Packet::PubAck(_) if state.ack_reasons.is_empty() => {
            state.receiving = state.receiving.saturating_sub(1);
            io.queue_one(packet);
            return;
        }
        Packet::Publish(p) => outbound_publish(state, subscriptions, client_id, p, message, now),
        other => outbound_other(state, other),
    };
    if let Some(wire) = wire {
        io.queue_one(wire);
    }
}

/// [`outbound`] for every packet but PUBLISH.
#[inline(never)]
fn outbound_other(state: &mut V5State, packet: Packet) -> Option<Wire> {
    Some(Wire::V5(match packet {
        Packet::ConnAck(ack) => {
            let mut connack = state.connack.take().unwrap_or_default();
            connack.session_present = ack.session_present;
            v5::Packet::ConnAck(connack)
        }
        // (One with nothing to say was written by `outbound` in its short form.)
        Packet::PubAck(id) => {
            state.receiving = state.receiving.saturating_sub(1);
            v5::Packet::PubAck(ack(state, id))
        }
        Packet::PubRec(id) => {
            if state.ack_reasons.is_empty() {
                return Some(Wire::Same(packet));
            }
            let ack = ack(state, id);
            if ack.reason.is_error() {
                // The flow ends here: no PUBREL, no PUBCOMP.
                state.receiving = state.receiving.saturating_sub(1);
                state.refused_pubrecs.push(id);
            }
            v5::Packet::PubRec(ack)
        }
        Packet::PubRel(id) => {
            if let Some(at) = state.unsent_pubrels.iter().position(|p| *p == id) {
                state.unsent_pubrels.swap_remove(at);
                return None;
            }
            return Some(Wire::Same(packet));
        }
        Packet::PubComp(id) => {
            if let Some(at) = state.unsent_pubcomps.iter().position(|p| *p == id) {
                state.unsent_pubcomps.swap_remove(at);
                return None;
            }
            // (Also for a PUBREL of an earlier connection's PUBLISH, which this one did not
            // count: the count stays at 0 then, as the client's quota stays at its maximum.)
            state.receiving = state.receiving.saturating_sub(1);
            return Some(Wire::Same(packet));
        }
        Packet::SubAck(ack) => {
            let refusals = take_by_id(&mut state.suback_refusals, ack.packet_id);
            let reasons: Vec<ReasonCode> = ack
                .return_codes
                .iter()
                .enumerate()
                .map(|(i, code)| match code {
                    SubscribeReturnCode::Success(QoS::AtMostOnce) => ReasonCode::Success,
                    SubscribeReturnCode::Success(QoS::AtLeastOnce) => ReasonCode::GrantedQoS1,
                    SubscribeReturnCode::Success(QoS::ExactlyOnce) => ReasonCode::GrantedQoS2,
                    SubscribeReturnCode::Failure => refusals
                        .as_ref()
                        .and_then(|r| r.get(i).copied())
                        .unwrap_or(ReasonCode::NotAuthorized),
                })
                .collect();
            let properties = if reasons.iter().any(|r| r.is_error()) {
                problem(state, "a topic filter was refused")
            } else {
                Properties::new()
            };
            v5::Packet::SubAck(v5::SubAck {
                packet_id: ack.packet_id,
                properties,
                reasons,
            })
        }
        Packet::UnsubAck(id) => v5::Packet::UnsubAck(v5::UnsubAck {
            packet_id: id,
            properties: Properties::new(),
            reasons: take_by_id(&mut state.unsubscribes, id).unwrap_or_default(),
        }),
        Packet::PingResp => return Some(Wire::Same(packet)),
        // The broker never sends the client's packets (and PUBLISH was handled above).
        Packet::Publish(_)
        | Packet::Connect(_)
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_)
        | Packet::PingReq
        | Packet::Disconnect => return None,
    }))
}

/// [`outbound`] for a PUBLISH that carries properties of its message, or takes a topic
/// alias.
#[inline(never)]
fn outbound_publish(
    state: &mut V5State,
    subscriptions: &[Subscription],
    client_id: &str,
    p: Publish,
    message: Option<OutgoingMessage>,
    now: u64,
) -> Option<Wire> {
    let shared = message.as_ref().is_some_and(|m| m.shared);
    let message = message.map(|m| m.message);
    let replay = message
        .as_deref()
        .filter(|m| m.retain)
        .and_then(|m| take_by_id(&mut state.retained_replays, m.id));
    let copy = CopyOf {
        replay,
        shared,
        client_id,
    };
    let mut publish = publish(p, message.as_deref(), subscriptions, copy, now);
    if too_large(state, publish.encoded_len()) {
        unsent(state, publish.packet_id, publish.qos);
        return None;
    }
    alias_outbound(state, &mut publish);
    Some(Wire::V5(v5::Packet::Publish(publish)))
}

/// Whether a PUBLISH of `len` bytes is more than the client's Maximum Packet Size (one that
/// cannot be encoded is left to the writer, which reports it).
#[inline]
fn too_large(state: &V5State, len: Result<usize, EncodeError>) -> bool {
    match (state.client_max_packet, len) {
        (Some(max), Ok(len)) => len > usize::try_from(max).unwrap_or(usize::MAX),
        _ => false,
    }
}

/// A PUBLISH too large for the client: MQTT-3.1.2-25 has it discarded "as if it had
/// completed sending", so a QoS 1 or 2 one is then completed in the session (see
/// [`complete_unsent`]).
fn unsent(state: &mut V5State, packet_id: Option<PacketId>, qos: QoS) {
    if let Some(id) = packet_id {
        state.unsent_publishes.push((id, qos));
    }
}

/// The PUBACK or PUBREC of the client's PUBLISH `id`: 0x00, or the reason noted for it
/// (with a Reason String when it is an error the client takes one for).
fn ack(state: &mut V5State, id: PacketId) -> v5::Ack {
    let mut ack = v5::Ack::success(id);
    if let Some(at) = state.ack_reasons.iter().position(|(p, _)| *p == id) {
        ack.reason = state.ack_reasons.swap_remove(at).1;
        if ack.reason == ReasonCode::NotAuthorized {
            ack.properties = problem(state, "not authorized to publish to this topic");
        }
    }
    ack
}

/// A Reason String for a packet other than PUBLISH, CONNACK and DISCONNECT: none when the
/// client asked for no problem information (MQTT-3.1.2-29).
fn problem(state: &V5State, text: &str) -> Properties {
    if state.problem_information {
        reason_string(text)
    } else {
        Properties::new()
    }
}

/// Properties holding `text` as the Reason String.
fn reason_string(text: &str) -> Properties {
    Properties::build([Property::Utf8(PropertyId::ReasonString, text)]).unwrap_or_default()
}

/// The DISCONNECT the broker sends before it closes the connection: `reason`, with `text`
/// as its Reason String unless that would make it larger than the client accepts
/// (MQTT-3.14.2-3).
pub(crate) fn disconnect(state: &V5State, reason: ReasonCode, text: &str) -> v5::Packet {
    with_reason_string(state.client_max_packet, text, |properties| {
        v5::Packet::Disconnect(v5::ReasonAndProperties { reason, properties })
    })
}

/// The properties that send a client elsewhere: Server Reference, and a Reason String
/// saying so.
fn redirect_properties(redirect: &Redirect) -> Properties {
    let text = if redirect.permanent {
        "server moved: connect to the Server Reference"
    } else {
        "use another server: connect to the Server Reference"
    };
    Properties::build([
        Property::Utf8(PropertyId::ServerReference, &redirect.server_reference),
        Property::Utf8(PropertyId::ReasonString, text),
    ])
    .unwrap_or_default()
}

/// The DISCONNECT (`connack: false`) or refusing CONNACK that sends a client to
/// `redirect`'s server: reason 0x9C or 0x9D and the Server Reference (3.2.2.3.16,
/// 3.14.2.2.5). The properties are left out when they would make the packet larger than
/// the client accepts: the reason code still tells it to go.
pub(crate) fn redirect(
    client_max_packet: Option<u32>,
    redirect: &Redirect,
    connack: bool,
) -> v5::Packet {
    let reason = redirect.reason();
    let packet = |properties| {
        if connack {
            v5::Packet::ConnAck(v5::ConnAck {
                session_present: false,
                reason,
                properties,
            })
        } else {
            v5::Packet::Disconnect(v5::ReasonAndProperties { reason, properties })
        }
    };
    within(client_max_packet, redirect_properties(redirect), packet)
}

/// The CONNACK that refuses a CONNECT with `reason`, and `text` as its Reason String unless
/// that would make it larger than the client accepts (MQTT-3.1.2-25).
pub(crate) fn refused_connack(
    client_max_packet: Option<u32>,
    reason: ReasonCode,
    text: &str,
) -> v5::Packet {
    with_reason_string(client_max_packet, text, |properties| {
        v5::Packet::ConnAck(v5::ConnAck {
            session_present: false,
            reason,
            properties,
        })
    })
}

/// `packet(reason string)`, or `packet(none)` when the Reason String would make it larger
/// than `client_max_packet`.
fn with_reason_string(
    client_max_packet: Option<u32>,
    text: &str,
    packet: impl Fn(Properties) -> v5::Packet,
) -> v5::Packet {
    within(client_max_packet, reason_string(text), packet)
}

/// `packet(properties)`, or `packet(none)` when they would make it larger than
/// `client_max_packet` (the properties a broker adds to say why are the ones it leaves out).
fn within(
    client_max_packet: Option<u32>,
    properties: Properties,
    packet: impl Fn(Properties) -> v5::Packet,
) -> v5::Packet {
    let with = packet(properties);
    let fits = match (client_max_packet, with.encoded_len()) {
        (Some(max), Ok(len)) => len <= usize::try_from(max).unwrap_or(usize::MAX),
        (None, Ok(_)) => true,
        (_, Err(_)) => false,
    };
    if fits {
        with
    } else {
        packet(Properties::new())
    }
}

/// Gives `publish` the alias of its topic, as far as the client takes aliases: a topic
/// already aliased goes out as the alias alone (an empty topic name), a new one sets the
/// next free alias; once all are taken, other topics go out in full.
fn alias_outbound(state: &mut V5State, publish: &mut v5::Publish) {
    if state.outbound_alias_max == 0 {
        return;
    }
    if let Some(&alias) = state.outbound_aliases.get(&*publish.topic) {
        publish.properties.topic_alias = Some(alias);
        publish.topic = ByteStr::from_static("");
        return;
    }
    let next = u16::try_from(state.outbound_aliases.len() + 1).unwrap_or(u16::MAX);
    if next > state.outbound_alias_max {
        return;
    }
    if let Some(alias) = NonZeroU16::new(next) {
        state
            .outbound_aliases
            .insert(publish.topic.detached(), alias);
        publish.properties.topic_alias = Some(alias);
    }
}

/// Completes in the session the QoS 1 and 2 PUBLISHes [`outbound`] did not write (too large
/// for the client), as if the client had acknowledged them, so they free their window slot,
/// and the client's QoS 2 PUBLISHes refused with their PUBREC, as if it had released them;
/// `true` if there were any (the session may have more to send).
pub(crate) fn complete_unsent(
    state: &mut V5State,
    session: &mut Session,
    now: u64,
) -> Result<bool, CloseReason> {
    if state.unsent_publishes.is_empty() && state.refused_pubrecs.is_empty() {
        return Ok(false);
    }
    for id in std::mem::take(&mut state.refused_pubrecs) {
        // The PUBREL the client will not send: the session releases the id, and its PUBCOMP
        // is not written.
        state.unsent_pubcomps.push(id);
        session
            .handle_packet(Packet::PubRel(id), now)
            .map_err(CloseReason::Protocol)?;
    }
    for (id, qos) in std::mem::take(&mut state.unsent_publishes) {
        let acks = match qos {
            QoS::ExactlyOnce => {
                state.unsent_pubrels.push(id);
                [Some(Packet::PubRec(id)), Some(Packet::PubComp(id))]
            }
            _ => [Some(Packet::PubAck(id)), None],
        };
        for ack in acks.into_iter().flatten() {
            session
                .handle_packet(ack, now)
                .map_err(CloseReason::Protocol)?;
        }
    }
    Ok(true)
}

/// Removes and returns the entry of `id` (normally the first).
fn take_by_id<K: PartialEq, T>(queue: &mut VecDeque<(K, T)>, id: K) -> Option<T> {
    let at = queue.iter().position(|(p, _)| *p == id)?;
    queue.remove(at).map(|(_, v)| v)
}

/// Which of a message's copies to the client a PUBLISH is.
#[derive(Debug, Clone, Copy)]
struct CopyOf<'a> {
    /// A retained message sent because of a SUBSCRIBE, with that SUBSCRIBE's identifier.
    replay: Option<Option<NonZeroU32>>,
    /// The copy a shared subscription delivered.
    shared: bool,
    /// The receiver (No Local applies to its own messages).
    client_id: &'a str,
}

/// The MQTT 5 PUBLISH of `message`: its forwarded properties as they were received, the
/// whole seconds of its expiry left, and the identifiers of the client's subscriptions that
/// match its topic and the copy results from, in the order they were made: for a retained
/// message sent because of a SUBSCRIBE (`replay`), that SUBSCRIBE's identifier only; for a
/// shared subscription's copy, the shared subscriptions'; for any other copy, the plain
/// subscriptions' (or, when none matches, it is a shared one's whose mark was lost: queued
/// while the client was offline, or sent again on a new connection, the shared ones').
fn publish(
    p: Publish,
    message: Option<&Message>,
    subscriptions: &[Subscription],
    copy: CopyOf<'_>,
    now: u64,
) -> v5::Publish {
    let (dup, qos, retain, packet_id) = (p.dup, p.qos, p.retain, p.packet_id);
    let (topic, payload) = p.into_parts();
    let mut out = v5::Publish::new(qos, packet_id, topic, payload);
    out.dup = dup;
    out.retain = retain;
    if let Some(message) = message {
        out.properties.forward = message.properties.clone();
        out.properties.message_expiry_interval = message.remaining_expiry_s(now);
        let ids = &mut out.properties.subscription_identifiers;
        if let Some(identifier) = copy.replay {
            ids.extend(identifier);
            return out;
        }
        if subscriptions.iter().all(|s| s.identifier.is_none()) {
            // Nothing to add, and no topic to match for it (the common case).
            return out;
        }
        let own = *message.origin == *copy.client_id;
        let matching =
            |s: &&Subscription| !(own && s.no_local) && filter_matches(&s.filter, &message.topic);
        let shared = copy.shared
            || !subscriptions
                .iter()
                .filter(|s| !is_shared(&s.filter))
                .any(|s| matching(&s));
        let from = subscriptions
            .iter()
            .filter(|s| is_shared(&s.filter) == shared)
            .filter(matching);
        for id in from.filter_map(|s| s.identifier.and_then(NonZeroU32::new)) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    out
}

/// Whether this client's QoS 0 PUBLISHes can be frames shared with other receivers: it
/// takes no topic alias from the broker and none of its subscriptions has an identifier, so
/// nothing in its PUBLISH is its own.
pub(crate) fn shares_frames(state: &V5State, subscriptions: &[Subscription]) -> bool {
    state.outbound_alias_max == 0 && subscriptions.iter().all(|s| s.identifier.is_none())
}

/// Whether `filter` (one the session accepted, so valid; a shared one by the filter after
/// its `$share/{group}/`) matches `topic`; no owned filter is made per delivery.
pub(crate) fn filter_matches(filter: &str, topic: &str) -> bool {
    mqgate_topic::filter_matches(topic_filter(filter), topic)
}

/// Whether `filter` is a shared subscription's (`$share/{group}/{filter}`).
pub(crate) fn is_shared(filter: &str) -> bool {
    filter.starts_with(mqgate_topic::SHARE_PREFIX)
}

/// The topic filter of a subscription: `filter` itself, or the part after
/// `$share/{group}/` of a shared one.
fn topic_filter(filter: &str) -> &str {
    match filter.strip_prefix(mqgate_topic::SHARE_PREFIX) {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, filter)| filter),
        None => filter,
    }
}

/// Whether a message published by this client itself is delivered to it: only when a
/// subscription without No Local matches its topic (MQTT-3.8.3-3).
pub(crate) fn delivered_to_self(subscriptions: &[Subscription], topic: &str) -> bool {
    subscriptions
        .iter()
        .any(|s| !s.no_local && filter_matches(&s.filter, topic))
}

/// Whether this client's own message on `topic` is kept from it altogether (not routed to
/// its session, online or offline): it has a No Local subscription and none without No
/// Local matches. A cheap `false` for the clients that never set No Local.
pub(crate) fn not_for_self(subscriptions: &[Subscription], topic: &str) -> bool {
    subscriptions.iter().any(|s| s.no_local) && !delivered_to_self(subscriptions, topic)
}

/// Whether a message published with RETAIN set keeps it for this client: a subscription
/// with Retain As Published matches its topic (MQTT-3.3.1-12, -13).
pub(crate) fn retains_as_published(subscriptions: &[Subscription], topic: &str) -> bool {
    subscriptions
        .iter()
        .any(|s| s.retain_as_published && filter_matches(&s.filter, topic))
}

/// Whether the retained messages of a new subscription are sent, by its Retain Handling
/// (`existed`: the client had a subscription to this filter already).
pub(crate) fn sends_retained(options: &SubscriptionOptions, existed: bool) -> bool {
    match options.retain_handling {
        RetainHandling::SendAtSubscribe => true,
        RetainHandling::SendAtNewSubscription => !existed,
        RetainHandling::DoNotSend => false,
    }
}

/// The options of a granted subscription, kept in the session.
pub(crate) fn set_options(
    sub: &mut Subscription,
    options: &SubscriptionOptions,
    identifier: Option<NonZeroU32>,
) {
    sub.no_local = options.no_local;
    sub.retain_as_published = options.retain_as_published;
    sub.retain_handling = options.retain_handling as u8;
    sub.identifier = identifier.map(NonZeroU32::get);
}
