//! Streaming decode: check the fixed header, wait for the whole packet, then parse it out of
//! a frozen slice of the receive buffer (check-then-parse, as mini-redis does).

use bytes::{Buf, Bytes, BytesMut};

use crate::packet::*;
use crate::string::TopicFrame;
use crate::{ByteStr, DecodeError};

/// The largest remaining length the four-byte variable length can express.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// A streaming MQTT 3.1.1 decoder with a maximum packet size; [`Decoder::decode_v5`] is its
/// MQTT 5 counterpart, and [`crate::ConnectionDecoder`] picks between them per connection.
///
/// Feed it the connection's receive buffer after every read; it consumes exactly one
/// complete packet per successful call and leaves partial packets alone.
///
/// ```
/// use bytes::BytesMut;
/// use mqgate_codec::{Decoder, Packet};
///
/// let decoder = Decoder::new(1024);
/// let mut buf = BytesMut::from(&[0xc0, 0x00, 0xd0][..]); // PINGREQ, then half a PINGRESP
/// assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Packet::PingReq));
/// assert_eq!(decoder.decode(&mut buf).unwrap(), None); // waits for more bytes
/// assert_eq!(buf.len(), 1);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    max_packet_size: usize,
}

/// A parsed fixed header: the first byte, and how long the whole frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The first byte: packet type in the high nibble, flags in the low one.
    pub byte1: u8,
    /// Length of the fixed header itself (2 to 5 bytes).
    pub header_len: usize,
    /// The remaining length: variable header plus payload.
    pub remaining_len: usize,
}

impl FixedHeader {
    /// The whole packet's length in bytes.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Reads a fixed header from the start of `buf`; `Ok(None)` when more bytes are needed.
pub fn read_fixed_header(buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    let mut remaining_len = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining_len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // A last byte of 0 after a continuation is a non-minimal encoding: refused, so that
            // every accepted packet re-encodes to exactly the bytes it came from.
            if i > 0 && b == 0 {
                return Err(DecodeError::MalformedRemainingLength);
            }
            return Ok(Some(FixedHeader {
                byte1,
                header_len: 2 + i,
                remaining_len,
            }));
        }
    }
    Err(DecodeError::MalformedRemainingLength)
}

impl Decoder {
    /// A decoder refusing packets larger than `max_packet_size` bytes (fixed header included).
    pub const fn new(max_packet_size: usize) -> Self {
        Decoder { max_packet_size }
    }

    /// The configured maximum packet size.
    pub const fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Decodes one packet from the front of `buf`.
    ///
    /// Returns `Ok(None)` while the packet is incomplete (reserving room for the rest once the
    /// size is known), `Ok(Some(packet))` after consuming exactly that packet, and an error for
    /// a malformed or oversized one. A packet larger than the maximum is refused as soon as its
    /// fixed header arrives, before its body is buffered. After an error the buffer's state is
    /// unspecified: the connection is to be closed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(header) = read_fixed_header(buf)? else {
            return Ok(None);
        };
        let frame_len = header.frame_len();
        if frame_len > self.max_packet_size {
            return Err(DecodeError::PacketTooLarge {
                size: frame_len,
                max: self.max_packet_size,
            });
        }
        if buf.len() < frame_len {
            buf.reserve(frame_len - buf.len());
            return Ok(None);
        }
        match header.byte1 >> 4 {
            // PUBLISH is most of the traffic: decoded straight into the result, without the
            // general path's intermediate `Result<Packet>`.
            3 => {
                let mut frame = buf.split_to(frame_len).freeze();
                frame.advance(header.header_len);
                decode_publish(header.byte1 & 0x0f, frame).map(|p| Some(Packet::Publish(p)))
            }
            // Packets holding strings share the buffer, so they are split off it.
            1 | 8 | 10 => {
                let mut frame = buf.split_to(frame_len).freeze();
                frame.advance(header.header_len);
                decode_body(header.byte1, frame).map(Some)
            }
            // Acks, pings and the rest hold no bytes of the buffer: parsed in place and then
            // skipped, without the two reference-count operations of a split and its drop.
            _ => {
                let body = buf
                    .get(header.header_len..frame_len)
                    .ok_or(DecodeError::UnexpectedEnd)?;
                let packet = decode_fixed(header.byte1, body)?;
                buf.advance(frame_len);
                Ok(Some(packet))
            }
        }
    }
}

