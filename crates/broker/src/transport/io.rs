//! [`Io`]: a connection's byte stream, its buffers and the packet decoder.
//!
//! An idle connection owns no buffer. Reads of a packet's start go through a scratch array on
//! the polling thread's stack and only what arrived is copied into a buffer sized for it; a
//! large packet in progress (the decoder has reserved room for its body) is read straight into
//! its buffer. The receive buffer is released once every packet in it was decoded (decoded
//! packets keep their own references to the bytes), and the send buffer once it was written (the next flush reserves what the last one used),
//! so the memory an idle connection holds is its socket, its session and its task.

use std::future::poll_fn;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use mqgate_codec::{v5, AnyPacket, ConnectionDecoder, DecodeError, EncodeError, Packet};
use smallvec::SmallVec;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// Largest read through the stack scratch array.
const READ_CHUNK: usize = 16 * 1024;
/// Spare room in the receive buffer from which a read goes straight into it (a large packet's
/// body is arriving) instead of through the scratch array.
const DIRECT_READ: usize = 4 * 1024;
/// Most room reserved up front for a flush, from the size of the previous one.
const MAX_SEND_HINT: usize = 256 * 1024;
/// A PUBLISH payload from this size on is written from its own buffer (vectored) instead of
/// being copied into the send buffer; below it, the copy is cheaper than another slice.
const OWN_CHUNK: usize = 1024;
/// Most buffers handed to one vectored write (below every platform's IOV_MAX).
const MAX_IOV: usize = 512;

/// Why a stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// Writing took longer than the limit.
    #[error("writing to the client timed out")]
    WriteTimeout,
    /// The bytes received are not a packet (or a larger one than allowed).
    #[error("{0}")]
    Decode(DecodeError),
    /// An outbound packet could not be encoded.
    #[error("cannot encode an outbound packet: {0}")]
    Encode(EncodeError),
}

/// A packet a connection writes: MQTT 3.1.1 or MQTT 5.
pub(crate) trait Outbound {
    /// The payload's length when this is a PUBLISH.
    fn publish_payload_len(&self) -> Option<usize>;
    /// A PUBLISH's wire form but its payload (called only for a PUBLISH).
    fn encode_header(&self, buf: &mut BytesMut) -> Result<(), EncodeError>;
    /// A PUBLISH's payload (empty for any other packet).
    fn into_payload(self) -> Bytes;
    /// The whole wire form.
    fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError>;
}

impl Outbound for Packet {
    fn publish_payload_len(&self) -> Option<usize> {
        match self {
            Packet::Publish(p) => Some(p.payload().len()),
            _ => None,
        }
    }
    fn encode_header(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Packet::Publish(p) => p.encode_header(buf),
            other => other.encode(buf),
        }
    }
    fn into_payload(self) -> Bytes {
        match self {
            Packet::Publish(p) => p.into_payload(),
            _ => Bytes::new(),
        }
    }
    fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        Packet::encode(self, buf)
    }
}

impl Outbound for v5::Packet {
    fn publish_payload_len(&self) -> Option<usize> {
        match self {
            v5::Packet::Publish(p) => Some(p.payload.len()),
            _ => None,
        }
    }
    fn encode_header(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            v5::Packet::Publish(p) => p.encode_header(buf),
            other => other.encode(buf),
        }
    }
    fn into_payload(self) -> Bytes {
        match self {
            v5::Packet::Publish(p) => p.payload,
            _ => Bytes::new(),
        }
    }
    fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        v5::Packet::encode(self, buf)
    }
}

