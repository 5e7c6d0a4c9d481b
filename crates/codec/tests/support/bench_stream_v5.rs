//! The MQTT 5 packet streams the codec benchmark measures, beside the 3.1.1 ones of
//! `bench_stream.rs`: publishes without properties, publishes with the properties a v5
//! client typically sends (message expiry, content type, two user properties), and a mixed
//! stream with short-form PUBACKs and pings. rumqttc's v5 codec runs on the same bytes.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use mqgate_codec::v5::{Ack, Packet, Publish, PublishProperties};
use mqgate_codec::{ByteStr, Decoder, PacketId, Properties, Property, PropertyId, QoS};
use rumqttc::v5::mqttbytes::v5 as theirs;

/// The stream kinds, in the order the benchmark runs them.
pub const KINDS_V5: [&str; 3] = [
    "v5-publish-qos1-64B",
    "v5-publish-qos1-64B-props",
    "v5-mixed",
];

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

fn publish(qos: QoS, size: usize, i: u16, with_props: bool) -> Packet {
    let mut p = Publish::new(
        qos,
        (qos != QoS::AtMostOnce).then(|| pid(1 + i % 60_000)),
        ByteStr::from_static("factory/line-7/sensor/42/temperature"),
        Bytes::from(vec![0xa5; size]),
    );
    if with_props {
        let forward = Properties::build([
            Property::Utf8(PropertyId::ContentType, "application/json"),
            Property::UserProperty("site", "berlin"),
            Property::UserProperty("unit", "celsius"),
        ])
        .expect("valid properties")
        .forwardable();
        p.properties = PublishProperties {
            forward,
            message_expiry_interval: Some(3600),
            ..PublishProperties::default()
        };
    }
    Packet::Publish(p)
}

/// One v5 client connection's stream.
pub fn stream_v5(kind: &str) -> Vec<Packet> {
    let mut v = Vec::new();
    for i in 0..1000u16 {
        match kind {
            "v5-publish-qos1-64B" => v.push(publish(QoS::AtLeastOnce, 64, i, false)),
            "v5-publish-qos1-64B-props" => v.push(publish(QoS::AtLeastOnce, 64, i, true)),
            _ => {
                v.push(publish(
                    if i % 2 == 0 {
                        QoS::AtMostOnce
                    } else {
                        QoS::AtLeastOnce
                    },
                    if i % 8 == 0 { 1024 } else { 64 },
                    i,
                    i % 4 == 0,
                ));
                v.push(Packet::PubAck(Ack::success(pid(1 + i))));
                if i % 100 == 0 {
                    v.push(Packet::PingReq);
                }
            }
        }
    }
    v
}

/// rumqttc's reading of the same bytes (its values for its encoder).
pub fn read_rumqttc_v5(wire: &[u8]) -> Vec<theirs::Packet> {
    let mut buf = BytesMut::from(wire);
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(theirs::Packet::read(&mut buf, None).expect("rumqttc reads our stream"));
    }
    out
}

/// Decodes every packet of `buf` with mqgate-codec's v5 decoder; returns how many.
#[inline(never)]
pub fn decode_ours_v5(d: &Decoder, mut buf: BytesMut) -> usize {
    let mut n = 0;
    while let Ok(Some(p)) = d.decode_v5(&mut buf) {
        black_box(&p);
        n += 1;
    }
    n
}

/// Decodes every packet of `buf` with rumqttc's v5 codec; returns how many.
#[inline(never)]
pub fn decode_rumqttc_v5(mut buf: BytesMut) -> usize {
    let mut n = 0;
    while !buf.is_empty() {
        let Ok(p) = theirs::Packet::read(&mut buf, Some(1 << 20)) else {
            break;
        };
        black_box(&p);
        n += 1;
    }
    n
}

/// Encodes `packets` into `out` (cleared first) with mqgate-codec; returns the length.
#[inline(never)]
pub fn encode_ours_v5(packets: &[Packet], out: &mut BytesMut) -> usize {
    out.clear();
    for p in packets {
        p.encode(out).expect("encode");
    }
    out.len()
}

/// Encodes `packets` into `out` (cleared first) with rumqttc's v5 codec; returns the length.
#[inline(never)]
pub fn encode_rumqttc_v5(packets: &[theirs::Packet], out: &mut BytesMut) -> usize {
    out.clear();
    for p in packets {
        p.write(out, None).expect("encode");
    }
    out.len()
}
