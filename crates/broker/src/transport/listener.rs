//! Listeners: bind, accept without sleeping, bound the number of connections with a
//! semaphore (refusing past it), and hand each stream to its own task.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::{Either, FutureExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::ws;
use crate::config::ListenerConfig;
use crate::connection::Serve;
use crate::BrokerError;

/// The transport a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// MQTT over plain TCP.
    Tcp,
    /// MQTT over TLS.
    Tls,
    /// MQTT over WebSocket.
    Ws,
    /// MQTT over WebSocket over TLS.
    Wss,
    /// The HTTP API (OpenAPI actions, `/metrics`, `/healthz`).
    Http,
    /// The cloud SDK endpoint (AMQP 0-9-1).
    Amqp,
    /// The cloud SDK endpoint over TLS.
    Amqps,
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenerKind::Tcp => "tcp",
            ListenerKind::Tls => "tls",
            ListenerKind::Ws => "ws",
            ListenerKind::Wss => "wss",
            ListenerKind::Http => "http",
            ListenerKind::Amqp => "amqp",
            ListenerKind::Amqps => "amqps",
        })
    }
}

/// A bound listener, not yet accepting.
pub(crate) struct Bound {
    pub(crate) kind: ListenerKind,
    pub(crate) listener: TcpListener,
    pub(crate) tls: Option<TlsAcceptor>,
    /// The path WebSocket clients must ask for.
    pub(crate) ws_path: Arc<str>,
}

/// Binds every configured listener (TLS and WSS only when certificates are configured).
pub(crate) fn bind_all(listeners: &ListenerConfig) -> Result<Vec<Bound>, BrokerError> {
    let tls = acceptor(listeners)?;
    let mut wanted = vec![
        (ListenerKind::Tcp, listeners.tcp, None),
        (ListenerKind::Ws, listeners.ws, None),
    ];
    if tls.is_some() {
        wanted.push((ListenerKind::Tls, listeners.tls_addr, tls.clone()));
        wanted.push((ListenerKind::Wss, listeners.wss_addr, tls));
    }
    bind_each(listeners, wanted)
}

/// Binds the cloud SDK endpoint's listeners: plain AMQP, and AMQPS when certificates are
/// configured.
pub(crate) fn bind_amqp(listeners: &ListenerConfig) -> Result<Vec<Bound>, BrokerError> {
    let tls = acceptor(listeners)?;
    let mut wanted = vec![(ListenerKind::Amqp, listeners.amqp, None)];
    if tls.is_some() {
        wanted.push((ListenerKind::Amqps, listeners.amqps_addr, tls));
    }
    bind_each(listeners, wanted)
}

/// The TLS acceptor of the configured certificates, if any.
fn acceptor(listeners: &ListenerConfig) -> Result<Option<TlsAcceptor>, BrokerError> {
    listeners.tls.as_ref().map(super::tls::acceptor).transpose()
}

/// Binds each wanted listener that has an address.
fn bind_each(
    listeners: &ListenerConfig,
    wanted: Vec<(ListenerKind, Option<SocketAddr>, Option<TlsAcceptor>)>,
) -> Result<Vec<Bound>, BrokerError> {
    let ws_path: Arc<str> = Arc::from(listeners.ws_path.as_str());
    let mut bound = Vec::new();
    for (kind, addr, tls) in wanted {
        let Some(addr) = addr else { continue };
        let listener = listen(addr, listeners.backlog).map_err(|e| {
            BrokerError::Io(std::io::Error::new(
                e.kind(),
                format!("{kind} listener on {addr}: {e}"),
            ))
        })?;
        bound.push(Bound {
            kind,
            listener,
            tls,
            ws_path: ws_path.clone(),
        });
    }
    Ok(bound)
}

/// A listening socket on `addr` with room for `backlog` connections not yet accepted
/// (`TcpListener::bind` asks for 128), and, on Unix, `SO_REUSEADDR` as `bind` sets it, so a
/// restarted broker can listen while its old connections are in TIME_WAIT.
///
/// On Linux the socket also has `TCP_NODELAY`, which every connection it accepts inherits:
/// one system call fewer per connect than setting it on each ([`NODELAY_INHERITED`]).
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    if NODELAY_INHERITED {
        socket.set_nodelay(true)?;
    }
    socket.bind(addr)?;
    socket.listen(backlog.max(1))
}

/// Whether an accepted socket has the listening socket's `TCP_NODELAY` (Linux copies it);
/// elsewhere each accepted socket gets it set on its own.
const NODELAY_INHERITED: bool = cfg!(target_os = "linux");

/// Accepts until shutdown. Each connection holds a permit of `connections` for its life.
pub(crate) async fn accept_loop<C: Serve>(bound: Bound, ctx: Arc<C>, connections: Arc<Semaphore>) {
    let mut shutdown = ctx.shutdown();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = bound.listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: the error is per connection; keep going.
                tracing::warn!(kind = %bound.kind, %error, "accept failed");
                tokio::task::yield_now().await;
                continue;
            }
        };
        ctx.metrics()
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; connection refused");
            ctx.metrics()
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if !NODELAY_INHERITED {
            let _ = stream.set_nodelay(true);
        }
        tokio::spawn(connection(Box::new(Accepted {
            kind: bound.kind,
            tls: bound.tls.clone(),
            ws_path: bound.ws_path.clone(),
            stream,
            peer,
            ctx: ctx.clone(),
            permit,
        })));
    }
}

