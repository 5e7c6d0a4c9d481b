//! [`Bounded`]: the HTTP listener with a cap on open connections. Past the cap it stops
//! accepting (connections wait in the kernel's backlog) until one closes, so a flood of
//! clients cannot take unbounded memory. A connection with neither a byte read nor written
//! for the idle timeout is closed, so idle or slow clients cannot hold the places forever.
//! With a TLS acceptor, each handshake runs in its own task (bounded by the idle timeout),
//! so a slow one never holds up the others.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A TLS handshake's outcome: the stream, its peer and its place under the cap.
type Handshaken = Option<(TlsStream<TcpStream>, SocketAddr, OwnedSemaphorePermit)>;

pub(crate) struct Bounded {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    idle: Duration,
    tls: Option<TlsAcceptor>,
    handshakes: JoinSet<Handshaken>,
}

impl Bounded {
    /// Plain HTTP, or HTTPS with `tls`.
    pub(crate) fn new(
        listener: TcpListener,
        max_connections: usize,
        idle: Duration,
        tls: Option<TlsAcceptor>,
    ) -> Self {
        let max = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Bounded {
            listener,
            permits: Arc::new(Semaphore::new(max)),
            idle,
            tls,
            handshakes: JoinSet::new(),
        }
    }

    fn permitted(&self, stream: HttpStream, permit: OwnedSemaphorePermit) -> Permitted {
        Permitted {
            stream,
            _permit: permit,
            idle: self.idle,
            deadline: Box::pin(tokio::time::sleep(self.idle)),
        }
    }
}

impl axum::serve::Listener for Bounded {
    type Io = Permitted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // A place under the cap, then a connection; meanwhile a TLS handshake that
            // finishes is handed out at once (its task holds its own place).
            let (permits, listener) = (self.permits.clone(), &self.listener);
            let next = async move {
                // The semaphore is never closed, so acquiring only waits.
                let permit = permits.acquire_owned().await.ok();
                (permit, listener.accept().await)
            };
            tokio::select! {
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some((stream, peer, permit))) = done {
                        let io = self.permitted(HttpStream::Tls(Box::new(stream)), permit);
                        return (io, peer);
                    }
                }
                (Some(permit), accepted) = next => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        match &self.tls {
                            None => {
                                let io = self.permitted(HttpStream::Plain(stream), permit);
                                return (io, peer);
                            }
                            Some(acceptor) => {
                                let (acceptor, idle) = (acceptor.clone(), self.idle);
                                self.handshakes.spawn(async move {
                                    let handshake = acceptor.accept(stream);
                                    match tokio::time::timeout(idle, handshake).await {
                                        Ok(Ok(stream)) => Some((stream, peer, permit)),
                                        Ok(Err(error)) => {
                                            tracing::debug!(%peer, %error, "HTTPS handshake failed");
                                            None
                                        }
                                        Err(_) => None,
                                    }
                                });
                            }
                        }
                    }
                    // Out of file descriptors and the like: per connection; keep going.
                    Err(error) => {
                        tracing::warn!(%error, "HTTP accept failed");
                        tokio::task::yield_now().await;
                    }
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An accepted connection's bytes: plain or TLS.
pub(crate) enum HttpStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

macro_rules! both {
    ($self:expr, $s:ident => $body:expr) => {
        match $self.get_mut() {
            HttpStream::Plain($s) => {
                let $s = Pin::new($s);
                $body
            }
            HttpStream::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $body
            }
        }
    };
}

impl AsyncRead for HttpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        both!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for HttpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        both!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        both!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        both!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        both!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            HttpStream::Plain(s) => s.is_write_vectored(),
            HttpStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// An accepted connection holding its place under the cap until it is dropped.
pub(crate) struct Permitted {
    stream: HttpStream,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl Permitted {
    /// Pushes the deadline back after progress; when there is none, an expired deadline
    /// ends the connection.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                let idle = self.idle;
                self.deadline.set(tokio::time::sleep(idle));
                Poll::Ready(result)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "HTTP connection idle for too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.watch(cx, poll)
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
