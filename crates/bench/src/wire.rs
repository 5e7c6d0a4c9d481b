//! The MQTT client side of the generator, on `mqgate-codec`: connect, subscribe, and the
//! payload stamp that carries a message's sequence number and send time.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use mqgate_codec::{
    ByteStr, Connect, ConnectReturnCode, Decoder, Packet, PacketId, QoS, Subscribe, SubscribeFilter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

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

/// Sends CONNECT (clean session, keep-alive 120 s) and waits for an accepting CONNACK.
///
/// Returns whatever bytes arrived after the CONNACK, which belong to the caller.
pub async fn handshake(stream: &mut TcpStream, client_id: &str) -> Result<BytesMut, BenchError> {
    handshake_with(stream, client_id, true).await
}

/// [`handshake`] with the cleanSession flag given (`false`: a persistent session).
pub async fn handshake_with(
    stream: &mut TcpStream,
    client_id: &str,
    clean_session: bool,
) -> Result<BytesMut, BenchError> {
    let connect = Connect {
        clean_session,
        keep_alive: 120,
        client_id: ByteStr::try_from(client_id)
            .map_err(|_| BenchError::Handshake(format!("bad client id {client_id:?}")))?,
        ..Connect::default()
    };
    let mut out = BytesMut::new();
    Packet::Connect(Box::new(connect)).encode(&mut out)?;
    stream.write_all(&out).await?;
    let mut rx = BytesMut::with_capacity(256);
    match read_packet(stream, &mut rx).await? {
        Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Accepted => Ok(rx),
        Packet::ConnAck(ack) => Err(BenchError::Handshake(format!(
            "CONNACK {:?} for {client_id}",
            ack.code
        ))),
        other => Err(BenchError::Handshake(format!(
            "{} instead of CONNACK",
            other.name()
        ))),
    }
}

/// Subscribes to `filters` in SUBSCRIBEs of at most 100 filters and waits for every SUBACK.
pub async fn subscribe(
    stream: &mut TcpStream,
    rx: &mut BytesMut,
    filters: &[String],
    qos: QoS,
) -> Result<(), BenchError> {
    for (chunk_index, chunk) in filters.chunks(100).enumerate() {
        let packet_id = packet_id_for(chunk_index as u64);
        let filters = chunk
            .iter()
            .map(|f| {
                Ok(SubscribeFilter {
                    filter: ByteStr::try_from(f.as_str())
                        .map_err(|_| BenchError::InvalidPlan("filter is not an MQTT string"))?,
                    qos,
                })
            })
            .collect::<Result<Vec<_>, BenchError>>()?;
        let mut out = BytesMut::new();
        Packet::Subscribe(Subscribe { packet_id, filters }).encode(&mut out)?;
        stream.write_all(&out).await?;
        loop {
            match read_packet(stream, rx).await? {
                Packet::SubAck(ack) if ack.packet_id == packet_id => break,
                // Retained messages or stray traffic before the SUBACK are not ours to count.
                _ => continue,
            }
        }
    }
    Ok(())
}

/// Reads until one whole packet is decoded.
pub async fn read_packet(stream: &mut TcpStream, rx: &mut BytesMut) -> Result<Packet, BenchError> {
    loop {
        if let Some(packet) = DECODER.decode(rx)? {
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
