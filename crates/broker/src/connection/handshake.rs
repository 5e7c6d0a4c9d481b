//! From an accepted byte stream to an online connection: CONNECT (within the timeout),
//! client id rules, authentication, takeover, the session, the `connect` status event.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::{Either, FutureExt};
use mqgate_codec::{
    v5 as wire5, AnyPacket, ByteStr, ConnAck, Connect, ConnectReturnCode, DecodeError, Packet,
    ReasonCode,
};
use mqgate_session::Session;
use mqgate_status::ConnectionEvents;
use mqgate_trace::{Action, Info};
use tokio::io::{AsyncRead, AsyncWrite};

use super::close::CloseReason;
use super::enhanced::{self, Authenticated5};
use super::online::Online;
use super::v5::{self, V5State};
use super::ConnCtx;
use crate::clock::{monotonic_ms, unix_time_ms};
use crate::core::deliver;
use crate::core::inbox::{self, Kick};
use crate::core::registry::{Attach, ClientCard, OnlineLink};
use crate::transport::io::{Io, Outbound, StreamError};
use crate::TakeoverPolicy;

/// Serves one accepted stream until it closes. Never panics on peer data; every way it ends
/// is logged and counted.
///
/// The handshake's future is boxed and made at once: the returned future keeps only the box
/// while the handshake runs, then the online connection, so a connection's task is not as
/// large as its handshake and its online state together, nor carries the arguments.
pub(crate) fn serve<S>(
    stream: S,
    peer: SocketAddr,
    ctx: Arc<ConnCtx>,
) -> impl std::future::Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // Combinators, not an `async` block, which would keep the box both as the value it
    // captured and as the future it awaits.
    Box::pin(handshake(stream, peer, ctx)).then(|online| match online {
        Some(online) => Either::Left(online.run()),
        None => Either::Right(std::future::ready(())),
    })
}

