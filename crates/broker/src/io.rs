//! [`Io`]: a connection's byte stream, its buffers and the packet decoder.
//!
//! An idle connection owns no buffer. Reads of a packet's start go through a scratch array on
//! the polling thread's stack and only what arrived is copied into a buffer sized for it; a
//! large packet in progress (the decoder has reserved room for its body) is read straight into
//! its buffer. The receive buffer is released once every packet in it was decoded (decoded
//! packets keep their own references to the bytes), and the send buffer once it was written (the next flush reserves what the last one used),
//! so the memory an idle connection holds is its socket, its session and its task.

use std::future::poll_fn;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use mqgate_codec::{Decoder, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::close::CloseReason;

/// Largest read through the stack scratch array.
const READ_CHUNK: usize = 16 * 1024;
/// Spare room in the receive buffer from which a read goes straight into it (a large packet's
/// body is arriving) instead of through the scratch array.
const DIRECT_READ: usize = 4 * 1024;
/// Most room reserved up front for a flush, from the size of the previous one.
const MAX_SEND_HINT: usize = 256 * 1024;

/// A byte stream with its buffers and the packet decoder.
pub(crate) struct Io<S> {
    pub(crate) stream: S,
    rx: BytesMut,
    tx: BytesMut,
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

    /// Encodes `packets` into the send buffer and writes it in one go, within `limit`.
    pub(crate) async fn write_all(
        &mut self,
        packets: impl IntoIterator<Item = Packet>,
        limit: Duration,
    ) -> Result<(), CloseReason> {
        let mut packets = packets.into_iter().peekable();
        if packets.peek().is_none() {
            return Ok(());
        }
        self.tx.reserve(self.tx_hint);
        for packet in packets {
            packet.encode(&mut self.tx).map_err(CloseReason::Encode)?;
        }
        if self.tx.is_empty() {
            return Ok(());
        }
        let write = async {
            self.stream.write_all(&self.tx).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => {
                self.tx_hint = self.tx.len().min(MAX_SEND_HINT);
                self.tx = BytesMut::new();
                Ok(())
            }
            Ok(Err(e)) => Err(CloseReason::Io(e)),
            Err(_) => Err(CloseReason::WriteTimeout),
        }
    }
}
