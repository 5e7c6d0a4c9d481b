//! Encoding: compute the exact length first, reserve once, then write.

use bytes::{BufMut, Bytes, BytesMut};

use crate::decode::{ConnectFlags, MAX_REMAINING_LENGTH};
use crate::packet::*;
use crate::properties::{put_var_int as put_var_len, var_int_len as var_len_size};
use crate::{ByteStr, EncodeError};

pub(crate) fn str_len(len: usize) -> Result<usize, EncodeError> {
    if len > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong(len));
    }
    Ok(2 + len)
}

// Callers have checked every length with `str_len` before writing.
pub(crate) fn put_str(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s);
}

impl Publish {
    fn check(&self) -> Result<(), EncodeError> {
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, None) | (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(_)) => Ok(()),
            _ => Err(EncodeError::PacketIdMismatch),
        }
    }

    /// Writes the fixed header, topic and packet id, everything but the payload.
    ///
    /// A driver can write this header and then the payload `Bytes` itself in one vectored
    /// write, so a large payload is never copied into the send buffer.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use mqgate_codec::{ByteStr, Packet, Publish};
    /// let p = Publish::at_most_once(ByteStr::from_static("t"), Bytes::from_static(b"xyz"));
    /// let mut head = BytesMut::new();
    /// p.encode_header(&mut head).unwrap();
    /// head.extend_from_slice(p.payload());
    /// let mut whole = BytesMut::new();
    /// Packet::Publish(p).encode(&mut whole).unwrap();
    /// assert_eq!(head, whole);
    /// ```
    pub fn encode_header(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.header_to::<false>(buf)
    }

    /// [`Publish::encode_header`] of the MQTT 5 form that [`Publish::encode_v5`] writes.
    ///
    /// # Errors
    /// As [`Publish::encode_v5`].
    pub fn encode_header_v5(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.header_to::<true>(buf)
    }

    /// Writes this PUBLISH in its MQTT 5 form with no properties (a property length of 0
    /// after the packet id): what [`v5::Packet::encode`](crate::v5::Packet::encode) writes for
    /// the same PUBLISH without properties, without building that packet first. A broker
    /// forwarding a message that carries nothing of its own to an MQTT 5 client writes it
    /// this way.
    ///
    /// # Errors
    /// A packet id that does not fit the QoS, an empty topic (MQTT 5 needs a Topic Alias
    /// then), a topic over 65 535 bytes, or a packet over the largest remaining length.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use mqgate_codec::{v5, ByteStr, Publish, QoS};
    /// let p = Publish::new(QoS::AtLeastOnce, 7.try_into().ok(), ByteStr::from_static("a/b"), Bytes::from_static(b"hi"));
    /// let mut direct = BytesMut::new();
    /// p.encode_v5(&mut direct)?;
    /// assert_eq!(p.encoded_len_v5()?, direct.len());
    /// let mut built = BytesMut::new();
    /// v5::Packet::Publish(v5::Publish::new(QoS::AtLeastOnce, 7.try_into().ok(), ByteStr::from_static("a/b"), Bytes::from_static(b"hi"))).encode(&mut built)?;
    /// assert_eq!(direct, built);
    /// # Ok::<(), mqgate_codec::EncodeError>(())
    /// ```
    #[inline]
    pub fn encode_v5(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_as::<true>(buf)
    }

    /// The exact number of bytes [`Publish::encode_v5`] writes.
    ///
    /// # Errors
    /// As [`Publish::encode_v5`].
    #[inline]
    pub fn encoded_len_v5(&self) -> Result<usize, EncodeError> {
        let (topic, payload) = self.wire_parts();
        let remaining = self.remaining_len::<true>(topic, payload)?;
        Ok(1 + var_len_size(remaining) + remaining)
    }

    fn header_to<const V5: bool>(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let (topic, payload) = self.wire_parts();
        let remaining = self.remaining_len::<V5>(topic, payload)?;
        buf.reserve(1 + var_len_size(remaining) + remaining - payload.len());
        self.put_header::<V5>(buf, topic, remaining);
        Ok(())
    }

    /// The whole PUBLISH (the hot path of every delivery): the exact length reserved once,
    /// the header written with fixed-size stores, topic and payload copied once each.
    /// `V5`: the MQTT 5 form, with an empty property block.
    #[inline]
    fn encode_as<const V5: bool>(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let (topic, payload) = self.wire_parts();
        let remaining = self.remaining_len::<V5>(topic, payload)?;
        buf.reserve(1 + var_len_size(remaining) + remaining);
        self.put_header::<V5>(buf, topic, remaining);
        buf.extend_from_slice(payload);
        Ok(())
    }

    /// The remaining length, checked against the packet id rule and the largest length
    /// the fixed header can express (and, for MQTT 5, against an empty topic).
    #[inline]
    fn remaining_len<const V5: bool>(
        &self,
        topic: &[u8],
        payload: &[u8],
    ) -> Result<usize, EncodeError> {
        self.check()?;
        if V5 && topic.is_empty() {
            return Err(EncodeError::EmptyTopicWithoutAlias);
        }
        let id_len = if self.packet_id.is_some() { 2 } else { 0 };
        let remaining = str_len(topic.len())? + id_len + usize::from(V5) + payload.len();
        if remaining > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge(remaining));
        }
        Ok(remaining)
    }

    /// Callers have checked `remaining` and the topic's length (`remaining_len`).
    #[inline]
    fn put_header<const V5: bool>(&self, buf: &mut BytesMut, topic: &[u8], remaining: usize) {
        let flags = (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain);
        match u8::try_from(remaining) {
            // A packet under 130 bytes: the first byte, the one-byte length and the topic's
            // length in one 4-byte store.
            Ok(len) if len < 0x80 => {
                let [hi, lo] = (topic.len() as u16).to_be_bytes();
                buf.put_u32(u32::from_be_bytes([0x30 | flags, len, hi, lo]));
            }
            _ => {
                buf.put_u8(0x30 | flags);
                put_var_len(buf, remaining);
                buf.put_u16(topic.len() as u16);
            }
        }
        buf.put_slice(topic);
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        if V5 {
            // The property length: no properties.
            buf.put_u8(0);
        }
    }
}

