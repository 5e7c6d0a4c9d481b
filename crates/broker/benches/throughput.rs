//! End-to-end throughput over loopback TCP: a raw publisher writes a batch of PUBLISHes in
//! one go, a raw subscriber reads them all; plus the embedding API's publish to a consumer.
//!
//! cargo bench -p mqgate-broker --bench throughput -- --warm-up-time 1 --measurement-time 3
// Test and benchmark code: an unwrap that fails is a failure to report (clippy.toml allows
// it inside #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]
// criterion_group! makes an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mqgate_broker::{Broker, BrokerConfig, BrokerHandle, ListenerKind};
use mqgate_codec::{
    ByteStr, Connect, Decoder, Packet, PacketId, Publish, QoS, Subscribe, SubscribeFilter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Below the inbox capacity set in `tcp`, so a QoS 0 batch is never dropped under pressure.
const BATCH: usize = 1_000;

async fn connect(broker: &BrokerHandle, id: &'static str) -> (TcpStream, BytesMut) {
    let mut stream = TcpStream::connect(broker.local_addr(ListenerKind::Tcp).unwrap())
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut out = BytesMut::new();
    Packet::Connect(Box::new(Connect {
        client_id: ByteStr::from_static(id),
        keep_alive: 60,
        clean_session: true,
        ..Connect::default()
    }))
    .encode(&mut out)
    .unwrap();
    stream.write_all(&out).await.unwrap();
    let mut rx = BytesMut::new();
    read_packets(&mut stream, &mut rx, 1).await;
    (stream, rx)
}

async fn read_packets(stream: &mut TcpStream, rx: &mut BytesMut, n: usize) {
    let decoder = Decoder::new(1 << 20);
    let mut seen = 0;
    while seen < n {
        while decoder.decode(rx).unwrap().is_some() {
            seen += 1;
        }
        if seen < n {
            rx.reserve(64 * 1024);
            assert!(stream.read_buf(rx).await.unwrap() > 0, "broker closed");
        }
    }
}

fn batch(topic: &'static str) -> BytesMut {
    let mut out = BytesMut::new();
    for _ in 0..BATCH {
        Packet::Publish(Publish::at_most_once(
            ByteStr::from_static(topic),
            Bytes::from_static(&[7; 64]),
        ))
        .encode(&mut out)
        .unwrap();
    }
    out
}

fn tcp(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = BrokerConfig::ephemeral();
    let broker = runtime
        .block_on(Broker::builder().config(config).build().start())
        .unwrap();
    let (mut sub, mut sub_rx) = runtime.block_on(connect(&broker, "GID_b@@@sub"));
    let (mut publisher, _) = runtime.block_on(connect(&broker, "GID_b@@@pub"));
    runtime.block_on(async {
        let mut out = BytesMut::new();
        Packet::Subscribe(Subscribe {
            packet_id: PacketId::new(1).unwrap(),
            filters: vec![SubscribeFilter {
                filter: ByteStr::from_static("bench/+"),
                qos: QoS::AtMostOnce,
            }],
        })
        .encode(&mut out)
        .unwrap();
        sub.write_all(&out).await.unwrap();
        read_packets(&mut sub, &mut sub_rx, 1).await;
    });
    let mut group = c.benchmark_group("tcp_qos0_64B");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, topic) in [("trie", "bench/x"), ("p2p", "chat/p2p/GID_b@@@sub")] {
        let bytes = batch(topic);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let (sent, received) = tokio::join!(
                        publisher.write_all(&bytes),
                        read_packets(&mut sub, &mut sub_rx, BATCH)
                    );
                    sent.unwrap();
                    received
                })
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("api_publish_to_consumer");
    let mut consumer = broker.subscribe("api/#", QoS::AtMostOnce).unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("qos0", |b| {
        b.iter(|| {
            runtime.block_on(async {
                broker
                    .publish("api/x", Bytes::from_static(b"x"), QoS::AtMostOnce, false)
                    .await
                    .unwrap();
                consumer.recv().await.unwrap()
            })
        })
    });
    group.finish();
    runtime.block_on(broker.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = tcp
}
criterion_main!(benches);
