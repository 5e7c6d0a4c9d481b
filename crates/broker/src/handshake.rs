//! From an accepted byte stream to an online connection: CONNECT (within the timeout),
//! client id rules, authentication, takeover, the session, the `connect` status event.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mqgate_codec::{ByteStr, ConnAck, Connect, ConnectReturnCode, DecodeError, Packet};
use mqgate_session::Session;
use mqgate_status::ConnectionEvents;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::inbox as mpsc;

use crate::clock::unix_time_ms;
use crate::close::CloseReason;
use crate::connection::Online;
use crate::io::Io;
use crate::registry::{Attach, Kick, OnlineLink};
use crate::shared::Shared;

/// Serves one accepted stream until it closes. Never panics on peer data; every way it ends
/// is logged and counted.
pub(crate) async fn serve<S>(stream: S, peer: SocketAddr, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // Boxed: the handshake's state is needed once; the connection's future stays small.
    let online = match Box::pin(handshake(stream, peer, shared)).await {
        Some(online) => online,
        None => return,
    };
    online.run().await;
}

/// Reads CONNECT and accepts it, or answers the refusal; `None` when the connection is over.
pub(crate) async fn handshake<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Option<Online<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let limits = &shared.config.limits;
    let mut io = Io::new(stream, limits.max_packet_size);
    let read = tokio::time::timeout(limits.connect_timeout, io.read_packet()).await;
    let first = match read {
        Err(_) => Err(CloseReason::ConnectTimeout),
        Ok(Ok(None)) => return None,
        Ok(Ok(Some(Packet::Connect(connect)))) => Ok(connect),
        Ok(Ok(Some(other))) => Err(CloseReason::NotConnect(other.name())),
        // A protocol level we do not speak is answered, not just closed (MQTT-3.1.2-2); any
        // other bad CONNECT (an unknown protocol name included) closes without a CONNACK.
        Ok(Err(CloseReason::Malformed(DecodeError::UnsupportedProtocolLevel(level)))) => {
            tracing::info!(%peer, level, "CONNECT refused: unsupported protocol level");
            shared
                .metrics
                .protocol_level_refused
                .fetch_add(1, Ordering::Relaxed);
            refuse(io, &shared, ConnectReturnCode::UnacceptableProtocolVersion).await;
            return None;
        }
        Ok(Err(reason)) => Err(reason),
    };
    let connect = match first {
        Ok(connect) => connect,
        Err(reason) => {
            reason.report(&peer.to_string(), &shared.metrics);
            return None;
        }
    };
    match accept(io, peer, &shared, &connect).await {
        Ok(online) => Some(online),
        Err((io, code)) => {
            tracing::info!(%peer, client = %connect.client_id, ?code, "CONNECT refused");
            refuse(io, &shared, code).await;
            None
        }
    }
}

/// Answers a refused CONNECT with its CONNACK code (counted in `connects_refused`); the
/// connection then closes.
async fn refuse<S>(mut io: Io<S>, shared: &Shared, code: ConnectReturnCode)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    shared
        .metrics
        .connects_refused
        .fetch_add(1, Ordering::Relaxed);
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        code,
    });
    let _ = io
        .write_all([connack], shared.config.limits.connect_timeout)
        .await;
}

type Refusal<S> = (Io<S>, ConnectReturnCode);

/// Accepts `connect` or says which CONNACK code refuses it.
async fn accept<S>(
    io: Io<S>,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    connect: &Connect,
) -> Result<Online<S>, Refusal<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(client_id) = client_id(shared, connect) else {
        return Err((io, ConnectReturnCode::IdentifierRejected));
    };
    let mut admitted = match crate::auth::admit(shared, connect, peer) {
        Ok(admitted) => admitted,
        Err(code) => return Err((io, code)),
    };
    let channel = shared.status.channels.next();
    let client: Arc<str> = Arc::from(client_id.as_str());
    admitted.grants.share_client_id(&client);
    let (inbox_tx, inbox) = mpsc::channel(shared.config.limits.inbox_capacity.max(1));
    let link = OnlineLink {
        channel,
        inbox: inbox_tx,
        kickable: true,
        persistent: !connect.clean_session,
    };
    let registry = &shared.router.registry;
    let mut pending = Vec::new();
    let stored = match registry.attach(&client, link, shared.config.takeover) {
        Attach::Fresh => None,
        Attach::Resumed(session) => Some(session),
        Attach::Wait(handoff) => {
            let limit = shared.config.limits.connect_timeout;
            let handed = tokio::time::timeout(limit, handoff).await;
            pending = registry.complete_handover(&client, channel);
            handed.ok().and_then(Result::ok).flatten()
        }
        Attach::Refused => return Err((io, ConnectReturnCode::IdentifierRejected)),
    };
    // Shutdown kicks every connection in the registry after it raised the flag: one that
    // attached too late for that sees the flag here, and kicks itself.
    if *shared.shutdown.borrow() {
        registry.kick(&client, Some(channel), Kick::Shutdown);
    }
    let mut session =
        stored.unwrap_or_else(|| Box::new(Session::new(client_id, shared.session_config)));
    session.set_config(shared.session_config);
    if connect.clean_session {
        // The stored state is discarded by `connect`; its subscriptions leave the trie too,
        // and a persistent session's record and queue leave the store.
        let old = session.subscriptions().to_vec();
        shared.router.unsubscribe_all(&client, &old);
        if session.is_persistent() {
            let mut ops = vec![mqgate_store::Op::RemoveSession(session.client_id().clone())];
            let _ = shared.router.persist.submit(&mut ops);
        }
    }
    let now = unix_time_ms();
    if let Err(error) = session.connect(connect, now) {
        // Only possible if a session were handed over still connected: refuse, stay sane.
        tracing::error!(%client, %error, "session refused CONNECT");
        registry.detach(&client, channel, session, |_| {});
        return Err((io, ConnectReturnCode::ServerUnavailable));
    }
    for delivery in pending {
        let _ = session.handle_delivery(delivery.message, delivery.granted, now);
    }
    let (events, connected) = ConnectionEvents::connect(
        client.clone(),
        channel,
        peer,
        shared.status.sequence.clone(),
        now,
    );
    shared.status.emit(Some(connected));
    shared
        .metrics
        .sessions_started
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%client, %peer, %channel, clean = connect.clean_session, "client connected");
    shared.access.tokens.watch(&client, channel, &admitted);
    Ok(Online {
        io,
        shared: shared.clone(),
        session,
        inbox,
        grants: admitted.grants,
        events,
        held: None,
        scratch: None,
        saved: None,
        acks: crate::persist::PendingAcks::default(),
    })
}

/// The client id to use: the one sent, or a generated one for an empty id with a clean
/// session (MQTT-3.1.3-6); `None` when it must be refused (MQTT-3.1.3-8, or our id rules).
fn client_id(shared: &Shared, connect: &Connect) -> Option<ByteStr> {
    if connect.client_id.is_empty() {
        if !connect.clean_session {
            return None;
        }
        let suffix = getrandom::u64().ok()?;
        return ByteStr::try_from(format!("mqgate-{suffix:016x}")).ok();
    }
    shared
        .client_id_rules
        .check(&connect.client_id)
        .ok()
        // A copy: the id lives as long as the session, the CONNECT packet need not.
        .map(|_| connect.client_id.detached())
}