impl Connect {
    /// The fields after the client id: will topic and payload, user name, password.
    fn tail(&self) -> [Option<&[u8]>; 4] {
        connect_tail(
            self.will.as_ref().map(|w| (&w.topic, &w.payload)),
            self.username.as_ref(),
            self.password.as_ref(),
        )
    }

    fn remaining_len(&self) -> Result<usize, EncodeError> {
        Ok(str_len(self.protocol.name().len())?
            + 1
            + 1
            + 2
            + str_len(self.client_id.len())?
            + fields_len(&self.tail())?)
    }

    fn put_body(&self, buf: &mut BytesMut) {
        put_str(buf, self.protocol.name().as_bytes());
        buf.put_u8(self.protocol.level());
        let flags = ConnectFlags {
            clean: self.clean_session,
            will: self.will.as_ref().map(|w| (w.qos, w.retain)),
            username: self.username.is_some(),
            password: self.password.is_some(),
        };
        buf.put_u8(flags.to_u8());
        buf.put_u16(self.keep_alive);
        put_str(buf, self.client_id.as_bytes());
        put_fields(buf, &self.tail());
    }
}

/// CONNECT's last fields, each present or not: will topic, will payload, user name, password.
pub(crate) fn connect_tail<'a>(
    will: Option<(&'a ByteStr, &'a Bytes)>,
    username: Option<&'a ByteStr>,
    password: Option<&'a Bytes>,
) -> [Option<&'a [u8]>; 4] {
    [
        will.map(|(t, _)| t.as_bytes().as_ref()),
        will.map(|(_, p)| p.as_ref()),
        username.map(|u| u.as_bytes().as_ref()),
        password.map(|p| p.as_ref()),
    ]
}

/// The length of the present `fields`, each with its two-byte length.
pub(crate) fn fields_len(fields: &[Option<&[u8]>]) -> Result<usize, EncodeError> {
    fields
        .iter()
        .flatten()
        .try_fold(0, |acc, f| Ok(acc + str_len(f.len())?))
}

/// Writes the present `fields`, each with its two-byte length (checked by [`fields_len`]).
pub(crate) fn put_fields(buf: &mut BytesMut, fields: &[Option<&[u8]>]) {
    for f in fields.iter().flatten() {
        put_str(buf, f);
    }
}

