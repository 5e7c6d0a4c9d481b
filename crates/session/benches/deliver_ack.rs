//! Messages through the session state machine: delivery, PUBLISH out, the client's
//! acknowledgements in, outputs drained; for QoS 0, 1 and 2. Also prints the allocations per
//! message, counted by a global allocator.
// `criterion_group!` defines a public function without documentation.
#![allow(missing_docs)]

#[path = "../tests/support/counting.rs"]
mod counting;

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mqgate_codec::{ByteStr, Connect, QoS};
use mqgate_session::{Message, MessageId, Session, SessionConfig};

#[global_allocator]
static ALLOCATOR: counting::CountingAllocator = counting::CountingAllocator;

fn online_session() -> Session {
    let mut session = Session::new(
        ByteStr::from_static("GID_bench@@@1"),
        SessionConfig::default(),
    );
    let _ = session.connect(&Connect::default(), 0).expect("offline");
    while session.poll_transmit().is_some() {}
    session
}

fn message(qos: QoS) -> Arc<Message> {
    Arc::new(Message::new(
        MessageId(1),
        ByteStr::from_static("shop/GID_bench/price"),
        // A heap payload, as a decoded PUBLISH has: its first clone makes it shared.
        Bytes::from(vec![0x5a; 64]),
        qos,
        0,
    ))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_deliver_ack");
    group.throughput(Throughput::Elements(1));
    for (name, qos) in [
        ("qos0", QoS::AtMostOnce),
        ("qos1", QoS::AtLeastOnce),
        ("qos2", QoS::ExactlyOnce),
    ] {
        let mut session = online_session();
        let message = message(qos);
        for now in 0..1_000 {
            counting::deliver_and_ack(&mut session, &message, qos, now);
        }
        const N: u64 = 100_000;
        let allocations = counting::allocations_during(|| {
            for now in 0..N {
                counting::deliver_and_ack(&mut session, &message, qos, now);
            }
        });
        println!(
            "session_deliver_ack/{name}: {allocations} allocations for {N} messages ({:.4} per message)",
            allocations as f64 / N as f64
        );
        let mut now = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                now += 1;
                counting::deliver_and_ack(&mut session, &message, qos, now);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
