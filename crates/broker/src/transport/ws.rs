//! MQTT over WebSocket: the handshake (path and the `mqtt` subprotocol) and a byte-stream
//! adapter, so the same connection task serves TCP, TLS, WS and WSS.
//!
//! MQTT packets may be split across WebSocket frames or share one, so the adapter is a plain
//! byte stream: binary frames in, one binary frame per write out.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The subprotocol MQTT clients ask for (MQTT 3.1.1 section 6); `mqttv3.1` is accepted for
/// MQTT 3.1 clients.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Performs the WebSocket handshake: the request path must be `path`, and if the client
/// offers subprotocols, one of them must be MQTT's (it is echoed back).
///
/// # Errors
/// The handshake failed or was refused (wrong path: 404; no MQTT subprotocol: 400).
pub(crate) async fn accept<S>(stream: S, path: &str) -> io::Result<WsByteStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The callback's signature is tungstenite's; its large error type is not ours to box.
    #[allow(clippy::result_large_err)]
    let check = |request: &Request, mut response: Response| {
        if request.uri().path() != path {
            return Err(refusal(StatusCode::NOT_FOUND));
        }
        let offered = request
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        if offered.is_empty() {
            return Ok(response);
        }
        let Some(chosen) = offered.iter().find(|p| SUBPROTOCOLS.contains(p)) else {
            return Err(refusal(StatusCode::BAD_REQUEST));
        };
        if let Ok(value) = HeaderValue::from_str(chosen) {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
        Ok(response)
    };
    let ws = tokio_tungstenite::accept_hdr_async(stream, check)
        .await
        .map_err(io::Error::other)?;
    Ok(WsByteStream {
        ws,
        leftover: Bytes::new(),
    })
}

fn refusal(status: StatusCode) -> ErrorResponse {
    let mut response = ErrorResponse::new(None);
    *response.status_mut() = status;
    response
}

/// A WebSocket connection as an [`AsyncRead`] + [`AsyncWrite`] byte stream.
#[derive(Debug)]
pub(crate) struct WsByteStream<S> {
    ws: WebSocketStream<S>,
    /// The rest of a binary frame larger than the caller's read buffer.
    leftover: Bytes,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsByteStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.leftover.is_empty() {
                let n = self.leftover.len().min(buf.remaining());
                buf.put_slice(&self.leftover[..n]);
                self.leftover.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.leftover = data,
                // Pings are answered by tungstenite itself; pongs and raw frames carry no MQTT.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text frame on an MQTT WebSocket",
                    )))
                }
                // A close frame or the end of the stream: end of file.
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsByteStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut ws = Pin::new(&mut self.ws);
        ready!(ws.as_mut().poll_ready(cx)).map_err(io::Error::other)?;
        ws.start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(io::Error::other)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws)
            .poll_close(cx)
            .map_err(io::Error::other)
    }
}