impl Packet {
    /// The remaining length (everything after the fixed header) of this packet.
    fn remaining_len(&self) -> Result<usize, EncodeError> {
        Ok(match self {
            Packet::Connect(c) => c.remaining_len()?,
            Packet::ConnAck(_) => 2,
            Packet::Publish(p) => {
                let (topic, payload) = p.wire_parts();
                p.remaining_len::<false>(topic, payload)?
            }
            Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => 2,
            Packet::UnsubAck(_) => 2,
            Packet::Subscribe(s) => {
                if s.filters.is_empty() {
                    return Err(EncodeError::EmptyList);
                }
                s.filters
                    .iter()
                    .try_fold(2, |acc, f| Ok(acc + str_len(f.filter.len())? + 1))?
            }
            Packet::SubAck(s) => {
                if s.return_codes.is_empty() {
                    return Err(EncodeError::EmptyList);
                }
                2 + s.return_codes.len()
            }
            Packet::Unsubscribe(u) => {
                if u.filters.is_empty() {
                    return Err(EncodeError::EmptyList);
                }
                u.filters
                    .iter()
                    .try_fold(2, |acc, f| Ok(acc + str_len(f.len())?))?
            }
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => 0,
        })
    }

    /// The exact number of bytes [`Packet::encode`] writes.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len()?;
        if remaining > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge(remaining));
        }
        Ok(1 + var_len_size(remaining) + remaining)
    }

    /// Appends the packet's wire form to `buf`, reserving the exact length once.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use mqgate_codec::{Decoder, Packet};
    /// let mut buf = BytesMut::new();
    /// Packet::PubAck(7.try_into().unwrap()).encode(&mut buf).unwrap();
    /// assert_eq!(&buf[..], &[0x40, 0x02, 0x00, 0x07]);
    /// assert_eq!(Decoder::new(16).decode(&mut buf).unwrap(), Some(Packet::PubAck(7.try_into().unwrap())));
    /// ```
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        // The frequent packets first, each a few fixed-size stores: a PUBACK is one 4-byte
        // store, not a length computation and a `memcpy` of 4 bytes.
        match self {
            Packet::Publish(p) => return p.encode_as::<false>(buf),
            Packet::PubAck(id) => put_ack(buf, 0x40, *id),
            Packet::PubRec(id) => put_ack(buf, 0x50, *id),
            Packet::PubRel(id) => put_ack(buf, 0x62, *id),
            Packet::PubComp(id) => put_ack(buf, 0x70, *id),
            Packet::UnsubAck(id) => put_ack(buf, 0xb0, *id),
            Packet::ConnAck(c) => buf.put_u32(u32::from_be_bytes([
                0x20,
                2,
                u8::from(c.session_present),
                c.code as u8,
            ])),
            Packet::PingReq => buf.put_u16(0xc000),
            Packet::PingResp => buf.put_u16(0xd000),
            Packet::Disconnect => buf.put_u16(0xe000),
            Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::SubAck(_)
            | Packet::Unsubscribe(_) => return self.encode_lists(buf),
        }
        Ok(())
    }

    /// CONNECT, SUBSCRIBE, SUBACK and UNSUBSCRIBE: the length computed over their fields.
    fn encode_lists(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let remaining = self.remaining_len()?;
        if remaining > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge(remaining));
        }
        buf.reserve(1 + var_len_size(remaining) + remaining);
        match self {
            Packet::Connect(c) => {
                buf.put_u8(0x10);
                put_var_len(buf, remaining);
                c.put_body(buf);
            }
            Packet::Subscribe(s) => {
                buf.put_u8(0x82);
                put_var_len(buf, remaining);
                buf.put_u16(s.packet_id.get());
                for f in &s.filters {
                    put_str(buf, f.filter.as_bytes());
                    buf.put_u8(f.qos as u8);
                }
            }
            Packet::SubAck(s) => {
                buf.put_u8(0x90);
                put_var_len(buf, remaining);
                buf.put_u16(s.packet_id.get());
                for rc in &s.return_codes {
                    buf.put_u8(match rc {
                        SubscribeReturnCode::Success(q) => *q as u8,
                        SubscribeReturnCode::Failure => 0x80,
                    });
                }
            }
            Packet::Unsubscribe(u) => {
                buf.put_u8(0xa2);
                put_var_len(buf, remaining);
                buf.put_u16(u.packet_id.get());
                for f in &u.filters {
                    put_str(buf, f.as_bytes());
                }
            }
            // Written by `encode` itself.
            _ => return self.encode(buf),
        }
        Ok(())
    }
}

/// A two-byte-body packet (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK) in one 4-byte store.
#[inline(always)]
pub(crate) fn put_ack(buf: &mut BytesMut, byte1: u8, id: PacketId) {
    let [hi, lo] = id.get().to_be_bytes();
    buf.put_u32(u32::from_be_bytes([byte1, 2, hi, lo]));
}