/// A byte stream with its buffers and the packet decoder.
pub(crate) struct Io<S> {
    pub(crate) stream: S,
    rx: BytesMut,
    tx: BytesMut,
    /// Output queued before what is in `tx`, when a shared frame or a large payload was
    /// queued: pieces of this connection's buffer and frames shared with other connections
    /// (a QoS 0 PUBLISH encoded once for every receiver), written with one vectored write, so
    /// a shared frame is never copied into this connection's buffer.
    out: Vec<Bytes>,
    /// The first encoding failure since the last write; the next write reports it.
    failed: Option<EncodeError>,
    /// The size of the last flush: the next one reserves that much at once instead of growing
    /// the buffer step by step.
    tx_hint: usize,
    /// The decoder: the first CONNECT decides between MQTT 3.1.1 and 5.
    decoder: ConnectionDecoder,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    pub(crate) fn new(stream: S, max_packet_size: usize) -> Self {
        Io {
            stream,
            rx: BytesMut::new(),
            tx: BytesMut::new(),
            out: Vec::new(),
            failed: None,
            tx_hint: 0,
            decoder: ConnectionDecoder::new(max_packet_size),
        }
    }

    /// The first packet of a connection, MQTT 3.1.1 or 5 by the protocol level of its
    /// CONNECT; `None` when the peer closed.
    pub(crate) async fn read_first(&mut self) -> Result<Option<AnyPacket>, StreamError> {
        loop {
            let packet = self
                .decoder
                .decode(&mut self.rx)
                .map_err(StreamError::Decode)?;
            if let Some(packet) = packet {
                self.release_rx_if_empty();
                return Ok(Some(packet));
            }
            if self.read_more().await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Reads what the socket has; `Ok(0)` when the peer closed. Cancel-safe: bytes are
    /// consumed from the stream only in the poll that returns them, and are appended before
    /// it returns.
    pub(crate) async fn read_more(&mut self) -> Result<usize, StreamError> {
        if self.rx.capacity() - self.rx.len() >= DIRECT_READ {
            return self
                .stream
                .read_buf(&mut self.rx)
                .await
                .map_err(StreamError::Io);
        }
        let (stream, rx) = (&mut self.stream, &mut self.rx);
        poll_fn(|cx| {
            let mut scratch = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut scratch);
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    rx.extend_from_slice(buf.filled());
                    Poll::Ready(Ok(buf.filled().len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(StreamError::Io(e))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// The next whole MQTT 3.1.1 packet in the receive buffer, if there is one.
    pub(crate) fn decode(&mut self) -> Result<Option<Packet>, StreamError> {
        let packet = self
            .decoder
            .decoder()
            .decode(&mut self.rx)
            .map_err(StreamError::Decode)?;
        self.release_rx_if_empty();
        Ok(packet)
    }

    /// The next whole MQTT 5 packet in the receive buffer, if there is one.
    #[inline]
    pub(crate) fn decode_v5(&mut self) -> Result<Option<v5::Packet>, StreamError> {
        let packet = self
            .decoder
            .decoder()
            .decode_v5(&mut self.rx)
            .map_err(StreamError::Decode)?;
        self.release_rx_if_empty();
        Ok(packet)
    }

    fn release_rx_if_empty(&mut self) {
        if self.rx.is_empty() {
            // Spare room, or (capacity 0) a reference to the buffer the last packet was split
            // from, which would keep that packet's bytes alive: an idle connection holds none.
            self.rx = BytesMut::new();
        }
    }

    /// Encodes `packets` (MQTT 3.1.1 or MQTT 5) after what is queued already.
    pub(crate) fn queue<P: Outbound>(&mut self, packets: impl IntoIterator<Item = P>) {
        for packet in packets {
            self.queue_one(packet);
        }
    }

    /// Encodes one packet after what is queued already. Inlined, so that a large packet
    /// value (an MQTT 5 PUBLISH) is encoded where its caller built it, not moved first.
    #[inline]
    pub(crate) fn queue_one<P: Outbound>(&mut self, packet: P) {
        if self.tx.capacity() == 0 {
            self.tx.reserve(self.tx_hint);
        }
        // A large payload is not copied: its header goes in the buffer, the payload itself
        // (shared with every other receiver) into the vectored write.
        if packet.publish_payload_len().is_some_and(|n| n >= OWN_CHUNK)
            && self.stream.is_write_vectored()
        {
            if let Err(error) = packet.encode_header(&mut self.tx) {
                self.failed.get_or_insert(error);
                return;
            }
            self.out.push(self.tx.split().freeze());
            self.out.push(packet.into_payload());
        } else if let Err(error) = packet.encode(&mut self.tx) {
            self.failed.get_or_insert(error);
        }
    }

    /// Queues a frame shared with other connections, after what is queued already. A small
    /// one is copied (cheaper than another slice for the kernel to walk); a large one goes
    /// into the vectored write as it is.
    pub(crate) fn queue_shared(&mut self, frame: Bytes) {
        if frame.len() < OWN_CHUNK || !self.stream.is_write_vectored() {
            if self.tx.capacity() == 0 {
                self.tx.reserve(self.tx_hint);
            }
            self.tx.extend_from_slice(&frame);
            return;
        }
        if !self.tx.is_empty() {
            self.out.push(self.tx.split().freeze());
        }
        self.out.push(frame);
    }

    /// Encodes `packets` after what is queued and writes everything in one go, within
    /// `limit`.
    pub(crate) async fn write_all<P: Outbound>(
        &mut self,
        packets: impl IntoIterator<Item = P>,
        limit: Duration,
    ) -> Result<(), StreamError> {
        self.queue(packets);
        self.send(limit).await
    }

    /// Writes everything queued in one go, within `limit`.
    pub(crate) async fn send(&mut self, limit: Duration) -> Result<(), StreamError> {
        if let Some(error) = self.failed.take() {
            return Err(StreamError::Encode(error));
        }
        if self.tx.is_empty() && self.out.is_empty() {
            return Ok(());
        }
        let written = self.tx.len() + self.out.iter().map(|c| c.len()).sum::<usize>();
        if !self.out.is_empty() && !self.tx.is_empty() {
            self.out.push(self.tx.split().freeze());
        }
        // Almost always the socket takes everything at once: that attempt needs no timer.
        // Only a write that has to wait gets one, boxed, so an idle connection's future does
        // not carry it.
        let first = poll_fn(|cx| Poll::Ready(self.poll_send(cx))).await;
        let result = match first {
            Poll::Ready(result) => result,
            Poll::Pending => {
                let rest = tokio::time::timeout(limit, poll_fn(|cx| self.poll_send(cx)));
                match Box::pin(rest).await {
                    Ok(result) => result,
                    Err(_) => return Err(StreamError::WriteTimeout),
                }
            }
        };
        result.map_err(StreamError::Io)?;
        self.tx_hint = written.min(MAX_SEND_HINT);
        self.tx = BytesMut::new();
        self.out = Vec::new();
        Ok(())
    }

    /// Writes what is queued, advancing past what the socket took, then flushes; resumable
    /// after `Pending`.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.out.is_empty() {
            while !self.tx.is_empty() {
                let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &self.tx))?;
                if n == 0 {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                self.tx.advance(n);
            }
            return Pin::new(&mut self.stream).poll_flush(cx);
        }
        while !self.out.is_empty() {
            let slices: SmallVec<[IoSlice<'_>; 64]> = self
                .out
                .iter()
                .take(MAX_IOV)
                .map(|c| IoSlice::new(c))
                .collect();
            let n = ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, &slices))?;
            drop(slices);
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.consume(n);
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// Drops the first `n` bytes of the queued chunks (they were written).
    fn consume(&mut self, mut n: usize) {
        let mut done = 0;
        for chunk in &mut self.out {
            let len = chunk.len();
            if n < len {
                // Partly written: keep the rest as a view of the same bytes.
                *chunk = chunk.slice(n..);
                break;
            }
            n -= len;
            done += 1;
        }
        self.out.drain(..done);
    }
}
