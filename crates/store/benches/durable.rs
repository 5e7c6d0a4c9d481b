//! Durable appends of 64 B QoS 1 messages into offline queues, one fsync per `apply`, in
//! batches of 1, 64 and 1024 ops: what group commit buys; then batches of 1024 into queues
//! already 500 deep (500 k stored messages), where a layout with one B-tree range per queue
//! slows down. Also prints the bytes the redb file grows by per stored message, at 100 and
//! at 500 per queue.
//!
//! `cargo bench -p mqgate-store --bench durable -- --warm-up-time 1 --measurement-time 3`
// Set-up that fails should stop the run loudly: nothing here comes from outside.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use mqgate_codec::{ByteStr, QoS};
use mqgate_session::{Message, MessageId};
use mqgate_store::{Op, RedbStore, Store, StoreLimits};

const CLIENTS: u128 = 1_000;
const PAYLOAD: [u8; 64] = [b'x'; 64];

/// No limit trims anything, so every append is a real insert.
fn unlimited() -> StoreLimits {
    StoreLimits {
        max_queued_messages: u64::MAX,
        max_queued_bytes: u64::MAX,
        message_ttl_ms: u64::MAX,
        prefixed: None,
    }
}

fn client_ids() -> Vec<ByteStr> {
    (0..CLIENTS)
        .map(|i| ByteStr::try_from(format!("GID_bench@@@{i}")).unwrap())
        .collect()
}

/// `count` ops, each a fresh message for the next client in turn.
fn batch(clients: &[ByteStr], next_id: &mut u128, count: usize) -> Vec<Op> {
    (0..count)
        .map(|_| {
            *next_id += 1;
            let client = &clients[(*next_id % CLIENTS) as usize];
            Op::Enqueue {
                client_id: client.clone(),
                message: Arc::new(Message::new(
                    MessageId(*next_id),
                    ByteStr::from_static("shop/tag-0042/price"),
                    Bytes::from_static(&PAYLOAD),
                    QoS::AtLeastOnce,
                    1_700_000_000_000,
                )),
                qos: QoS::AtLeastOnce,
                shared: false,
            }
        })
        .collect()
}

/// Target dir, not /tmp: the numbers must include a real disk's fsync.
fn bench_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn durable_appends(c: &mut Criterion) {
    let clients = client_ids();
    let mut group = c.benchmark_group("redb_enqueue_64B");
    for size in [1usize, 64, 1024] {
        let dir = bench_dir();
        let store = RedbStore::open(dir.path(), unlimited()).unwrap();
        let mut next_id = 0;
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("batch", size), &size, |b, &size| {
            b.iter_batched(
                || batch(&clients, &mut next_id, size),
                |ops| store.apply(&ops).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// Batches of 1024 into 1000 queues already holding 500 messages each.
fn durable_appends_at_depth(c: &mut Criterion) {
    let clients = client_ids();
    let dir = bench_dir();
    let store = RedbStore::open(dir.path(), unlimited()).unwrap();
    let mut next_id = 0;
    fill(&store, &clients, &mut next_id, 500 * CLIENTS as usize);
    let mut group = c.benchmark_group("redb_enqueue_64B_500_deep");
    group.throughput(Throughput::Elements(1024));
    group.bench_function("batch/1024", |b| {
        b.iter_batched(
            || batch(&clients, &mut next_id, 1024),
            |ops| store.apply(&ops).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn fill(store: &RedbStore, clients: &[ByteStr], next_id: &mut u128, total: usize) {
    for _ in 0..total / 1024 {
        store.apply(&batch(clients, next_id, 1024)).unwrap();
    }
}

fn bytes_on_disk_per_message(per_queue: usize) {
    let clients = client_ids();
    let dir = bench_dir();
    let store = RedbStore::open(dir.path(), unlimited()).unwrap();
    let empty = std::fs::metadata(store.path()).unwrap().len();
    let mut next_id = 0;
    let total = per_queue * CLIENTS as usize / 1024 * 1024;
    fill(&store, &clients, &mut next_id, total);
    let full = std::fs::metadata(store.path()).unwrap().len();
    println!(
        "bytes on disk: {total} stored 64 B messages in {CLIENTS} queues grew the file from {empty} to {full} B = {:.1} B/message",
        (full - empty) as f64 / total as f64
    );
}

fn main() {
    bytes_on_disk_per_message(100);
    bytes_on_disk_per_message(500);
    let mut c = Criterion::default().configure_from_args();
    durable_appends(&mut c);
    durable_appends_at_depth(&mut c);
    c.final_summary();
}
