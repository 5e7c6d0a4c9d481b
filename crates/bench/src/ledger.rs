//! Who got what: one bit per expected delivery, so a run counts lost and duplicated
//! messages exactly, and one bit per acknowledged message, so it can tell whether a broker
//! lost something it had acknowledged.

use std::sync::atomic::{AtomicU64, Ordering};

/// A fixed-size set of bits that many tasks set concurrently.
#[derive(Debug)]
pub struct AtomicBits {
    words: Vec<AtomicU64>,
    len: u64,
}

impl AtomicBits {
    /// `len` cleared bits.
    pub fn new(len: u64) -> Self {
        let words = usize::try_from(len.div_ceil(64)).unwrap_or(0);
        AtomicBits {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            len,
        }
    }

    /// Sets bit `i`; `Some(true)` if it was clear, `Some(false)` if already set, `None` if
    /// `i` is out of range (a broker invented a sequence number).
    pub fn set(&self, i: u64) -> Option<bool> {
        if i >= self.len {
            return None;
        }
        let word = self.words.get(usize::try_from(i / 64).ok()?)?;
        let mask = 1u64 << (i % 64);
        Some(word.fetch_or(mask, Ordering::Relaxed) & mask == 0)
    }

    /// Whether bit `i` is set (false when out of range).
    pub fn get(&self, i: u64) -> bool {
        usize::try_from(i / 64)
            .ok()
            .and_then(|w| self.words.get(w))
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1u64 << (i % 64)) != 0)
    }

    /// How many bits are set.
    pub fn count(&self) -> u64 {
        self.words
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum()
    }
}

/// Shared counters of one run.
#[derive(Debug)]
pub struct Ledger {
    /// Receivers each message is expected at: every subscriber for fan-out, else 1.
    pub receivers_per_message: u64,
    /// Messages the run will publish.
    pub messages: u64,
    /// One bit per (message, receiver): set when delivered.
    pub delivered: AtomicBits,
    /// One bit per message: set when its PUBACK arrived.
    pub acked: AtomicBits,
    /// PUBLISHes written to the broker.
    pub sent: AtomicU64,
    /// PUBLISH packets received by subscribers, duplicates included.
    pub received: AtomicU64,
    /// Deliveries whose stamp names no message of this run, or the wrong receiver.
    pub foreign: AtomicU64,
    /// MQTT 5 PUBACKs with an error reason code: messages the broker refused.
    pub refused: AtomicU64,
    /// Nanoseconds since the run's start at which the last delivery arrived.
    pub last_delivery_ns: AtomicU64,
}

impl Ledger {
    /// A ledger for `messages` messages each expected at `receivers_per_message` receivers.
    pub fn new(messages: u64, receivers_per_message: u64) -> Self {
        Ledger {
            receivers_per_message,
            messages,
            delivered: AtomicBits::new(messages.saturating_mul(receivers_per_message)),
            acked: AtomicBits::new(messages),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
        }
    }

    /// Records that `receiver` got message `sequence` at `now_ns`.
    pub fn record_delivery(&self, sequence: u64, receiver: u64, now_ns: u64) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.last_delivery_ns.fetch_max(now_ns, Ordering::Relaxed);
        let slot = sequence
            .checked_mul(self.receivers_per_message)
            .and_then(|s| s.checked_add(receiver % self.receivers_per_message.max(1)));
        if slot.and_then(|s| self.delivered.set(s)).is_none() {
            self.foreign.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Expected deliveries of the messages actually sent.
    pub fn expected(&self) -> u64 {
        self.sent
            .load(Ordering::Relaxed)
            .saturating_mul(self.receivers_per_message)
    }

    /// Distinct deliveries seen.
    pub fn unique(&self) -> u64 {
        self.delivered.count()
    }

    /// Deliveries that repeated one already seen (those naming no message of this run aside).
    pub fn duplicated(&self) -> u64 {
        self.received
            .load(Ordering::Relaxed)
            .saturating_sub(self.unique())
            .saturating_sub(self.foreign.load(Ordering::Relaxed))
    }

    /// Acknowledged messages that did not reach every receiver they were meant for.
    pub fn acked_lost(&self) -> u64 {
        (0..self.messages)
            .filter(|&m| self.acked.get(m))
            .filter(|&m| {
                (0..self.receivers_per_message)
                    .any(|r| !self.delivered.get(m * self.receivers_per_message + r))
            })
            .count() as u64
    }
}

/// The `q`-quantile (0.0 ..= 1.0) of sorted samples, nearest-rank; `None` when empty.
///
/// ```
/// let s = [1u64, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/// assert_eq!(mqgate_bench::quantile(&s, 0.5), Some(5));
/// assert_eq!(mqgate_bench::quantile(&s, 0.99), Some(10));
/// assert_eq!(mqgate_bench::quantile(&[], 0.5), None);
/// ```
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_losses_are_counted() {
        let ledger = Ledger::new(10, 2);
        ledger.sent.store(10, Ordering::Relaxed);
        for m in 0..10 {
            ledger.record_delivery(m, 0, m);
            if m != 3 {
                ledger.record_delivery(m, 1, m);
            }
        }
        ledger.record_delivery(5, 1, 99); // a duplicate
        ledger.record_delivery(50, 0, 1); // not a message of this run
        ledger.acked.set(3);
        ledger.acked.set(4);
        assert_eq!(ledger.expected(), 20);
        assert_eq!(ledger.unique(), 19);
        assert_eq!(ledger.received.load(Ordering::Relaxed), 21);
        assert_eq!(ledger.foreign.load(Ordering::Relaxed), 1);
        assert_eq!(ledger.acked_lost(), 1);
        assert_eq!(ledger.last_delivery_ns.load(Ordering::Relaxed), 99);
    }

    #[test]
    fn bits_refuse_out_of_range() {
        let bits = AtomicBits::new(65);
        assert_eq!(bits.set(64), Some(true));
        assert_eq!(bits.set(64), Some(false));
        assert_eq!(bits.set(65), None);
        assert!(bits.get(64) && !bits.get(63) && !bits.get(1000));
        assert_eq!(bits.count(), 1);
    }

    #[test]
    fn quantiles_match_a_sorted_scan() {
        let samples: Vec<u64> = (1..=1000).collect();
        for (q, want) in [(0.5, 500), (0.99, 990), (0.999, 999), (1.0, 1000), (0.0, 1)] {
            assert_eq!(quantile(&samples, q), Some(want), "q = {q}");
        }
    }
}
