//! Choosing between MQTT 3.1.1 and MQTT 5 per connection: the protocol level of CONNECT
//! decides how every later packet of the connection is decoded.

use bytes::BytesMut;

use crate::decode::read_fixed_header;
use crate::{v5, DecodeError, Decoder, Packet};

/// The protocol family a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (level 4) or MQTT 3.1 (level 3): [`Packet`].
    V3,
    /// MQTT 5.0 (level 5): [`v5::Packet`].
    V5,
}

/// A packet of either protocol family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyPacket {
    /// An MQTT 3.1 or 3.1.1 packet.
    V3(Packet),
    /// An MQTT 5 packet.
    V5(v5::Packet),
}

impl Decoder {
    /// Decodes one MQTT 5 packet from the front of `buf`, with the contract of
    /// [`Decoder::decode`]: `Ok(None)` while incomplete, the maximum packet size enforced
    /// from the fixed header.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use mqgate_codec::v5::Packet;
    /// use mqgate_codec::{Decoder, ReasonCode};
    /// // DISCONNECT with reason 0x8E (session taken over), no properties.
    /// let mut buf = BytesMut::from(&[0xe0, 0x01, 0x8e][..]);
    /// match Decoder::new(64).decode_v5(&mut buf).unwrap() {
    ///     Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::SessionTakenOver),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    #[inline]
    pub fn decode_v5(&self, buf: &mut BytesMut) -> Result<Option<v5::Packet>, DecodeError> {
        let Some(header) = read_fixed_header(buf)? else {
            return Ok(None);
        };
        let frame_len = header.frame_len();
        if frame_len > self.max_packet_size() {
            return Err(DecodeError::PacketTooLarge {
                size: frame_len,
                max: self.max_packet_size(),
            });
        }
        if buf.len() < frame_len {
            buf.reserve(frame_len - buf.len());
            return Ok(None);
        }
        v5::decode_frame(header.byte1, header.header_len, frame_len, buf).map(Some)
    }
}

/// A decoder for one connection: it reads the first packet's protocol level (CONNECT at
/// level 5 means MQTT 5, anything else MQTT 3.1.1 rules) and decodes every later packet
/// as that protocol. The 3.1.1 path is [`Decoder::decode`] itself.
///
/// ```
/// use bytes::BytesMut;
/// use mqgate_codec::{AnyPacket, ConnectionDecoder, ProtocolVersion};
/// let mut conn = ConnectionDecoder::new(1024);
/// // CONNECT "MQTT" level 5, clean start, keep alive 30, no properties, client id "c",
/// // then a PINGREQ.
/// let mut rx = BytesMut::from(
///     &[0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 30, 0, 0, 1, b'c', 0xc0, 0][..],
/// );
/// assert!(matches!(conn.decode(&mut rx).unwrap(), Some(AnyPacket::V5(_))));
/// assert_eq!(conn.version(), Some(ProtocolVersion::V5));
/// assert!(matches!(conn.decode(&mut rx).unwrap(), Some(AnyPacket::V5(_))));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ConnectionDecoder {
    decoder: Decoder,
    version: Option<ProtocolVersion>,
}

impl ConnectionDecoder {
    /// A decoder for a new server-side connection: the protocol comes from its CONNECT.
    pub const fn new(max_packet_size: usize) -> Self {
        ConnectionDecoder {
            decoder: Decoder::new(max_packet_size),
            version: None,
        }
    }

    /// A decoder whose protocol is already known (a client's side, or a connection
    /// restored after its CONNECT was read).
    pub const fn with_version(max_packet_size: usize, version: ProtocolVersion) -> Self {
        ConnectionDecoder {
            decoder: Decoder::new(max_packet_size),
            version: Some(version),
        }
    }

    /// The protocol, once a CONNECT was decoded (or as given).
    pub const fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// The underlying decoder.
    pub const fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Decodes one packet from the front of `buf` as the connection's protocol; the first
    /// CONNECT decides it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<AnyPacket>, DecodeError> {
        match self.version {
            Some(ProtocolVersion::V3) => Ok(self.decoder.decode(buf)?.map(AnyPacket::V3)),
            Some(ProtocolVersion::V5) => Ok(self.decoder.decode_v5(buf)?.map(AnyPacket::V5)),
            None => {
                let Some(header) = read_fixed_header(buf)? else {
                    return Ok(None);
                };
                // CONNECT's variable header starts with the name "MQTT" and the level.
                let v5 = header.byte1 == 0x10
                    && buf.get(header.header_len..header.header_len + 7)
                        == Some(&[0, 4, b'M', b'Q', b'T', b'T', v5::PROTOCOL_LEVEL][..]);
                let (packet, version) = if v5 {
                    let p = self.decoder.decode_v5(buf)?;
                    (p.map(AnyPacket::V5), ProtocolVersion::V5)
                } else {
                    let p = self.decoder.decode(buf)?;
                    (p.map(AnyPacket::V3), ProtocolVersion::V3)
                };
                if matches!(
                    packet,
                    Some(AnyPacket::V3(Packet::Connect(_)) | AnyPacket::V5(v5::Packet::Connect(_)))
                ) {
                    self.version = Some(version);
                }
                Ok(packet)
            }
        }
    }
}
