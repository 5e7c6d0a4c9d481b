//! What the broker's trace writer does per batch: encode records and append them to the log.
//! `append/1024` is one batch of a busy broker (a delivery to a client, with its 128-bit
//! message id and a typical client id); the per-record cost is its time / 1024.
//!
//! `cargo bench -p mqgate-trace --bench append`
// `criterion_group!` defines a public function without documentation.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mqgate_trace::{Action, Info, RecordRef, TraceConfig, TraceLog};

fn batch(n: u64) -> Vec<(u64, u128)> {
    (0..n)
        .map(|i| (1_765_000_000_000 + i / 100, u128::from(i) << 64 | 0xABCD))
        .collect()
}

fn append(c: &mut Criterion) {
    let events = batch(1024);
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(events.len() as u64));
    // One log for the whole run, as the broker's writer has, kept within its size bound by
    // the sweep the writer runs when an append took it over.
    let config = TraceConfig {
        max_bytes: 64 << 20,
        segment_bytes: 8 << 20,
        ..TraceConfig::default()
    };
    let mut log = TraceLog::in_memory(config);
    group.bench_function("1024", |b| {
        b.iter(|| {
            let records = events.iter().map(|&(time_ms, id)| RecordRef {
                time_ms,
                action: Action::Sub,
                info: Info::PushToMqttClient,
                client_id: "GID_fleet@@@device-000123",
                message: Some(id),
                channel_id: None,
            });
            log.append_refs(records)
                .expect("an in-memory log does not fail");
            if log.stats().bytes > config.max_bytes {
                log.sweep(0).expect("an in-memory log does not fail");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