/// Decodes one packet from its first byte and its body (everything after the fixed header).
///
/// Useful where frames arrive already delimited (for example one per WebSocket message
/// boundary is NOT guaranteed, so prefer [`Decoder`] there too).
pub fn decode_body(byte1: u8, mut body: Bytes) -> Result<Packet, DecodeError> {
    let packet_type = byte1 >> 4;
    let flags = byte1 & 0x0f;
    let packet = match packet_type {
        1 => {
            expect_flags(byte1, 0)?;
            Packet::Connect(Box::new(decode_connect(&mut body)?))
        }
        3 => return decode_publish(flags, body).map(Packet::Publish),
        8 => {
            expect_flags(byte1, 0b0010)?;
            let packet_id = take_packet_id(&mut body)?;
            let filters = take_filters(&mut body, |filter, body| {
                let q = take_u8(body)?;
                let qos = QoS::from_u8(q).ok_or(DecodeError::InvalidRequestedQos(q))?;
                Ok(SubscribeFilter { filter, qos })
            })?;
            Packet::Subscribe(Subscribe { packet_id, filters })
        }
        10 => {
            expect_flags(byte1, 0b0010)?;
            let packet_id = take_packet_id(&mut body)?;
            let filters = take_filters(&mut body, |filter, _| Ok(filter))?;
            Packet::Unsubscribe(Unsubscribe { packet_id, filters })
        }
        _ => return decode_fixed(byte1, &body),
    };
    if body.has_remaining() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(packet)
}

