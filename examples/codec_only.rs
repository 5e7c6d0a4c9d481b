//! Use only the codec: decode a captured client byte stream (as it would come off a socket,
//! in arbitrary chunks), print each packet, and encode the broker's answers.
//!
//! cargo run --example codec_only

use bytes::{Bytes, BytesMut};
use mqgate::codec::{
    ByteStr, ConnAck, Connect, ConnectReturnCode, Decoder, Packet, PacketId, Publish, QoS, SubAck,
    Subscribe, SubscribeFilter, SubscribeReturnCode,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // What a device sends: CONNECT, SUBSCRIBE, a QoS 1 PUBLISH, PINGREQ, DISCONNECT.
    let id = |n| PacketId::new(n).ok_or("packet id 0");
    let client = [
        Packet::Connect(Box::new(Connect {
            clean_session: false,
            keep_alive: 60,
            client_id: ByteStr::from_static("GID_shop@@@tag-0042"),
            ..Connect::default()
        })),
        Packet::Subscribe(Subscribe {
            packet_id: id(1)?,
            filters: vec![SubscribeFilter {
                filter: ByteStr::from_static("shop/+/price"),
                qos: QoS::AtLeastOnce,
            }],
        }),
        Packet::Publish(Publish::new(
            QoS::AtLeastOnce,
            Some(id(2)?),
            ByteStr::from_static("shop/tag-0042/status"),
            Bytes::from_static(b"{\"battery\":87}"),
        )),
        Packet::PingReq,
        Packet::Disconnect,
    ];
    let mut wire = BytesMut::new();
    for p in &client {
        p.encode(&mut wire)?;
    }
    println!("client stream: {} bytes", wire.len());

    // Feed it to the decoder 7 bytes at a time, as a slow socket would.
    let decoder = Decoder::new(64 * 1024);
    let mut rx = BytesMut::new();
    let mut tx = BytesMut::new();
    for chunk in wire.chunks(7) {
        rx.extend_from_slice(chunk);
        while let Some(packet) = decoder.decode(&mut rx)? {
            println!("<- {:<11} {packet:?}", packet.name());
            let answer = match packet {
                Packet::Connect(_) => Some(Packet::ConnAck(ConnAck {
                    session_present: false,
                    code: ConnectReturnCode::Accepted,
                })),
                Packet::Subscribe(s) => Some(Packet::SubAck(SubAck {
                    packet_id: s.packet_id,
                    return_codes: s
                        .filters
                        .iter()
                        .map(|f| SubscribeReturnCode::Success(f.qos))
                        .collect(),
                })),
                Packet::Publish(p) => p.packet_id.map(Packet::PubAck),
                Packet::PingReq => Some(Packet::PingResp),
                _ => None,
            };
            if let Some(a) = answer {
                a.encode(&mut tx)?;
                println!("-> {:<11} {} bytes", a.name(), a.encoded_len()?);
            }
        }
    }
    println!("broker answers: {} bytes: {:02x?}", tx.len(), &tx[..]);
    Ok(())
}
