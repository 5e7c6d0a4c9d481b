//! Matching with a warmed-up `Matches` buffer allocates nothing.
//!
//! A global allocator counts allocations made by the current thread, so the
//! test harness's other threads do not disturb the count. (The `unsafe` is the
//! `GlobalAlloc` contract of this test binary; the library forbids it.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mqgate_topic::{Matches, SharePolicy, SubscriptionTrie, TopicFilter, TrieConfig};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to `System` unchanged; the counter is a thread-local
// `Cell` with const initialisation, which never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn warmed_up_matching_does_not_allocate() {
    for policy in [
        SharePolicy::RoundRobin,
        SharePolicy::Random { seed: 1 },
        SharePolicy::StickyByPublisher,
    ] {
        let mut trie = SubscriptionTrie::with_config(TrieConfig {
            share_policy: policy,
            ..TrieConfig::default()
        });
        for i in 0..2_000u32 {
            let f = |s: String| TopicFilter::parse(&s).unwrap();
            trie.insert(&f(format!("dev/{i}/cmd")), i, 1u8).unwrap();
            if i % 10 == 0 {
                trie.insert(&f(format!("dev/{i}/#")), i + 1, 0).unwrap();
                // Two consecutive members: exactly one is available (even).
                for member in [i % 7, i % 7 + 1] {
                    trie.insert_shared("backend", &f(format!("dev/{i}/+")), member, 1)
                        .unwrap();
                }
            }
        }
        trie.insert(&TopicFilter::parse("+/status").unwrap(), 9_999, 2)
            .unwrap();
        trie.insert(&TopicFilter::parse("#").unwrap(), 9_998, 0)
            .unwrap();

        let topics: Vec<String> = (0..200).map(|i| format!("dev/{}/cmd", i * 10)).collect();
        let mut out = Matches::new();
        for topic in &topics {
            trie.match_topic_with(topic, Some("publisher"), |k| k % 2 == 0, &mut out);
        }

        let before = allocations();
        let mut delivered = 0;
        for _ in 0..5 {
            for topic in &topics {
                trie.match_topic_with(topic, Some("publisher"), |k| k % 2 == 0, &mut out);
                delivered += out.len();
            }
            trie.match_topic("x/status", &mut out);
            delivered += out.len();
        }
        assert_eq!(allocations() - before, 0, "{policy:?}");
        // cmd + `#` under dev/{i} + the root `#`, and the available backend member.
        assert_eq!(delivered, 5 * (200 * 4 + 2), "{policy:?}");
    }
}
