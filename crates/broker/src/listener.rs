//! Listeners: bind, accept without sleeping, bound the number of connections with a
//! semaphore (refusing past it), and hand each stream to its own task.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::connection::Online;
use crate::handshake::{handshake, serve};
use crate::shared::Shared;
use crate::{ws, BrokerError};

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
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenerKind::Tcp => "tcp",
            ListenerKind::Tls => "tls",
            ListenerKind::Ws => "ws",
            ListenerKind::Wss => "wss",
            ListenerKind::Http => "http",
        })
    }
}

/// A bound listener, not yet accepting.
pub(crate) struct Bound {
    pub(crate) kind: ListenerKind,
    pub(crate) listener: TcpListener,
    pub(crate) tls: Option<TlsAcceptor>,
}

/// Binds every configured listener (TLS and WSS only when certificates are configured).
pub(crate) async fn bind_all(shared: &Shared) -> Result<Vec<Bound>, BrokerError> {
    let listeners = &shared.config.listeners;
    let tls = listeners
        .tls
        .as_ref()
        .map(crate::tls::acceptor)
        .transpose()?;
    let mut wanted = vec![
        (ListenerKind::Tcp, listeners.tcp),
        (ListenerKind::Ws, listeners.ws),
    ];
    if tls.is_some() {
        wanted.push((ListenerKind::Tls, listeners.tls_addr));
        wanted.push((ListenerKind::Wss, listeners.wss_addr));
    }
    let mut bound = Vec::new();
    for (kind, addr) in wanted {
        let Some(addr) = addr else { continue };
        let listener = listen(addr, listeners.backlog).map_err(|e| {
            BrokerError::Io(std::io::Error::new(
                e.kind(),
                format!("{kind} listener on {addr}: {e}"),
            ))
        })?;
        let tls = matches!(kind, ListenerKind::Tls | ListenerKind::Wss)
            .then(|| tls.clone())
            .flatten();
        bound.push(Bound {
            kind,
            listener,
            tls,
        });
    }
    Ok(bound)
}

/// A listening socket on `addr` with room for `backlog` connections not yet accepted
/// (`TcpListener::bind` asks for 128), and, on Unix, `SO_REUSEADDR` as `bind` sets it, so a
/// restarted broker can listen while its old connections are in TIME_WAIT.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog.max(1))
}

/// Accepts until shutdown. Each connection holds a permit of `connections` for its life.
pub(crate) async fn accept_loop(bound: Bound, shared: Arc<Shared>, connections: Arc<Semaphore>) {
    let mut shutdown = shared.shutdown.clone();
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
        shared
            .metrics
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; connection refused");
            shared
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(Box::new(Accepted {
            kind: bound.kind,
            tls: bound.tls.clone(),
            stream,
            peer,
            shared: shared.clone(),
            permit,
        })));
    }
}

/// An accepted socket and what serving it needs.
pub(crate) struct Accepted {
    pub(crate) kind: ListenerKind,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) shared: Arc<Shared>,
    /// Held for the connection's life: it counts against `limits.max_connections`.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// Serves one accepted socket. Plain TCP, the common case, is served inline; the other
/// transports' handshakes and streams are boxed, because a task's allocation is as large as
/// the largest state of its future: inline, a TLS session would make every TCP connection's
/// task as big as a TLS one's (14 KiB instead of about 1 KiB). The socket comes boxed and
/// goes into a boxed handshake whole, so the task's future keeps no moved-out copies of
/// its parts while the connection runs: only the connection itself and the permit.
#[allow(clippy::manual_async_fn)] // an async fn would keep its arguments in the future
pub(crate) fn connection(accepted: Box<Accepted>) -> impl std::future::Future<Output = ()> + Send {
    async move {
        if accepted.kind != ListenerKind::Tcp {
            Box::pin(other_transport(accepted)).await;
            return;
        }
        let Some((online, permit)) = Box::pin(tcp_handshake(accepted)).await else {
            return;
        };
        online.run().await;
        drop(permit);
    }
}

/// The CONNECT handshake of a plain TCP connection; the permit comes back with it.
async fn tcp_handshake(
    accepted: Box<Accepted>,
) -> Option<(Online<TcpStream>, OwnedSemaphorePermit)> {
    let Accepted {
        stream,
        peer,
        shared,
        permit,
        ..
    } = *accepted;
    handshake(stream, peer, shared)
        .await
        .map(|online| (online, permit))
}

/// TLS, WebSocket and WSS: the transport's handshake, then the connection.
async fn other_transport(accepted: Box<Accepted>) {
    let Accepted {
        kind,
        tls,
        stream,
        peer,
        shared,
        permit,
    } = *accepted;
    if let Err(error) = wrapped(kind, tls, stream, peer, shared).await {
        tracing::info!(%peer, %kind, %error, "transport handshake failed");
    }
    drop(permit);
}

type HandshakeError = Box<dyn std::error::Error + Send + Sync>;

/// The WebSocket, TLS and WSS transports: handshake within the CONNECT timeout, then serve.
async fn wrapped(
    kind: ListenerKind,
    tls: Option<TlsAcceptor>,
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Result<(), HandshakeError> {
    let limit = shared.config.limits.connect_timeout;
    let path = shared.config.listeners.ws_path.clone();
    match (kind, tls) {
        (ListenerKind::Tcp, _) => serve(stream, peer, shared).await,
        (ListenerKind::Ws, _) => {
            let ws = tokio::time::timeout(limit, ws::accept(stream, &path)).await??;
            serve(ws, peer, shared).await;
        }
        (ListenerKind::Tls, Some(tls)) => {
            let tls = tokio::time::timeout(limit, tls.accept(stream)).await??;
            serve(tls, peer, shared).await;
        }
        (ListenerKind::Wss, Some(tls)) => {
            let ws = tokio::time::timeout(limit, async {
                ws::accept(tls.accept(stream).await?, &path).await
            })
            .await??;
            serve(ws, peer, shared).await;
        }
        (ListenerKind::Http, _) => return Err("the HTTP API is not an MQTT listener".into()),
        (_, None) => return Err("TLS listener without certificates".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection's task is allocated at the size of its whole future: a TCP
    /// connection's must not carry the TLS and WebSocket states, nor the handshake's or the
    /// close's (they are boxed). The figure is bytes of the future itself, not a timing.
    #[tokio::test]
    async fn a_tcp_connection_task_stays_small() {
        let (_tx, shutdown) = tokio::sync::watch::channel(false);
        let shared = Arc::new(
            Shared::new(
                crate::BrokerConfig::ephemeral(),
                crate::auth::Access::only(Box::new(crate::AllowAnonymous)),
                Arc::new(mqgate_store::MemoryStore::new()),
                shutdown,
            )
            .expect("the store writer starts"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let stream = TcpStream::connect(addr).await.expect("connect");
        let permit = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a permit");
        let task = connection(Box::new(Accepted {
            kind: ListenerKind::Tcp,
            tls: None,
            stream,
            peer: addr,
            shared,
            permit,
        }));
        let size = std::mem::size_of_val(&task);
        // Release builds measure 640 bytes, debug builds 648: with tokio's task header and
        // trailer (112 bytes) that is a 768-byte task, the allocation being rounded to a
        // multiple of 128. Past 656 bytes every idle connection costs 128 bytes more.
        assert!(size <= 656, "connection future is {size} bytes");
    }

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
}
