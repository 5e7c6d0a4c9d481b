//! The packet streams the codec benchmark and the profiling example (`examples/
//! codec_profile.rs`) measure, so both measure the same thing.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use mqgate_codec::{ByteStr, Decoder, Packet, PacketId, Publish, QoS, Subscribe, SubscribeFilter};
use rumqttc::mqttbytes::v4;

/// The stream kinds, in the order the benchmark runs them.
pub const KINDS: [&str; 5] = [
    "publish-qos0-64B",
    "publish-qos1-64B",
    "publish-qos0-1KiB",
    "publish-qos1-1KiB",
    "mixed",
];

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

fn publish(qos: QoS, size: usize, i: u16) -> Packet {
    Packet::Publish(Publish::new(
        qos,
        (qos != QoS::AtMostOnce).then(|| pid(1 + i % 60_000)),
        ByteStr::from_static("factory/line-7/sensor/42/temperature"),
        Bytes::from(vec![0xa5; size]),
    ))
}

/// The stream one client connection might carry: mostly publishes, some acks and pings.
pub fn stream(kind: &str) -> Vec<Packet> {
    let mut v = Vec::new();
    for i in 0..1000u16 {
        match kind {
            "publish-qos0-64B" => v.push(publish(QoS::AtMostOnce, 64, i)),
            "publish-qos1-64B" => v.push(publish(QoS::AtLeastOnce, 64, i)),
            "publish-qos0-1KiB" => v.push(publish(QoS::AtMostOnce, 1024, i)),
            "publish-qos1-1KiB" => v.push(publish(QoS::AtLeastOnce, 1024, i)),
            _ => {
                // mixed: publishes of both sizes and QoS, PUBACKs, a PINGREQ, a SUBSCRIBE
                v.push(publish(
                    if i % 2 == 0 {
                        QoS::AtMostOnce
                    } else {
                        QoS::AtLeastOnce
                    },
                    if i % 8 == 0 { 1024 } else { 64 },
                    i,
                ));
                v.push(Packet::PubAck(pid(1 + i)));
                if i % 100 == 0 {
                    v.push(Packet::PingReq);
                    v.push(Packet::Subscribe(Subscribe {
                        packet_id: pid(1 + i),
                        filters: vec![
                            SubscribeFilter {
                                filter: ByteStr::from_static("factory/+/cmd"),
                                qos: QoS::AtLeastOnce,
                            },
                            SubscribeFilter {
                                filter: ByteStr::from_static("broadcast/#"),
                                qos: QoS::AtMostOnce,
                            },
                        ],
                    }));
                }
            }
        }
    }
    v
}

// The measured loops. Each decoded packet goes to `black_box` by reference and is dropped;
// both sides count packets the same way. Not inlined, so a profiler can name them.

/// Decodes every packet of `buf` with mqgate-codec; returns how many.
#[inline(never)]
pub fn decode_ours(d: &Decoder, mut buf: BytesMut) -> usize {
    let mut n = 0;
    while let Ok(Some(p)) = d.decode(&mut buf) {
        black_box(&p);
        n += 1;
    }
    n
}

/// Decodes every packet of `buf` with rumqttc's codec; returns how many.
#[inline(never)]
pub fn decode_rumqttc(mut buf: BytesMut) -> usize {
    let mut n = 0;
    while let Ok(p) = v4::Packet::read(&mut buf, 1 << 20) {
        black_box(&p);
        n += 1;
    }
    n
}

/// Encodes `packets` into `out` (cleared first) with mqgate-codec; returns the length.
#[inline(never)]
pub fn encode_ours(packets: &[Packet], out: &mut BytesMut) -> usize {
    out.clear();
    for p in packets {
        p.encode(out).expect("encode");
    }
    out.len()
}

/// Encodes `packets` into `out` (cleared first) with rumqttc's codec; returns the length.
#[inline(never)]
pub fn encode_rumqttc(packets: &[v4::Packet], out: &mut BytesMut) -> usize {
    out.clear();
    for p in packets {
        p.write(out, 1 << 20).expect("encode");
    }
    out.len()
}
