//! Match throughput of the subscription trie at 1 k, 100 k and 1 M
//! subscriptions, against a naive linear matcher in the same run; P2P parsing;
//! and memory per `dev/{i}/cmd` subscription, measured with a counting
//! allocator and printed before the timings.
//!
//! `cargo bench -p mqgate-topic --bench trie -- --warm-up-time 1 --measurement-time 3`
// Set-up that fails should stop the run loudly: nothing here comes from outside.
#![allow(clippy::unwrap_used)]
// `criterion_group!` defines a public function without documentation.
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion};
use mqgate_topic::{Matches, P2pAddress, SubscriptionTrie, TopicFilter};

struct CountingAllocator;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to `System` unchanged and only adds bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
/// Dashboards subscribed to `+/status`.
const STATUS_WATCHERS: usize = 16;

/// The realistic mix, `n` subscriptions in all: devices on `dev/{i}/cmd`, a
/// monitor on `dev/{i}/#` for every tenth device, and dashboards on `+/status`.
fn mix(n: usize) -> impl Iterator<Item = (String, u32)> {
    let watchers = (0..STATUS_WATCHERS).map(|i| ("+/status".to_owned(), i as u32));
    let devices = (0..).flat_map(|i: usize| {
        let cmd = std::iter::once((format!("dev/{i}/cmd"), i as u32));
        let monitor = (i % 10 == 0).then(|| (format!("dev/{i}/#"), (i + 1) as u32));
        cmd.chain(monitor)
    });
    watchers.chain(devices).take(n)
}

fn build(filters: impl Iterator<Item = (String, u32)>) -> SubscriptionTrie<u32, u8> {
    let mut trie = SubscriptionTrie::new();
    for (filter, key) in filters {
        trie.insert(&TopicFilter::parse(&filter).unwrap(), key, 1)
            .unwrap();
    }
    trie
}

/// A device in the middle of the key space, with a monitor: two matches.
fn probe_topic(n: usize) -> String {
    format!("dev/{}/cmd", n / 22 * 10)
}

fn naive_match(subs: &[(TopicFilter, u32, u8)], topic: &str, out: &mut Vec<(u32, u8)>) {
    out.clear();
    out.extend(
        subs.iter()
            .filter(|(filter, _, _)| filter.matches(topic))
            .map(|&(_, key, qos)| (key, qos)),
    );
}

fn bench_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("match");
    for n in SIZES {
        let trie = build(mix(n));
        let topic = probe_topic(n);
        let mut out = Matches::new();
        trie.match_topic(&topic, &mut out);
        assert_eq!(
            out.len(),
            2,
            "probe {topic} should reach the device and its monitor"
        );
        group.bench_with_input(BenchmarkId::new("trie", n), &topic, |b, topic| {
            b.iter(|| {
                trie.match_topic(black_box(topic), &mut out);
                out.len()
            })
        });
        drop(trie);
        // The naive matcher at 1 M takes tens of milliseconds per message; skipped.
        if n <= 100_000 {
            let subs: Vec<_> = mix(n)
                .map(|(f, k)| (TopicFilter::parse(&f).unwrap(), k, 1u8))
                .collect();
            let mut naive_out = Vec::new();
            group.bench_with_input(BenchmarkId::new("naive", n), &topic, |b, topic| {
                b.iter(|| {
                    naive_match(&subs, black_box(topic), &mut naive_out);
                    naive_out.len()
                })
            });
        }
    }
    group.finish();
}

fn bench_p2p(c: &mut Criterion) {
    let mut group = c.benchmark_group("p2p_parse");
    for (name, topic) in [
        ("p2p", "chat/p2p/GID_app@@@phone-0042"),
        ("not_p2p", "dev/500000/cmd"),
    ] {
        group.bench_function(name, |b| b.iter(|| P2pAddress::parse(black_box(topic))));
    }
    group.finish();
}

/// Live bytes the trie holds per subscription, and what remains after removal.
fn report_memory() {
    // Before the first measurement: stdout's buffer is allocated on first use.
    println!("memory (live bytes by a counting allocator, malloc overhead excluded):");
    let n = 1_000_000;
    let base = LIVE_BYTES.load(Ordering::Relaxed);
    let mut trie = build((0..n).map(|i| (format!("dev/{i}/cmd"), i as u32)));
    let held = LIVE_BYTES.load(Ordering::Relaxed) - base;
    println!(
        "  {n} `dev/{{i}}/cmd` subscriptions (K = u32, V = u8): {held} bytes, {:.1} bytes each",
        held as f64 / n as f64
    );
    for i in 0..n {
        trie.remove(
            &TopicFilter::parse(&format!("dev/{i}/cmd")).unwrap(),
            &(i as u32),
        );
    }
    let left = LIVE_BYTES.load(Ordering::Relaxed) as isize - base as isize;
    println!(
        "  after removing all: {left} bytes held, node_count {}",
        trie.node_count()
    );
    drop(trie);

    let base = LIVE_BYTES.load(Ordering::Relaxed);
    let trie = build(mix(n));
    let held = LIVE_BYTES.load(Ordering::Relaxed) - base;
    println!(
        "  {n} mixed subscriptions: {held} bytes, {:.1} bytes each, {} nodes",
        held as f64 / n as f64,
        trie.node_count()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_match, bench_p2p
}

fn main() {
    report_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
