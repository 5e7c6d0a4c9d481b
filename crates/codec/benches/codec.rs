//! Decode and encode a realistic packet stream with mqgate-codec and with rumqttc's codec,
//! side by side in the same run. The receive buffer is filled outside the timed part (as a
//! socket read would fill it), so decode measures decoding and dropping the packets.
//!
//! Each decoded packet goes to `std::hint::black_box` by reference. Criterion 0.5's own
//! `black_box` copies its argument with a volatile read, one byte at a time: for a packet
//! enum of 70-odd bytes that was a large share of the measured time on both sides, so it
//! measured the harness as much as the codecs.
//!
//! The MQTT 5 streams (`tests/support/bench_stream_v5.rs`) run after the 3.1.1 ones, with
//! rumqttc's v5 codec on the same bytes.
//!
//! cargo bench -p mqgate-codec --bench codec
// `criterion_group!` defines a public function without documentation.
#![allow(missing_docs)]

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mqgate_codec::Decoder;
use rumqttc::mqttbytes::v4;

#[path = "../tests/support/rumqttc_map.rs"]
mod rumqttc_map;
use rumqttc_map::to_rumqttc;
#[path = "../tests/support/bench_stream.rs"]
mod bench_stream;
use bench_stream::{decode_ours, decode_rumqttc, encode_ours, encode_rumqttc, stream, KINDS};
#[path = "../tests/support/bench_stream_v5.rs"]
mod bench_stream_v5;
use bench_stream_v5::{
    decode_ours_v5, decode_rumqttc_v5, encode_ours_v5, encode_rumqttc_v5, read_rumqttc_v5,
    stream_v5, KINDS_V5,
};

fn bench(c: &mut Criterion) {
    for kind in KINDS {
        let ours = stream(kind);
        let theirs: Vec<v4::Packet> = ours.iter().map(to_rumqttc).collect();
        let mut wire = BytesMut::new();
        for p in &ours {
            p.encode(&mut wire).expect("encode");
        }
        let d = Decoder::new(1 << 20);
        compare(
            c,
            kind,
            ours.len(),
            &wire.freeze(),
            |buf| decode_ours(&d, buf),
            decode_rumqttc,
            |out| encode_ours(&ours, out),
            |out| encode_rumqttc(&theirs, out),
        );
    }
}

/// The MQTT 5 streams, both codecs on the same bytes (rumqttc's packets are its reading of
/// our encoding).
fn bench_v5(c: &mut Criterion) {
    for kind in KINDS_V5 {
        let ours = stream_v5(kind);
        let mut wire = BytesMut::new();
        encode_ours_v5(&ours, &mut wire);
        let wire = wire.freeze();
        let theirs = read_rumqttc_v5(&wire);
        let d = Decoder::new(1 << 20);
        compare(
            c,
            kind,
            ours.len(),
            &wire,
            |buf| decode_ours_v5(&d, buf),
            decode_rumqttc_v5,
            |out| encode_ours_v5(&ours, out),
            |out| encode_rumqttc_v5(&theirs, out),
        );
    }
}

/// One stream of `n` packets (`wire` encoded): decode and encode, ours then rumqttc's, in the
/// groups `decode/{kind}` and `encode/{kind}`.
#[allow(clippy::too_many_arguments)]
fn compare(
    c: &mut Criterion,
    kind: &str,
    n: usize,
    wire: &Bytes,
    decode_ours: impl Fn(BytesMut) -> usize,
    decode_theirs: impl Fn(BytesMut) -> usize,
    mut encode_ours: impl FnMut(&mut BytesMut) -> usize,
    mut encode_theirs: impl FnMut(&mut BytesMut) -> usize,
) {
    let mut g = c.benchmark_group(format!("decode/{kind}"));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("mqgate", n), |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            &decode_ours,
            BatchSize::LargeInput,
        )
    });
    g.bench_function(BenchmarkId::new("rumqttc", n), |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            &decode_theirs,
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group(format!("encode/{kind}"));
    g.throughput(Throughput::Elements(n as u64));
    let mut out = BytesMut::with_capacity(wire.len());
    g.bench_function(BenchmarkId::new("mqgate", n), |b| {
        b.iter(|| encode_ours(&mut out))
    });
    g.bench_function(BenchmarkId::new("rumqttc", n), |b| {
        b.iter(|| encode_theirs(&mut out))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench, bench_v5
}
criterion_main!(benches);