/// Reads CONNECT and accepts it, or answers the refusal; `None` when the connection is over.
async fn handshake<S>(stream: S, peer: SocketAddr, ctx: Arc<ConnCtx>) -> Option<Online<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let limits = &ctx.limits;
    let mut io = Io::new(stream, limits.max_packet_size);
    let read = tokio::time::timeout(limits.connect_timeout, io.read_first()).await;
    let first = match read {
        Err(_) => Err(CloseReason::ConnectTimeout),
        Ok(Ok(None)) => return None,
        Ok(Ok(Some(AnyPacket::V3(Packet::Connect(connect))))) => Ok((connect, None)),
        Ok(Ok(Some(AnyPacket::V5(wire5::Packet::Connect(connect))))) => {
            let (as_v3, terms) = v5::terms(&connect, &ctx.mqtt5);
            Ok((Box::new(as_v3), Some(terms)))
        }
        Ok(Ok(Some(AnyPacket::V3(other)))) => Err(CloseReason::NotConnect(other.name())),
        Ok(Ok(Some(AnyPacket::V5(other)))) => Err(CloseReason::NotConnect(other.name())),
        // A protocol level we do not speak is answered, not just closed (MQTT-3.1.2-2); any
        // other bad CONNECT (an unknown protocol name included) closes without a CONNACK.
        Ok(Err(StreamError::Decode(DecodeError::UnsupportedProtocolLevel(level)))) => {
            tracing::info!(%peer, level, "CONNECT refused: unsupported protocol level");
            ctx.core
                .metrics
                .protocol_level_refused
                .fetch_add(1, Ordering::Relaxed);
            refuse(io, &ctx, ConnectReturnCode::UnacceptableProtocolVersion).await;
            return None;
        }
        Ok(Err(error)) => Err(CloseReason::from(error)),
    };
    let (connect, mut v5_terms) = match first {
        Ok(first) => first,
        Err(reason) => {
            reason.report(&peer.to_string(), &ctx.core.metrics);
            return None;
        }
    };
    let is_v5 = v5_terms.is_some();
    let client_max_packet = v5_terms.as_ref().and_then(|t| t.client_max_packet);
    let redirect = ctx.core.redirect.read().clone();
    if let Some(redirect) = redirect {
        // Server redirection: nobody is served here; MQTT 5 clients learn where to go.
        tracing::debug!(%peer, client = %connect.client_id, to = %redirect.server_reference, "CONNECT redirected");
        let metrics = &ctx.core.metrics;
        metrics.connects_redirected.fetch_add(1, Ordering::Relaxed);
        if is_v5 {
            let connack = v5::redirect(client_max_packet, &redirect, true);
            send_refusal(io, &ctx, connack).await;
        } else {
            refuse(io, &ctx, ConnectReturnCode::ServerUnavailable).await;
        }
        return None;
    }
    let mut enhanced = None;
    if let Some((method, data)) = v5_terms.as_mut().and_then(|t| t.authentication.take()) {
        // MQTT 5 enhanced authentication: its AUTH exchange comes before the CONNACK, within
        // the connect timeout.
        let client = connect.client_id.as_str();
        let exchange = enhanced::connect_exchange(
            &mut io,
            &ctx.enhanced,
            client,
            method,
            data,
            limits.connect_timeout,
        );
        match tokio::time::timeout(limits.connect_timeout, exchange).await {
            Ok(Ok(done)) => enhanced = Some(done),
            Ok(Err(Some(code))) => {
                tracing::info!(%peer, %client, ?code, "MQTT 5 enhanced authentication refused");
                let refusal =
                    v5::refused_connack(client_max_packet, code, "enhanced authentication failed");
                send_refusal(io, &ctx, refusal).await;
                return None;
            }
            Ok(Err(None)) => return None,
            Err(_) => {
                CloseReason::ConnectTimeout.report(&peer.to_string(), &ctx.core.metrics);
                return None;
            }
        }
    }
    match accept(io, peer, &ctx, &connect, v5_terms, enhanced).await {
        Ok(online) => Some(online),
        Err((io, code, why)) => {
            tracing::info!(%peer, client = %connect.client_id, ?code, "CONNECT refused");
            if let Some(trace) = &ctx.core.trace {
                let channel = ctx.core.status.channels.next();
                trace.device(Action::Connect, why, &connect.client_id.detached(), channel);
            }
            if is_v5 {
                let text = refusal_text(code, why);
                let refusal = v5::refused_connack(client_max_packet, v5::refusal(code), text);
                send_refusal(io, &ctx, refusal).await;
            } else {
                refuse(io, &ctx, code).await;
            }
            None
        }
    }
}

/// Answers a refused CONNECT with its CONNACK code (counted in `connects_refused`); the
/// connection then closes.
async fn refuse<S>(io: Io<S>, ctx: &ConnCtx, code: ConnectReturnCode)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        code,
    });
    send_refusal(io, ctx, connack).await;
}

/// Counts a refused CONNECT and writes its CONNACK.
async fn send_refusal<S, P>(mut io: Io<S>, ctx: &ConnCtx, connack: P)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    P: Outbound,
{
    ctx.core
        .metrics
        .connects_refused
        .fetch_add(1, Ordering::Relaxed);
    let _ = io.write_all([connack], ctx.limits.connect_timeout).await;
}

/// A refused CONNECT: the stream, the CONNACK code, and why, as the trace shows it.
type Refusal<S> = (Io<S>, ConnectReturnCode, Info);

/// Why a CONNECT was refused, in words: an MQTT 5 CONNACK's Reason String.
fn refusal_text(code: ConnectReturnCode, why: Info) -> &'static str {
    match (code, why) {
        (ConnectReturnCode::IdentifierRejected, Info::ClientIdConflict) => {
            "client identifier in use: another connection holds it and takeover is refused"
        }
        (ConnectReturnCode::IdentifierRejected, _) => "client identifier not valid for this broker",
        (ConnectReturnCode::BadUsernameOrPassword, _) => "bad user name or password",
        (ConnectReturnCode::NotAuthorized, _) => "not authorized to connect",
        (ConnectReturnCode::ServerUnavailable, _) => "server unavailable",
        (ConnectReturnCode::UnacceptableProtocolVersion, _) => "protocol version not supported",
        (ConnectReturnCode::Accepted, _) => "",
    }
}

