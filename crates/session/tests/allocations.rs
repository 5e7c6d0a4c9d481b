//! Delivering and acknowledging a message allocates nothing once the session's queues have
//! grown to their working size.

#[path = "support/counting.rs"]
mod counting;
mod support;

use mqgate_codec::QoS;
use mqgate_session::SessionConfig;

#[global_allocator]
static ALLOCATOR: counting::CountingAllocator = counting::CountingAllocator;

#[test]
fn steady_state_delivery_allocates_nothing_at_any_qos() {
    let one = counting::allocations_during(|| drop(std::hint::black_box(Box::new(1u64))));
    assert_eq!(one, 1, "the counter sees allocations");
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let mut s = support::session(SessionConfig::default());
        support::connect(&mut s, false, 0);
        let message = support::message(1, qos, 0);
        for now in 0..100 {
            counting::deliver_and_ack(&mut s, &message, qos, now);
        }
        let allocations = counting::allocations_during(|| {
            for now in 100..10_100 {
                counting::deliver_and_ack(&mut s, &message, qos, now);
            }
        });
        assert_eq!(
            allocations, 0,
            "{qos:?}: {allocations} allocations for 10 000 messages"
        );
    }
}