/// The filters of a SUBSCRIBE or UNSUBSCRIBE: at least one (MQTT-3.8.3-3, MQTT-3.10.3-2),
/// none empty, each with what `each` reads after it.
pub(crate) fn take_filters<T>(
    body: &mut Bytes,
    mut each: impl FnMut(ByteStr, &mut Bytes) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut filters = Vec::new();
    while body.has_remaining() {
        let filter = take_str(body)?;
        if filter.is_empty() {
            return Err(DecodeError::EmptyTopicFilter);
        }
        filters.push(each(filter, body)?);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    Ok(filters)
}

/// The flags of `byte1` must be `want` (MQTT-2.2.2-2).
pub(crate) fn expect_flags(byte1: u8, want: u8) -> Result<(), DecodeError> {
    let flags = byte1 & 0x0f;
    if flags == want {
        Ok(())
    } else {
        Err(DecodeError::InvalidFlags {
            packet_type: byte1 >> 4,
            flags,
        })
    }
}

/// The packets whose decoded form holds no bytes of the frame (acks, pings, CONNACK,
/// SUBACK, DISCONNECT, reserved types), parsed from a borrowed body.
fn decode_fixed(byte1: u8, mut body: &[u8]) -> Result<Packet, DecodeError> {
    let packet = match byte1 >> 4 {
        2 => {
            expect_flags(byte1, 0)?;
            let ack_flags = take_u8(&mut body)?;
            if ack_flags & 0xfe != 0 {
                return Err(DecodeError::InvalidConnAckFlags(ack_flags));
            }
            let rc = take_u8(&mut body)?;
            let code =
                ConnectReturnCode::from_u8(rc).ok_or(DecodeError::InvalidConnectReturnCode(rc))?;
            Packet::ConnAck(ConnAck {
                session_present: ack_flags & 1 == 1,
                code,
            })
        }
        4 => {
            expect_flags(byte1, 0)?;
            Packet::PubAck(take_packet_id(&mut body)?)
        }
        5 => {
            expect_flags(byte1, 0)?;
            Packet::PubRec(take_packet_id(&mut body)?)
        }
        6 => {
            expect_flags(byte1, 0b0010)?;
            Packet::PubRel(take_packet_id(&mut body)?)
        }
        7 => {
            expect_flags(byte1, 0)?;
            Packet::PubComp(take_packet_id(&mut body)?)
        }
        9 => {
            expect_flags(byte1, 0)?;
            let packet_id = take_packet_id(&mut body)?;
            let return_codes = body
                .iter()
                .map(|&b| match b {
                    0x80 => Ok(SubscribeReturnCode::Failure),
                    _ => QoS::from_u8(b)
                        .map(SubscribeReturnCode::Success)
                        .ok_or(DecodeError::InvalidSubAckReturnCode(b)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if return_codes.is_empty() {
                return Err(DecodeError::UnexpectedEnd);
            }
            return Ok(Packet::SubAck(SubAck {
                packet_id,
                return_codes,
            }));
        }
        11 => {
            expect_flags(byte1, 0)?;
            Packet::UnsubAck(take_packet_id(&mut body)?)
        }
        12 => {
            expect_flags(byte1, 0)?;
            Packet::PingReq
        }
        13 => {
            expect_flags(byte1, 0)?;
            Packet::PingResp
        }
        14 => {
            expect_flags(byte1, 0)?;
            Packet::Disconnect
        }
        // 1, 3, 8 and 10 hold bytes of the frame and never come here; were one to, it is
        // refused rather than misread.
        t => return Err(DecodeError::ReservedPacketType(t)),
    };
    if body.has_remaining() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(packet)
}

/// A PUBLISH body (everything after the fixed header) into a [`Publish`] that keeps it as
/// one frame: the topic is checked in place, nothing is split off.
#[inline(always)]
fn decode_publish(flags: u8, mut body: Bytes) -> Result<Publish, DecodeError> {
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQos)?;
    let topic_len = take_u16(&mut body)?;
    let frame = TopicFrame::check(body, topic_len)?;
    let whole = frame.frame();
    let mut rest = whole
        .get(usize::from(topic_len)..)
        .ok_or(DecodeError::UnexpectedEnd)?;
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce | QoS::ExactlyOnce => Some(take_packet_id(&mut rest)?),
    };
    // The frame is at most 268 435 460 bytes (`MAX_REMAINING_LENGTH` and a header).
    let payload_at =
        u32::try_from(whole.len() - rest.len()).map_err(|_| DecodeError::UnexpectedEnd)?;
    Ok(Publish::from_frame(
        flags, qos, packet_id, frame, payload_at,
    ))
}

fn decode_connect(body: &mut Bytes) -> Result<Connect, DecodeError> {
    let name = take_bytes(body)?;
    let level = take_u8(body)?;
    let protocol = match (&name[..], level) {
        (b"MQTT", 4) => Protocol::V311,
        (b"MQIsdp", 3) => Protocol::V31,
        (b"MQTT", l) | (b"MQIsdp", l) => return Err(DecodeError::UnsupportedProtocolLevel(l)),
        _ => return Err(DecodeError::InvalidProtocolName),
    };
    let flags = ConnectFlags::read(take_u8(body)?)?;
    if flags.password && !flags.username {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = take_u16(body)?;
    let client_id = take_str(body)?;
    let will = match flags.will {
        Some((qos, retain)) => Some(LastWill {
            topic: take_topic_name(body)?,
            payload: take_bytes(body)?,
            qos,
            retain,
        }),
        None => None,
    };
    let (username, password) = flags.take_login(body)?;
    Ok(Connect {
        protocol,
        clean_session: flags.clean,
        keep_alive,
        client_id,
        will,
        username,
        password,
    })
}

/// CONNECT's flags byte, the same in MQTT 3.1.1 and 5 (MQTT-3.1.2-3, -11, -13, -14).
pub(crate) struct ConnectFlags {
    /// Clean Session (3.1.1) or Clean Start (5).
    pub(crate) clean: bool,
    /// The will's QoS and RETAIN flag, when the will flag is set.
    pub(crate) will: Option<(QoS, bool)>,
    /// User name flag.
    pub(crate) username: bool,
    /// Password flag.
    pub(crate) password: bool,
}

impl ConnectFlags {
    /// Checks the reserved bit and the will bits.
    pub(crate) fn read(cf: u8) -> Result<Self, DecodeError> {
        let will_flag = cf & 0b0000_0100 != 0;
        let will_qos_bits = (cf >> 3) & 0b11;
        let will_retain = cf & 0b0010_0000 != 0;
        if cf & 1 != 0 || (!will_flag && (will_qos_bits != 0 || will_retain)) {
            return Err(DecodeError::InvalidConnectFlags(cf));
        }
        let will_qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::InvalidConnectFlags(cf))?;
        Ok(ConnectFlags {
            clean: cf & 0b10 != 0,
            will: will_flag.then_some((will_qos, will_retain)),
            username: cf & 0b1000_0000 != 0,
            password: cf & 0b0100_0000 != 0,
        })
    }

    /// The flags byte for these values.
    pub(crate) fn to_u8(&self) -> u8 {
        let mut flags = u8::from(self.clean) << 1;
        if let Some((qos, retain)) = self.will {
            flags |= 0b100 | ((qos as u8) << 3) | (u8::from(retain) << 5);
        }
        flags | (u8::from(self.password) << 6) | (u8::from(self.username) << 7)
    }

    /// The user name and password at the end of CONNECT, as the flags announce them.
    pub(crate) fn take_login(
        &self,
        body: &mut Bytes,
    ) -> Result<(Option<ByteStr>, Option<Bytes>), DecodeError> {
        let username = if self.username {
            Some(take_str(body)?)
        } else {
            None
        };
        let password = if self.password {
            Some(take_bytes(body)?)
        } else {
            None
        };
        Ok((username, password))
    }
}

pub(crate) fn take_u8(b: &mut impl Buf) -> Result<u8, DecodeError> {
    if b.remaining() < 1 {
        return Err(DecodeError::UnexpectedEnd);
    }
    Ok(b.get_u8())
}

pub(crate) fn take_u16(b: &mut impl Buf) -> Result<u16, DecodeError> {
    if b.remaining() < 2 {
        return Err(DecodeError::UnexpectedEnd);
    }
    Ok(b.get_u16())
}

pub(crate) fn take_packet_id(b: &mut impl Buf) -> Result<PacketId, DecodeError> {
    PacketId::new(take_u16(b)?).ok_or(DecodeError::ZeroPacketId)
}

/// A two-byte length followed by that many bytes, sliced out without copying.
pub(crate) fn take_bytes(b: &mut Bytes) -> Result<Bytes, DecodeError> {
    let len = usize::from(take_u16(b)?);
    if b.remaining() < len {
        return Err(DecodeError::UnexpectedEnd);
    }
    Ok(b.split_to(len))
}

/// A topic name (MQTT-4.7.3-1, MQTT-3.3.2-2, MQTT-1.5.3), sliced out without copying.
pub(crate) fn take_topic_name(b: &mut Bytes) -> Result<ByteStr, DecodeError> {
    ByteStr::topic_name(take_bytes(b)?)
}

pub(crate) fn take_str(b: &mut Bytes) -> Result<ByteStr, DecodeError> {
    ByteStr::try_from(take_bytes(b)?)
}