/// Why the authenticator's refusal `code` refused, as the trace shows it.
fn refusal_info(code: ConnectReturnCode) -> Info {
    match code {
        ConnectReturnCode::BadUsernameOrPassword | ConnectReturnCode::NotAuthorized => {
            Info::NotAuthorized
        }
        ConnectReturnCode::ServerUnavailable => Info::ClosedByServer,
        _ => Info::InvalidParam,
    }
}

/// Accepts `connect` (the 3.1.1 fields of an MQTT 5 CONNECT when `v5_terms` is given, Clean
/// Start as `clean_session`) or says which CONNACK code refuses it, and why.
async fn accept<S>(
    io: Io<S>,
    peer: SocketAddr,
    ctx: &Arc<ConnCtx>,
    connect: &Connect,
    v5_terms: Option<v5::ClientTerms>,
    enhanced: Option<Authenticated5>,
) -> Result<Online<S>, Refusal<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // MQTT 5: Clean Start only discards; the Session Expiry Interval says whether the
    // session outlives the connection.
    let clean_start = connect.clean_session;
    let persistent = match &v5_terms {
        Some(terms) => terms.expiry_s > 0,
        None => !connect.clean_session,
    };
    let Some(client_id) = client_id(ctx, connect, v5_terms.is_some()) else {
        return Err((
            io,
            ConnectReturnCode::IdentifierRejected,
            Info::InvalidParam,
        ));
    };
    let mut admitted = match crate::auth::admit(&ctx.access, &ctx.core.metrics, connect, peer) {
        Ok(admitted) => admitted,
        Err(code) => return Err((io, code, refusal_info(code))),
    };
    let core = &ctx.core;
    if ctx.takeover == TakeoverPolicy::RefuseNew {
        // In a cluster: online on another live node, as far as this node knows (its view
        // lags the other node by one presence message; the order of the two connects in
        // the client's presence queue settles a race).
        let elsewhere = core.status.presence.as_ref();
        if let Some(node) = elsewhere.and_then(|p| p.held_elsewhere(client_id.as_str())) {
            tracing::info!(%peer, client = %client_id, %node, "CONNECT refused: the client is online on another node of the cluster and takeover is refused");
            return Err((
                io,
                ConnectReturnCode::IdentifierRejected,
                Info::ClientIdConflict,
            ));
        }
    }
    let channel = core.status.channels.next();
    let client: Arc<str> = Arc::from(client_id.as_str());
    admitted.grants.share_client_id(&client);
    let (inbox_tx, inbox) = inbox::channel(ctx.limits.inbox_capacity.max(1));
    let card = Arc::new(ClientCard::new(
        peer.to_string(),
        connect.username.as_deref(),
        connect.keep_alive,
        unix_time_ms(),
    ));
    let link = OnlineLink {
        channel,
        inbox: inbox_tx,
        kickable: true,
        persistent,
        card: Some(card.clone()),
    };
    let registry = &core.registry;
    let mut pending = Vec::new();
    let stored = match registry.attach(&client, link, ctx.takeover) {
        Attach::Fresh => None,
        Attach::Resumed(session) => Some(session),
        Attach::Wait(handoff) => {
            let limit = ctx.limits.connect_timeout;
            let handed = tokio::time::timeout(limit, handoff).await;
            pending = registry.complete_handover(&client, channel);
            handed.ok().and_then(Result::ok).flatten()
        }
        Attach::Refused => {
            return Err((
                io,
                ConnectReturnCode::IdentifierRejected,
                Info::ClientIdConflict,
            ))
        }
    };
    let resumed = stored.is_some();
    // MQTT 5: a will waiting for its delay is not sent once the session resumes
    // (MQTT-3.1.3-9); a Clean Start ends that session, which publishes it now.
    core.wills.connected(&client, clean_start || !resumed);
    // Shutdown kicks every connection in the registry after it raised the flag: one that
    // attached too late for that sees the flag here, and kicks itself.
    if core.is_shutting_down() {
        registry.kick(&client, Some(channel), Kick::Shutdown);
    }
    // Likewise the connect blacklist: a client id put on it while this CONNECT was checked
    // was not online for the API to close, so the check is repeated once it is.
    if ctx.access.blacklists(&client) {
        registry.kick(&client, Some(channel), Kick::Blacklisted);
    }
    let mut session =
        stored.unwrap_or_else(|| Box::new(Session::new(client_id, ctx.session_config)));
    let mut config = ctx.session_config;
    if let Some(receive_maximum) = v5_terms.as_ref().and_then(|t| t.receive_maximum) {
        // MQTT 5 flow control: no more QoS 1 and 2 PUBLISHes unacknowledged than the client
        // takes (MQTT-3.3.4-9).
        config.inflight_window = config.inflight_window.min(receive_maximum);
    }
    session.set_config(config);
    if clean_start {
        // The stored state is discarded by `connect`; its subscriptions leave the trie too.
        let old = session.subscriptions().to_vec();
        core.router.unsubscribe_all(&client, &old);
    }
    if (clean_start || !persistent) && session.is_persistent() {
        // A persistent session's record and queue leave the store: discarded, or (MQTT 5,
        // Session Expiry Interval 0) resumed for this connection only.
        let mut ops = vec![mqgate_store::Op::RemoveSession(session.client_id().clone())];
        let _ = core.persist.submit(&mut ops);
    }
    let mut v5_state = None;
    if let Some(terms) = v5_terms {
        let (expiry_s, client_max_packet) = (terms.expiry_s, terms.client_max_packet);
        session.set_protocol(wire5::PROTOCOL_LEVEL);
        session.set_expiry_interval_s(Some(expiry_s));
        // Response Information: the configured prefix and the client id (3.2.2.3.15), only
        // when asked for (MQTT-3.1.2-28).
        let response_information = ctx
            .mqtt5
            .response_information
            .as_ref()
            .filter(|_| terms.wants_response_information)
            .map(|prefix| format!("{prefix}{client}"));
        let announce = v5::Announce {
            receive_maximum: ctx.mqtt5.receive_maximum.get(),
            max_packet_size: u32::try_from(ctx.limits.max_packet_size).unwrap_or(u32::MAX),
            assigned: connect.client_id.is_empty().then_some(&*client),
            server_keep_alive: terms.server_keep_alive,
            response_information: response_information.as_deref(),
            authentication: enhanced
                .as_ref()
                .map(|e| (e.enhanced.name.as_str(), e.data.as_deref())),
        };
        let properties = match v5::connack_properties(announce) {
            Ok(properties) => properties,
            Err(error) => {
                tracing::error!(%client, %error, "CONNACK properties not encodable");
                mqgate_codec::Properties::new()
            }
        };
        v5_state = Some(Box::new(V5State {
            connack: Some(wire5::ConnAck {
                session_present: false,
                reason: ReasonCode::Success,
                properties,
            }),
            connect_expiry_s: expiry_s,
            client_max_packet,
            outbound_alias_max: terms.topic_alias_max,
            will: terms.will,
            problem_information: terms.problem_information,
            enhanced: enhanced.map(|e| e.enhanced),
            receive_maximum: ctx.mqtt5.receive_maximum.get(),
            ..V5State::default()
        }));
    } else {
        session.set_protocol(4);
        session.set_expiry_interval_s(None);
    }
    if let Err(error) = session.connect_with(connect, clean_start, persistent, monotonic_ms()) {
        // Only possible if a session were handed over still connected: refuse, stay sane.
        tracing::error!(%client, %error, "session refused CONNECT");
        registry.detach(&client, channel, session, |_| {});
        return Err((
            io,
            ConnectReturnCode::ServerUnavailable,
            Info::ClosedByServer,
        ));
    }
    if let Some(trace) = &core.trace {
        trace.device(
            Action::Connect,
            Info::Accepted,
            session.client_id(),
            channel,
        );
        // What a resumed session sends now came from its offline queue (or was in flight
        // when it went offline).
        if resumed && session.is_persistent() {
            for id in session.record().message_ids() {
                let info = Info::PushOfflineMsgToMqttClient;
                trace.message(Action::PushOffline, info, session.client_id(), id);
            }
        }
        // Routed to it during the handover: pushed to it online now.
        for delivery in &pending {
            let info = Info::PushToMqttClient;
            trace.message(Action::Sub, info, session.client_id(), delivery.message.id);
        }
    }
    if let (true, Some(window)) = (session.is_persistent(), core.queue_window) {
        // Its queue stays in the store; the connection reads it back a page at a time.
        session.keep_queue_in_store(window);
    }
    deliver::replay(&mut session, pending);
    card.set_subscriptions(session.subscriptions());
    let (events, connected) = ConnectionEvents::connect(
        client.clone(),
        channel,
        peer,
        core.status.sequence.clone(),
        unix_time_ms(),
    );
    // In a cluster the connect carries the will, so the node that cleans up after this one
    // (should it die) publishes it, after its delay as this node would (see
    // `Online::finish`). Its id is given when it is published.
    let will = connect
        .will
        .as_ref()
        .filter(|_| core.status.carries_wills())
        .map(|will| {
            let now = unix_time_ms();
            let mut message = mqgate_session::Message::new(
                mqgate_session::MessageId(0),
                will.topic.clone(),
                will.payload.clone(),
                will.qos,
                now,
            )
            .with_origin(session.client_id().clone());
            let mut delay_s = 0;
            if let Some(terms) = v5_state.as_ref().map(|state| &state.will) {
                message.properties = terms.forward.clone();
                message.expires_at_ms = terms
                    .expiry_s
                    .map(|s| now.saturating_add(u64::from(s) * 1000));
                delay_s = match session.expiry_interval_s() {
                    Some(expiry_s) if session.is_persistent() => terms.delay_s.min(expiry_s),
                    _ => 0,
                };
            }
            crate::core::status::CarriedWill {
                message,
                retain: will.retain,
                delay_s,
            }
        });
    core.status.emit_with_will(connected, will);
    core.metrics
        .sessions_started
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%client, %peer, %channel, clean = connect.clean_session, "client connected");
    ctx.access.tokens.watch(&client, channel, &admitted);
    Ok(Online {
        io,
        ctx: ctx.clone(),
        session,
        inbox,
        grants: Box::new(admitted.grants),
        events,
        held: None,
        scratch: None,
        saved: None,
        acks: crate::core::persist::PendingAcks::default(),
        card,
        reading: None,
        draining: None,
        v5: v5_state,
    })
}

/// The client id to use: the one sent, or a generated one for an empty id with a clean
/// session (MQTT-3.1.3-6); `None` when it must be refused (MQTT-3.1.3-8, our id rules, or an
/// id the broker keeps for its own links, such as the cloud SDK endpoint's queues).
///
/// MQTT 5 gives an empty id an assigned one whatever Clean Start says (MQTT-3.1.3-6 of MQTT
/// 5), and the CONNACK names it.
fn client_id(ctx: &ConnCtx, connect: &Connect, v5: bool) -> Option<ByteStr> {
    if connect
        .client_id
        .starts_with(crate::core::registry::AMQP_LINK_PREFIX)
    {
        return None;
    }
    if connect.client_id.is_empty() {
        if !connect.clean_session && !v5 {
            return None;
        }
        let suffix = getrandom::u64().ok()?;
        return ByteStr::try_from(format!("mqgate-{suffix:016x}")).ok();
    }
    ctx.client_id_rules
        .check(&connect.client_id)
        .ok()
        // A copy: the id lives as long as the session, the CONNECT packet need not.
        .map(|_| connect.client_id.detached())
}
