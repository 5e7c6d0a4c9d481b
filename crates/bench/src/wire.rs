//! The MQTT client side of the generator, on `mqgate-codec`: connect, subscribe, and the
//! payload stamp that carries a message's sequence number and send time. MQTT 3.1.1 or 5,
//! as [`Hello`] says ([`crate::protocol`] holds what differs).

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use mqgate_codec::{ByteStr, Decoder, PacketId, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::protocol::{code_name, FromBroker, Hello, MqttVersion};
use crate::BenchError;

/// Largest packet the generator accepts from a broker (1 KiB payloads plus headers fit with
/// a wide margin).
pub const MAX_PACKET: usize = 1024 * 1024;

/// The decoder every generator connection uses.
pub const DECODER: Decoder = Decoder::new(MAX_PACKET);

/// Bytes at the front of every payload: sequence number and send time, both big-endian u64.
pub const STAMP_LEN: usize = 16;

/// A payload of `len` bytes (at least [`STAMP_LEN`]) starting with `sequence` and `sent_ns`.
///
/// ```
/// use mqgate_bench::{read_stamp, stamp_payload};
/// let p = stamp_payload(7, 123_456, 64);
/// assert_eq!(p.len(), 64);
/// assert_eq!(read_stamp(&p), Some((7, 123_456)));
/// ```
pub fn stamp_payload(sequence: u64, sent_ns: u64, len: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(len.max(STAMP_LEN));
    buf.put_u64(sequence);
    buf.put_u64(sent_ns);
    buf.resize(len.max(STAMP_LEN), 0x5a);
    buf.freeze()
}

/// The `(sequence, sent_ns)` stamp of a payload, or `None` if it is too short to be ours.
pub fn read_stamp(payload: &[u8]) -> Option<(u64, u64)> {
    let mut head = payload.get(..STAMP_LEN)?;
    Some((head.get_u64(), head.get_u64()))
}

/// Opens a TCP connection from `source` (if given) to `target`, with Nagle off.
pub async fn open_tcp(
    target: SocketAddr,
    source: Option<SocketAddr>,
) -> Result<TcpStream, BenchError> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        socket.bind(source)?;
    }
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A connection after an accepting CONNACK.
#[derive(Debug)]
pub struct Connected {
    /// Bytes that arrived after the CONNACK: they belong to the caller.
    pub rx: BytesMut,
    /// QoS 1 and 2 PUBLISHes the broker lets this client have unacknowledged at once: its
    /// MQTT 5 Receive Maximum, 65 535 when absent or on 3.1.1 (which has no such limit).
    pub receive_maximum: u16,
}

/// Sends the CONNECT of `hello` (keep-alive 120 s) and waits for an accepting CONNACK.
pub async fn handshake(
    stream: &mut TcpStream,
    client_id: &str,
    hello: &Hello,
) -> Result<Connected, BenchError> {
    let id = ByteStr::try_from(client_id)
        .map_err(|_| BenchError::Handshake(format!("bad client id {client_id:?}")))?;
    let mut out = BytesMut::new();
    hello.encode_connect(id, &mut out)?;
    stream.write_all(&out).await?;
    let mut rx = BytesMut::with_capacity(256);
    match read_packet(stream, &mut rx, hello.version).await? {
        FromBroker::ConnAck {
            accepted: true,
            receive_maximum,
            ..
        } => Ok(Connected {
            rx,
            receive_maximum: receive_maximum.unwrap_or(u16::MAX),
        }),
        FromBroker::ConnAck { code, .. } => Err(BenchError::Handshake(format!(
            "CONNACK {} for {client_id}",
            code_name(hello.version, code)
        ))),
        other => Err(BenchError::Handshake(format!(
            "{other:?} instead of CONNACK"
        ))),
    }
}

/// Subscribes to `filters` in SUBSCRIBEs of at most 100 filters and waits for every SUBACK;
/// a refused filter is an error (its messages would all count as lost).
pub async fn subscribe(
    stream: &mut TcpStream,
    rx: &mut BytesMut,
    filters: &[String],
    qos: QoS,
    version: MqttVersion,
) -> Result<(), BenchError> {
    for (chunk_index, chunk) in filters.chunks(100).enumerate() {
        let packet_id = packet_id_for(chunk_index as u64);
        let filters = chunk
            .iter()
            .map(|f| {
                ByteStr::try_from(f.as_str())
                    .map_err(|_| BenchError::InvalidPlan("filter is not an MQTT string"))
            })
            .collect::<Result<Vec<_>, BenchError>>()?;
        let mut out = BytesMut::new();
        version.encode_subscribe(packet_id, filters, qos, &mut out)?;
        stream.write_all(&out).await?;
        loop {
            match read_packet(stream, rx, version).await? {
                FromBroker::SubAck {
                    packet_id: id,
                    refused,
                } if id == packet_id => {
                    if refused {
                        return Err(BenchError::Handshake(format!(
                            "SUBACK refused a filter of {chunk:?}"
                        )));
                    }
                    break;
                }
                // Retained messages or stray traffic before the SUBACK are not ours to count.
                _ => continue,
            }
        }
    }
    Ok(())
}

/// Reads until one whole packet is decoded.
pub async fn read_packet(
    stream: &mut TcpStream,
    rx: &mut BytesMut,
    version: MqttVersion,
) -> Result<FromBroker, BenchError> {
    loop {
        if let Some(packet) = version.decode(rx)? {
            return Ok(packet);
        }
        if stream.read_buf(rx).await? == 0 {
            return Err(BenchError::Handshake(
                "connection closed by the broker".into(),
            ));
        }
    }
}

/// Packet id for the `n`-th message of a connection: 1 ..= 65535, cycling.
pub fn packet_id_for(n: u64) -> PacketId {
    let id = u16::try_from(n % 65_535 + 1).unwrap_or(1);
    PacketId::new(id).unwrap_or(PacketId::MIN)
}

/// Sends DISCONNECT and closes; errors are ignored because the run is over either way.
pub async fn disconnect(mut stream: TcpStream) {
    let _ = stream.write_all(&[0xe0, 0x00]).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packet_ids_cycle_without_zero() {
        assert_eq!(packet_id_for(0).get(), 1);
        assert_eq!(packet_id_for(65_534).get(), 65_535);
        assert_eq!(packet_id_for(65_535).get(), 1);
    }

    proptest! {
        #[test]
        fn stamps_round_trip(seq: u64, ns: u64, len in 0usize..2048) {
            let p = stamp_payload(seq, ns, len);
            prop_assert_eq!(p.len(), len.max(STAMP_LEN));
            prop_assert_eq!(read_stamp(&p), Some((seq, ns)));
            prop_assert_eq!(read_stamp(&p[..STAMP_LEN - 1]), None);
        }
    }
}
