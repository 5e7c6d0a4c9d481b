//! Listeners: bind, accept without sleeping, bound the number of connections with a
//! semaphore (refusing past it), and hand each stream to its own task.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::handshake::serve;
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
        let listener = TcpListener::bind(addr).await.map_err(|e| {
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
        tokio::spawn(connection(
            bound.kind,
            bound.tls.clone(),
            stream,
            peer,
            shared.clone(),
            permit,
        ));
    }
}

/// Runs the transport handshakes (bounded by the CONNECT timeout), then the MQTT connection.
async fn connection(
    kind: ListenerKind,
    tls: Option<TlsAcceptor>,
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
) {
    let limit = shared.config.limits.connect_timeout;
    let path = shared.config.listeners.ws_path.clone();
    type HandshakeError = Box<dyn std::error::Error + Send + Sync>;
    let handshake = async {
        match (kind, tls) {
            (ListenerKind::Tcp, _) => {
                serve(stream, peer, shared.clone()).await;
                Ok(())
            }
            (ListenerKind::Ws, _) => {
                let ws = tokio::time::timeout(limit, ws::accept(stream, &path)).await??;
                serve(ws, peer, shared.clone()).await;
                Ok(())
            }
            (ListenerKind::Tls, Some(tls)) => {
                let tls = tokio::time::timeout(limit, tls.accept(stream)).await??;
                serve(tls, peer, shared.clone()).await;
                Ok(())
            }
            (ListenerKind::Wss, Some(tls)) => {
                let ws = tokio::time::timeout(limit, async {
                    ws::accept(tls.accept(stream).await?, &path).await
                })
                .await??;
                serve(ws, peer, shared.clone()).await;
                Ok(())
            }
            (ListenerKind::Http, _) => Err("the HTTP API is not an MQTT listener".into()),
            (_, None) => Err::<(), HandshakeError>("TLS listener without certificates".into()),
        }
    };
    if let Err(error) = handshake.await {
        tracing::info!(%peer, %kind, %error, "transport handshake failed");
    }
}
