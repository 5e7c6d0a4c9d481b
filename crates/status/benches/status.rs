//! Status events: JSON encode/decode, and the reconciler under a stream of
//! flapping clients.
//!
//! cargo bench -p mqgate-status --bench status -- --warm-up-time 1 --measurement-time 3
// `criterion_group!` defines a public function without documentation.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mqgate_status::{ChannelId, EventType, Reconciler, ReconcilerConfig, StatusEvent};

fn event(client: u32, channel: u32, event_type: EventType, time: u64) -> StatusEvent {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&client.to_be_bytes());
    bytes[4..8].copy_from_slice(&channel.to_be_bytes());
    StatusEvent {
        client_id: format!("GID_group{}@@@device-{client}", client % 16),
        time,
        event_type,
        channel_id: ChannelId::from_bytes(bytes),
        client_ip: "192.168.10.20:57322".into(),
        seq: u64::from(channel),
    }
}

/// Every client flaps once: connect A, connect B, disconnect A, tcpclean A.
fn flapping_stream(clients: u32) -> Vec<StatusEvent> {
    let mut events = Vec::new();
    for client in 0..clients {
        let t = u64::from(client);
        events.push(event(client, 0, EventType::Connect, t));
        events.push(event(client, 1, EventType::Connect, t + 5_000));
        events.push(event(client, 0, EventType::Disconnect, t + 5_050));
        events.push(event(client, 0, EventType::Tcpclean, t + 5_100));
    }
    // Out of order: the second half of the stream arrives first.
    let half = events.len() / 2;
    events.rotate_left(half);
    events
}

fn json(c: &mut Criterion) {
    let event = event(42, 7, EventType::Tcpclean, 1_566_356_567_883);
    let body = event.to_json();
    let mut group = c.benchmark_group("status_event_json");
    group.throughput(Throughput::Elements(1));
    group.bench_function("to_json", |b| b.iter(|| black_box(&event).to_json()));
    group.bench_function("from_json", |b| {
        b.iter(|| StatusEvent::from_json(black_box(body.as_bytes())))
    });
    group.finish();
}

fn reconciler(c: &mut Criterion) {
    const CLIENTS: u32 = 10_000;
    let stream = flapping_stream(CLIENTS);
    let mut group = c.benchmark_group("reconciler");
    group.throughput(Throughput::Elements(stream.len() as u64));
    group.bench_function("apply_10k_flapping_clients", |b| {
        b.iter_batched(
            || Reconciler::new(ReconcilerConfig::default()),
            |mut reconciler| {
                for event in &stream {
                    black_box(reconciler.apply(event));
                }
                reconciler
            },
            BatchSize::LargeInput,
        );
    });
    let mut full = Reconciler::default();
    for event in &stream {
        let _ = full.apply(event);
    }
    group.throughput(Throughput::Elements(u64::from(CLIENTS)));
    group.bench_function("online_count_by_group_10k", |b| {
        b.iter(|| black_box(&full).online_count_by_group())
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("is_online", |b| {
        b.iter(|| black_box(&full).is_online(black_box("GID_group3@@@device-4099")))
    });
    group.finish();
}

criterion_group!(benches, json, reconciler);
criterion_main!(benches);
