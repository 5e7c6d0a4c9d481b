//! Decode and encode a realistic packet stream with mqgate-codec and with rumqttc's codec,
//! side by side in the same run. The receive buffer is filled outside the timed part (as a
//! socket read would fill it), so decode measures decoding and dropping the packets.
//!
//! Each decoded packet goes to `std::hint::black_box` by reference. Criterion 0.5's own
//! `black_box` copies its argument with a volatile read, one byte at a time: for a packet
//! enum of 70-odd bytes that was a large share of the measured time on both sides, so it
//! measured the harness as much as the codecs.
//!
//! cargo bench -p mqgate-codec --bench codec
// `criterion_group!` defines a public function without documentation.
#![allow(missing_docs)]

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mqgate_codec::Decoder;
use rumqttc::mqttbytes::v4;

#[path = "../tests/support/rumqttc_map.rs"]
mod rumqttc_map;
use rumqttc_map::to_rumqttc;
#[path = "../tests/support/bench_stream.rs"]
mod bench_stream;
use bench_stream::{decode_ours, decode_rumqttc, encode_ours, encode_rumqttc, stream, KINDS};

fn bench(c: &mut Criterion) {
    for kind in KINDS {
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
                |buf| decode_ours(&d, buf),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(BenchmarkId::new("rumqttc", ours.len()), |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                decode_rumqttc,
                BatchSize::LargeInput,
            )
        });
        g.finish();

        let mut g = c.benchmark_group(format!("encode/{kind}"));
        g.throughput(Throughput::Elements(ours.len() as u64));
        let mut out = BytesMut::with_capacity(wire.len());
        g.bench_function(BenchmarkId::new("mqgate", ours.len()), |b| {
            b.iter(|| encode_ours(&ours, &mut out))
        });
        g.bench_function(BenchmarkId::new("rumqttc", ours.len()), |b| {
            b.iter(|| encode_rumqttc(&theirs, &mut out))
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
