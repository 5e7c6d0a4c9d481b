//! A global allocator that counts allocations, for the tests that prove a decode path
//! allocates nothing. Each such test has a binary of its own: the counter sees every thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Forwards to the system allocator and counts `alloc` calls.
pub struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

/// Allocations so far, in every thread.
pub fn allocations() -> usize {
    ALLOCS.load(Ordering::Relaxed)
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}