/// An accepted socket and what serving it needs.
pub(crate) struct Accepted<C> {
    pub(crate) kind: ListenerKind,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) ws_path: Arc<str>,
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) ctx: Arc<C>,
    /// Held for the connection's life: it counts against `limits.max_connections`.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// Serves one accepted socket. Plain TCP, the common case, is served inline; the other
/// transports' handshakes and streams are boxed, because a task's allocation is as large as
/// the largest state of its future: inline, a TLS session would make every TCP connection's
/// task as big as a TLS one's, many times its own size. The socket comes boxed and
/// goes into a boxed handshake whole, so the task's future keeps no moved-out copies of
/// its parts while the connection runs: only the connection itself and the permit.
pub(crate) fn connection<C: Serve>(
    accepted: Box<Accepted<C>>,
) -> impl std::future::Future<Output = ()> + Send {
    // Chosen here, outside any future: the task's future keeps neither the accepted socket's
    // box nor anything else of it, only what serving it needs.
    if !matches!(accepted.kind, ListenerKind::Tcp | ListenerKind::Amqp) {
        return Either::Left(Box::pin(other_transport(accepted)));
    }
    let (serving, permit) = tcp(accepted);
    // A combinator, not an `async` block: a block would keep `serving` twice, as the value it
    // captured and as the future it awaits.
    Either::Right(serving.map(move |()| drop(permit)))
}

/// A plain TCP connection's service, and the permit it holds.
#[allow(clippy::boxed_local)] // the box is the task's argument; unboxing it here is the point
fn tcp<C: Serve>(
    accepted: Box<Accepted<C>>,
) -> (
    impl std::future::Future<Output = ()> + Send,
    OwnedSemaphorePermit,
) {
    let Accepted {
        stream,
        peer,
        ctx,
        permit,
        ..
    } = *accepted;
    (ctx.serve(stream, peer), permit)
}

/// TLS, WebSocket and WSS: the transport's handshake, then the connection.
async fn other_transport<C: Serve>(accepted: Box<Accepted<C>>) {
    let Accepted {
        kind,
        tls,
        ws_path,
        stream,
        peer,
        ctx,
        permit,
    } = *accepted;
    if let Err(error) = wrapped(kind, tls, &ws_path, stream, peer, ctx).await {
        tracing::info!(%peer, %kind, %error, "transport handshake failed");
    }
    drop(permit);
}

type HandshakeError = Box<dyn std::error::Error + Send + Sync>;

/// The WebSocket, TLS and WSS transports: handshake within the CONNECT timeout, then serve.
async fn wrapped<C: Serve>(
    kind: ListenerKind,
    tls: Option<TlsAcceptor>,
    path: &str,
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<C>,
) -> Result<(), HandshakeError> {
    let limit = ctx.connect_timeout();
    match (kind, tls) {
        (ListenerKind::Tcp | ListenerKind::Amqp, _) => ctx.serve(stream, peer).await,
        (ListenerKind::Ws, _) => {
            let ws = tokio::time::timeout(limit, ws::accept(stream, path)).await??;
            ctx.serve(ws, peer).await;
        }
        (ListenerKind::Tls | ListenerKind::Amqps, Some(tls)) => {
            let tls = tokio::time::timeout(limit, tls.accept(stream)).await??;
            ctx.serve(tls, peer).await;
        }
        (ListenerKind::Wss, Some(tls)) => {
            let ws = tokio::time::timeout(limit, async {
                ws::accept(tls.accept(stream).await?, path).await
            })
            .await??;
            ctx.serve(ws, peer).await;
        }
        (ListenerKind::Http, _) => return Err("the HTTP API is not an MQTT listener".into()),
        (_, None) => return Err("TLS listener without certificates".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nobody accepts here: the kernel completes as many handshakes as the backlog holds (one
    /// more, on Linux), then drops SYNs, which the client resends only after a second; an
    /// attempt that takes half of that counts as dropped.
    #[tokio::test]
    async fn a_listener_holds_as_many_waiting_connections_as_its_backlog() {
        async fn completed(listener: &TcpListener, attempts: usize) -> Vec<TcpStream> {
            let addr = listener.local_addr().expect("address");
            let mut held = Vec::new();
            for _ in 0..attempts {
                let connect = TcpStream::connect(addr);
                if let Ok(Ok(stream)) =
                    tokio::time::timeout(std::time::Duration::from_millis(500), connect).await
                {
                    held.push(stream);
                }
            }
            held
        }
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let small = listen(any_port, 2).expect("listen");
        let held = completed(&small, 6).await;
        assert!(
            (2..6).contains(&held.len()),
            "backlog 2: {} of 6 connected",
            held.len()
        );
        let large = listen(any_port, 64).expect("listen");
        assert_eq!(completed(&large, 20).await.len(), 20, "backlog 64");
    }

    /// The accept loop leaves `TCP_NODELAY` to the listening socket on Linux: an accepted
    /// socket must have it without being told.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn accepted_connections_inherit_nodelay() {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)), 8).expect("listen");
        let addr = listener.local_addr().expect("address");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        assert!(accepted.nodelay().expect("nodelay"));
        assert!(
            !client.nodelay().expect("nodelay"),
            "a fresh socket has no TCP_NODELAY"
        );
    }
}
