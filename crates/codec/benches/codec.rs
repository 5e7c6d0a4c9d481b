//! Decode and encode a realistic packet stream with mqgate-codec and with rumqttc's codec,
//! side by side in the same run. The receive buffer is filled outside the timed part (as a
//! socket read would fill it), so decode measures decoding and dropping the packets.
//!
//! Each decoded packet goes to `std::hint::black_box` by reference. Criterion 0.5's own
//! `black_box` copies its argument with a volatile read, one byte at a time: for a packet
//! enum of 70-odd bytes that cost 15-20 % of the measured time on both sides, so it measured
//! the harness as much as the codecs.
//!
//! cargo bench -p mqgate-codec --bench codec

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mqgate_codec::{ByteStr, Decoder, Packet, PacketId, Publish, QoS, Subscribe, SubscribeFilter};
use rumqttc::mqttbytes::v4;

#[path = "../tests/support/rumqttc_map.rs"]
mod rumqttc_map;
use rumqttc_map::to_rumqttc;

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

fn publish(qos: QoS, size: usize, i: u16) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: ByteStr::from_static("factory/line-7/sensor/42/temperature"),
        packet_id: (qos != QoS::AtMostOnce).then(|| pid(1 + i % 60_000)),
        payload: Bytes::from(vec![0xa5; size]),
    })
}

/// The stream one client connection might carry: mostly publishes, some acks and pings.
fn stream(kind: &str) -> Vec<Packet> {
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

fn bench(c: &mut Criterion) {
    for kind in [
        "publish-qos0-64B",
        "publish-qos1-64B",
        "publish-qos0-1KiB",
        "publish-qos1-1KiB",
        "mixed",
    ] {
        let ours = stream(kind);
        let theirs: Vec<v4::Packet> = ours.iter().map(to_rumqttc).collect();
        let mut wire = BytesMut::new();
        for p in &ours {
            p.encode(&mut wire).expect("encode");
        }
        let wire = wire.freeze();

        let mut g = c.benchmark_group(format!("decode/{kind}"));
        g.throughput(Throughput::Elements(ours.len() as u64));
        g.bench_function(BenchmarkId::new("mqgate", ours.len()), |b| {
            let d = Decoder::new(1 << 20);
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |mut buf| {
                    let mut n = 0;
                    while let Ok(Some(p)) = d.decode(&mut buf) {
                        black_box(&p);
                        n += 1;
                    }
                    n
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function(BenchmarkId::new("rumqttc", ours.len()), |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |mut buf| {
                    let mut n = 0;
                    while let Ok(p) = v4::Packet::read(&mut buf, 1 << 20) {
                        black_box(&p);
                        n += 1;
                    }
                    n
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();

        let mut g = c.benchmark_group(format!("encode/{kind}"));
        g.throughput(Throughput::Elements(ours.len() as u64));
        let mut out = BytesMut::with_capacity(wire.len());
        g.bench_function(BenchmarkId::new("mqgate", ours.len()), |b| {
            b.iter(|| {
                out.clear();
                for p in &ours {
                    p.encode(&mut out).expect("encode");
                }
                out.len()
            })
        });
        g.bench_function(BenchmarkId::new("rumqttc", ours.len()), |b| {
            b.iter(|| {
                out.clear();
                for p in &theirs {
                    p.write(&mut out, 1 << 20).expect("encode");
                }
                out.len()
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
