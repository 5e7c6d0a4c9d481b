//! A global allocator that counts allocations made by the current thread, and one delivery
//! round through a session; shared by `tests/allocations.rs` and `benches/deliver_ack.rs`.
#![allow(dead_code, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use mqgate_codec::{Packet, QoS};
use mqgate_session::{Message, Session};

thread_local! {
    // `const` so the counter itself never allocates inside the allocator.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting per thread so other test threads do not interfere.
pub struct CountingAllocator;

// SAFETY: defers every call to `System`; the counter is a thread-local `Cell` with const
// initialisation, which neither allocates nor reenters.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations (and reallocations) the current thread made while `f` ran.
pub fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// One message through an online session as far as the protocol goes: delivery, PUBLISH out,
/// and the client's PUBACK, or PUBREC / PUBREL / PUBCOMP; outputs drained.
pub fn deliver_and_ack(session: &mut Session, message: &Arc<Message>, qos: QoS, now: u64) {
    let _ = session.handle_delivery(Arc::clone(message), qos, now);
    while let Some(packet) = session.poll_transmit() {
        let answer = match packet {
            Packet::Publish(p) => match (p.qos, p.packet_id) {
                (QoS::AtLeastOnce, Some(id)) => Packet::PubAck(id),
                (QoS::ExactlyOnce, Some(id)) => Packet::PubRec(id),
                _ => continue,
            },
            Packet::PubRel(id) => Packet::PubComp(id),
            _ => continue,
        };
        session
            .handle_packet(std::hint::black_box(answer), now)
            .expect("the session's own packet ids");
    }
    while session.poll_event().is_some() {}
}
