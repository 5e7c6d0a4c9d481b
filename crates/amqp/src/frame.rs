//! Frames: the protocol header, then method, content header, body and heartbeat frames,
//! each `type:u8 channel:u16 size:u32 payload 0xCE`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::method::Method;
use crate::props::{BasicProperties, ContentHeader};
use crate::{DecodeError, EncodeError};

/// The eight bytes a client sends first: `AMQP`, 0, 0, 9, 1.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";
/// The octet that ends every frame.
pub const FRAME_END: u8 = 0xCE;
/// The frame size every peer accepts before tuning, and the least `frame_max` may be.
pub const FRAME_MIN_SIZE: u32 = 4096;
/// A frame's bytes besides its payload: the 7-byte header and the end octet.
pub const FRAME_OVERHEAD: u32 = 8;

const TYPE_METHOD: u8 = 1;
const TYPE_HEADER: u8 = 2;
const TYPE_BODY: u8 = 3;
const TYPE_HEARTBEAT: u8 = 8;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A method on a channel (0 = the connection).
    Method {
        /// The channel.
        channel: u16,
        /// The method.
        method: Method,
    },
    /// A content header, after a method that carries content.
    Header {
        /// The channel.
        channel: u16,
        /// Body size and properties.
        header: ContentHeader,
    },
    /// A piece of a body: a slice of the receive buffer, not a copy.
    Body {
        /// The channel.
        channel: u16,
        /// The bytes.
        payload: Bytes,
    },
    /// A heartbeat (always channel 0, no payload).
    Heartbeat,
}

impl Frame {
    /// The frame's channel.
    pub fn channel(&self) -> u16 {
        match self {
            Self::Method { channel, .. }
            | Self::Header { channel, .. }
            | Self::Body { channel, .. } => *channel,
            Self::Heartbeat => 0,
        }
    }

    /// Writes the whole frame.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Self::Method { channel, method } => put_method_frame(out, *channel, method),
            Self::Header { channel, header } => {
                put_header_frame(out, *channel, header.body_size, &header.properties)
            }
            Self::Body { channel, payload } => {
                write_body_head(out, *channel, payload.len())?;
                out.put_slice(payload);
                out.put_u8(FRAME_END);
                Ok(())
            }
            Self::Heartbeat => {
                out.put_slice(&[TYPE_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
                Ok(())
            }
        }
    }
}

/// Writes a whole method frame.
pub(crate) fn put_method_frame(
    out: &mut BytesMut,
    channel: u16,
    method: &Method,
) -> Result<(), EncodeError> {
    write_frame(out, TYPE_METHOD, channel, |o| method.encode(o))
}

/// Writes a whole content header frame.
pub(crate) fn put_header_frame(
    out: &mut BytesMut,
    channel: u16,
    body_size: u64,
    properties: &BasicProperties,
) -> Result<(), EncodeError> {
    write_frame(out, TYPE_HEADER, channel, |o| {
        ContentHeader::encode_parts(body_size, properties, o)
    })
}

/// Writes a frame's 7-byte header, `f`'s payload, patches the size in, and ends the frame.
fn write_frame(
    out: &mut BytesMut,
    kind: u8,
    channel: u16,
    f: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_u8(kind);
    out.put_u16(channel);
    out.put_u32(0);
    f(out)?;
    let n = out.len() - start - 7;
    let n32 = u32::try_from(n).map_err(|_| EncodeError::TooLong(n))?;
    out[start + 3..start + 7].copy_from_slice(&n32.to_be_bytes());
    out.put_u8(FRAME_END);
    Ok(())
}

/// Writes the 7-byte header of a body frame whose payload (of `len` bytes) the caller
/// writes or sends next, followed by [`FRAME_END`].
pub fn write_body_head(out: &mut BytesMut, channel: u16, len: usize) -> Result<(), EncodeError> {
    let n = u32::try_from(len).map_err(|_| EncodeError::TooLong(len))?;
    out.put_u8(TYPE_BODY);
    out.put_u16(channel);
    out.put_u32(n);
    Ok(())
}

/// Splits frames off a receive buffer.
///
/// A frame larger than `frame_max` is refused as soon as its header is seen, before its
/// payload is buffered. An incomplete frame leaves the buffer untouched (`Ok(None)`: read
/// more). A complete one is split off and frozen, so body payloads and long strings are
/// slices of it.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    frame_max: u32,
}

impl FrameDecoder {
    /// A decoder for frames of at most `frame_max` bytes (overhead included; at least
    /// [`FRAME_MIN_SIZE`], and 0 means [`FRAME_MIN_SIZE`]).
    pub fn new(frame_max: u32) -> Self {
        Self {
            frame_max: frame_max.max(FRAME_MIN_SIZE),
        }
    }

    /// The frame size limit in force.
    pub fn frame_max(&self) -> u32 {
        self.frame_max
    }

    /// Checks for the protocol header at the start of `buf` and consumes it: `Ok(None)` until
    /// eight bytes are there. Bytes that cannot start the header fail at once.
    pub fn decode_protocol_header(buf: &mut BytesMut) -> Result<Option<()>, DecodeError> {
        let n = buf.len().min(PROTOCOL_HEADER.len());
        if buf.get(..n) != PROTOCOL_HEADER.get(..n) {
            return Err(DecodeError::BadProtocolHeader);
        }
        if n < PROTOCOL_HEADER.len() {
            return Ok(None);
        }
        buf.advance(PROTOCOL_HEADER.len());
        Ok(Some(()))
    }

    /// Decodes the next frame from `buf`.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let Some(head) = buf.get(..7) else {
            return Ok(None);
        };
        let kind = head[0];
        let channel = u16::from_be_bytes([head[1], head[2]]);
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        if !matches!(kind, TYPE_METHOD | TYPE_HEADER | TYPE_BODY | TYPE_HEARTBEAT) {
            return Err(DecodeError::UnknownFrameType(kind));
        }
        let total = u64::from(size) + u64::from(FRAME_OVERHEAD);
        if total > u64::from(self.frame_max) {
            return Err(DecodeError::FrameTooLarge {
                size: total,
                max: self.frame_max,
            });
        }
        // Bounded by frame_max (a u32) above, so it fits a usize on every target we build for.
        let total = usize::try_from(total).map_err(|_| DecodeError::FrameTooLarge {
            size: total,
            max: self.frame_max,
        })?;
        let Some(&end) = buf.get(total - 1) else {
            buf.reserve(total - buf.len());
            return Ok(None);
        };
        if end != FRAME_END {
            return Err(DecodeError::BadFrameEnd(end));
        }
        let mut frame = buf.split_to(total).freeze();
        frame.advance(7);
        frame.truncate(total - 8);
        let payload = frame;
        Ok(Some(match kind {
            TYPE_METHOD => Frame::Method {
                channel,
                method: Method::decode(&payload)?,
            },
            TYPE_HEADER => Frame::Header {
                channel,
                header: ContentHeader::decode(&payload)?,
            },
            TYPE_BODY => Frame::Body { channel, payload },
            _ => {
                if channel != 0 || !payload.is_empty() {
                    return Err(DecodeError::BadHeartbeat);
                }
                Frame::Heartbeat
            }
        }))
    }
}
