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
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqgate_codec::{Decoder, EncodeError, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::close::CloseReason;

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

/// A piece of output: bytes encoded for this connection, or a frame shared with other
/// connections (a QoS 0 PUBLISH encoded once for every receiver).
enum Chunk {
    Own(Bytes),
    Shared(Arc<Bytes>),
}

impl Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Own(b) => b,
            Chunk::Shared(b) => b,
        }
    }
}

/// A byte stream with its buffers and the packet decoder.
pub(crate) struct Io<S> {
    pub(crate) stream: S,
    rx: BytesMut,
    tx: BytesMut,
    /// Output queued before what is in `tx`, when a shared frame was queued: written with one
    /// vectored write, so a shared frame is never copied into this connection's buffer.
    out: Vec<Chunk>,
    /// The first encoding failure since the last write; the next write reports it.
    failed: Option<EncodeError>,
    /// The size of the last flush: the next one reserves that much at once instead of growing
    /// the buffer step by step.
    tx_hint: usize,
    decoder: Decoder,
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
            decoder: Decoder::new(max_packet_size),
        }
    }

    /// The next whole packet; `None` when the peer closed.
    pub(crate) async fn read_packet(&mut self) -> Result<Option<Packet>, CloseReason> {
        loop {
            if let Some(packet) = self.decode()? {
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
    pub(crate) async fn read_more(&mut self) -> Result<usize, CloseReason> {
        if self.rx.capacity() - self.rx.len() >= DIRECT_READ {
            return self
                .stream
                .read_buf(&mut self.rx)
                .await
                .map_err(CloseReason::Io);
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
                Poll::Ready(Err(e)) => Poll::Ready(Err(CloseReason::Io(e))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// The next whole packet in the receive buffer, if there is one.
    pub(crate) fn decode(&mut self) -> Result<Option<Packet>, CloseReason> {
        let packet = self
            .decoder
            .decode(&mut self.rx)
            .map_err(CloseReason::from)?;
        if self.rx.is_empty() && self.rx.capacity() > 0 {
            self.rx = BytesMut::new();
        }
        Ok(packet)
    }

    /// Encodes `packets` after what is queued already.
    pub(crate) fn queue(&mut self, packets: impl IntoIterator<Item = Packet>) {
        let mut packets = packets.into_iter().peekable();
        if packets.peek().is_none() {
            return;
        }
        if self.tx.capacity() == 0 {
            self.tx.reserve(self.tx_hint);
        }
        let vectored = self.stream.is_write_vectored();
        for packet in packets {
            match packet {
                // A large payload is not copied: its header goes in the buffer, the payload
                // itself (shared with every other receiver) into the vectored write.
                Packet::Publish(publish) if vectored && publish.payload().len() >= OWN_CHUNK => {
                    if let Err(error) = publish.encode_header(&mut self.tx) {
                        self.failed.get_or_insert(error);
                        continue;
                    }
                    self.out.push(Chunk::Own(self.tx.split().freeze()));
                    self.out.push(Chunk::Own(publish.into_payload()));
                }
                packet => {
                    if let Err(error) = packet.encode(&mut self.tx) {
                        self.failed.get_or_insert(error);
                    }
                }
            }
        }
    }

    /// Queues a frame shared with other connections, after what is queued already.
    pub(crate) fn queue_shared(&mut self, frame: Arc<Bytes>) {
        if !self.tx.is_empty() {
            self.out.push(Chunk::Own(self.tx.split().freeze()));
        }
        self.out.push(Chunk::Shared(frame));
    }

    /// Encodes `packets` after what is queued and writes everything in one go, within
    /// `limit`.
    pub(crate) async fn write_all(
        &mut self,
        packets: impl IntoIterator<Item = Packet>,
        limit: Duration,
    ) -> Result<(), CloseReason> {
        self.queue(packets);
        if let Some(error) = self.failed.take() {
            return Err(CloseReason::Encode(error));
        }
        if self.tx.is_empty() && self.out.is_empty() {
            return Ok(());
        }
        let written = self.tx.len() + self.out.iter().map(|c| c.len()).sum::<usize>();
        let write = async {
            if self.out.is_empty() {
                self.stream.write_all(&self.tx).await?;
            } else {
                if !self.tx.is_empty() {
                    self.out.push(Chunk::Own(self.tx.split().freeze()));
                }
                write_chunks(&mut self.stream, &self.out).await?;
            }
            self.stream.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => {
                self.tx_hint = written.min(MAX_SEND_HINT);
                self.tx = BytesMut::new();
                self.out.clear();
                Ok(())
            }
            Ok(Err(e)) => Err(CloseReason::Io(e)),
            Err(_) => Err(CloseReason::WriteTimeout),
        }
    }
}

/// Writes every chunk, in order: with vectored writes where the stream has them (TCP), else
/// gathered into one buffer first (TLS and WebSocket streams copy into their own framing
/// anyway).
async fn write_chunks<S: AsyncWrite + Unpin>(
    stream: &mut S,
    chunks: &[Chunk],
) -> std::io::Result<()> {
    if !stream.is_write_vectored() {
        let mut all = BytesMut::with_capacity(chunks.iter().map(|c| c.len()).sum());
        for chunk in chunks {
            all.extend_from_slice(chunk);
        }
        return stream.write_all(&all).await;
    }
    let (mut index, mut offset) = (0, 0);
    while let Some(first) = chunks.get(index) {
        let slices: Vec<IoSlice<'_>> = std::iter::once(first.get(offset..).unwrap_or_default())
            .chain(chunks.iter().skip(index + 1).map(|c| &c[..]))
            .take(MAX_IOV)
            .map(IoSlice::new)
            .collect();
        let mut n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while let Some(chunk) = chunks.get(index) {
            let left = chunk.len() - offset;
            if n < left {
                offset += n;
                break;
            }
            n -= left;
            index += 1;
            offset = 0;
        }
    }
    Ok(())
}
