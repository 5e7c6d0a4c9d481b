//! Shared subscription groups: one member receives each message.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// How a shared group picks the member that receives a message.
///
/// Every policy prefers the members the caller marks available (connected, say)
/// and skips the others; when no member is available it picks among all of them
/// as if all were, so a group never loses a message for want of a member that can
/// take it now (a broker queues it in that member's persistent session). Each is
/// deterministic for a given sequence of calls (the random one under its seed), so
/// tests can predict it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharePolicy {
    /// Members take turns in subscription order.
    #[default]
    RoundRobin,
    /// A pseudo-random member, from a generator seeded with `seed` and the group name.
    Random {
        /// Seed of the per-group generator.
        seed: u64,
    },
    /// The same publisher goes to the same member while membership holds
    /// (rendezvous hashing, so a member leaving moves only its own publishers).
    /// Messages with no publisher fall back to round robin.
    StickyByPublisher,
}

/// The members of one `$share/{group}/{filter}`.
#[derive(Debug)]
pub(crate) struct SharedGroup<K, V> {
    pub(crate) name: Box<str>,
    /// In subscription order, which round robin follows.
    pub(crate) members: Vec<(K, V)>,
    /// Round-robin cursor or generator state; atomic so matching takes `&self`.
    state: AtomicU64,
}

impl<K: Eq + Hash, V> SharedGroup<K, V> {
    pub(crate) fn new(name: &str, policy: SharePolicy) -> Self {
        let state = match policy {
            SharePolicy::Random { seed } => seed ^ fnv1a(name.as_bytes()),
            SharePolicy::RoundRobin | SharePolicy::StickyByPublisher => 0,
        };
        SharedGroup {
            name: name.into(),
            members: Vec::new(),
            state: AtomicU64::new(state),
        }
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.members.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                self.members.push((key, value));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let index = self.members.iter().position(|(k, _)| k == key)?;
        Some(self.members.remove(index).1)
    }

    /// The member that receives the next message: an available one if any is, otherwise
    /// the one the policy points at; `None` only for a group without members.
    pub(crate) fn select(
        &self,
        policy: SharePolicy,
        publisher: Option<&str>,
        available: &impl Fn(&K) -> bool,
    ) -> Option<&(K, V)> {
        let count = u64::try_from(self.members.len()).ok().filter(|&n| n > 0)?;
        let start = match (policy, publisher) {
            (SharePolicy::StickyByPublisher, Some(publisher)) => {
                let seed = fnv1a(publisher.as_bytes());
                let best = |only_available: bool| {
                    self.members
                        .iter()
                        .filter(|(k, _)| !only_available || available(k))
                        .max_by_key(|(k, _)| rendezvous_score(seed, k))
                };
                return best(true).or_else(|| best(false));
            }
            (SharePolicy::Random { .. }, _) => {
                splitmix64(self.state.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed)) % count
            }
            (SharePolicy::RoundRobin | SharePolicy::StickyByPublisher, _) => {
                self.state.fetch_add(1, Ordering::Relaxed) % count
            }
        };
        let (tail, head) = self
            .members
            .split_at_checked(usize::try_from(start).ok()?)?;
        head.iter()
            .chain(tail)
            .find(|(k, _)| available(k))
            .or_else(|| head.first())
    }
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a well-mixed value from a counter.
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a: a fixed, seedless hash, so choices are the same in every process.
struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hasher = Fnv1a(0xCBF2_9CE4_8422_2325);
    hasher.write(bytes);
    hasher.finish()
}

fn rendezvous_score(seed: u64, key: &impl Hash) -> u64 {
    let mut hasher = Fnv1a(seed);
    key.hash(&mut hasher);
    splitmix64(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(policy: SharePolicy, members: u32) -> SharedGroup<u32, u8> {
        let mut group = SharedGroup::new("g", policy);
        for m in 0..members {
            group.insert(m, 1);
        }
        group
    }

    fn picks(
        group: &SharedGroup<u32, u8>,
        policy: SharePolicy,
        publisher: Option<&str>,
        n: usize,
        up: impl Fn(&u32) -> bool,
    ) -> Vec<u32> {
        (0..n)
            .filter_map(|_| group.select(policy, publisher, &up).map(|(k, _)| *k))
            .collect()
    }

    #[test]
    fn round_robin_takes_turns_and_skips_unavailable() {
        let policy = SharePolicy::RoundRobin;
        let g = group(policy, 3);
        assert_eq!(picks(&g, policy, None, 6, |_| true), [0, 1, 2, 0, 1, 2]);
        assert_eq!(picks(&g, policy, None, 3, |&m| m != 1), [0, 2, 2]);
        // None available: the turns go on over all of them, no message is left out.
        assert_eq!(picks(&g, policy, None, 3, |_| false), [0, 1, 2]);
        assert!(group(policy, 0).select(policy, None, &|_| true).is_none());
    }

    #[test]
    fn random_is_deterministic_under_a_seed_and_spreads() {
        let policy = SharePolicy::Random { seed: 7 };
        let a = picks(&group(policy, 4), policy, None, 400, |_| true);
        let b = picks(&group(policy, 4), policy, None, 400, |_| true);
        assert_eq!(a, b);
        for member in 0..4 {
            let share = a.iter().filter(|&&m| m == member).count();
            assert!(
                (50..150).contains(&share),
                "member {member} got {share} of 400"
            );
        }
        let other = SharePolicy::Random { seed: 8 };
        assert_ne!(a, picks(&group(other, 4), other, None, 400, |_| true));
        assert!(picks(&group(policy, 4), policy, None, 50, |&m| m != 2)
            .iter()
            .all(|&m| m != 2));
        assert_eq!(
            picks(&group(policy, 4), policy, None, 50, |_| false).len(),
            50,
            "none available: every message still has a member"
        );
    }

    #[test]
    fn sticky_keeps_a_publisher_on_one_member() {
        let policy = SharePolicy::StickyByPublisher;
        let g = group(policy, 5);
        let chosen: Vec<u32> = (0..40)
            .map(|p| picks(&g, policy, Some(&format!("pub-{p}")), 1, |_| true)[0])
            .collect();
        for (p, &first) in chosen.iter().enumerate() {
            let again = picks(&g, policy, Some(&format!("pub-{p}")), 5, |_| true);
            assert!(again.iter().all(|&m| m == first));
            // Taking another member away does not move this publisher.
            let other = (first + 1) % 5;
            assert_eq!(
                picks(&g, policy, Some(&format!("pub-{p}")), 1, |&m| m != other),
                [first]
            );
            // Nobody available: still its own member.
            assert_eq!(
                picks(&g, policy, Some(&format!("pub-{p}")), 1, |_| false),
                [first]
            );
        }
        let distinct: std::collections::HashSet<_> = chosen.iter().collect();
        assert!(
            distinct.len() >= 3,
            "40 publishers all went to {distinct:?}"
        );
        // Without a publisher it is round robin.
        assert_eq!(picks(&g, policy, None, 5, |_| true), [0, 1, 2, 3, 4]);
    }
}
