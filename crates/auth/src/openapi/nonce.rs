//! The date window and replay protection shared by both signature schemes.

use std::collections::BTreeSet;

use hashbrown::HashMap;
use parking_lot::Mutex;

use super::SignatureError;

/// Default accepted distance between a request's date and the broker's clock:
/// 15 minutes, either way.
pub const DEFAULT_WINDOW_MS: u64 = 15 * 60 * 1000;

/// Default number of nonces remembered at once.
pub const DEFAULT_NONCE_CAPACITY: usize = 100_000;

/// Longest nonce accepted, in bytes; the SDKs send 32 hex digits. Bounding it
/// bounds the guard's memory together with the capacity.
pub const MAX_NONCE_LEN: usize = 128;

/// Rejects requests whose date is outside a window around `now`, and requests
/// whose nonce was already seen within that window.
///
/// A nonce only has to be remembered while a request carrying it could still
/// pass the date check, that is until its date plus the window; older entries
/// are dropped as time moves on. Memory is bounded by `capacity`: when that
/// many nonces are live, new requests are refused ([`SignatureError::NonceStoreFull`])
/// rather than forgetting a live nonce, which would reopen a replay. Only
/// requests whose signature verified are recorded, so filling the store
/// needs a valid AccessKey.
///
/// The guard locks internally so one instance can be shared by every HTTP
/// handler; time is always an argument.
///
/// ```
/// use mqgate_auth::openapi::NonceGuard;
/// let guard = NonceGuard::new(60_000, 10);
/// assert!(guard.admit("n1", 1_000, 2_000).is_ok());
/// assert!(guard.admit("n1", 1_000, 3_000).is_err()); // replay
/// assert!(guard.admit("n2", 1_000, 100_000).is_err()); // date too old
/// ```
#[derive(Debug)]
pub struct NonceGuard {
    window_ms: u64,
    capacity: usize,
    seen: Mutex<SeenNonces>,
}

#[derive(Debug, Default)]
struct SeenNonces {
    forget_at: HashMap<String, u64>,
    by_forget_time: BTreeSet<(u64, String)>,
}

impl Default for NonceGuard {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW_MS, DEFAULT_NONCE_CAPACITY)
    }
}

impl NonceGuard {
    /// A guard accepting dates within `window_ms` of now and remembering at
    /// most `capacity` nonces.
    pub fn new(window_ms: u64, capacity: usize) -> Self {
        Self {
            window_ms,
            capacity,
            seen: Mutex::new(SeenNonces::default()),
        }
    }

    /// The accepted distance between a request's date and now, in ms.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// How many nonces are currently remembered (some may be stale until
    /// the next [`admit`](Self::admit) prunes them).
    pub fn len(&self) -> usize {
        self.seen.lock().forget_at.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks only the date window: `request_ms` must be within the window
    /// of `now_ms`, in either direction.
    pub fn check_date(&self, request_ms: u64, now_ms: u64) -> Result<(), SignatureError> {
        if request_ms.abs_diff(now_ms) <= self.window_ms {
            Ok(())
        } else {
            Err(SignatureError::DateOutOfWindow { request_ms, now_ms })
        }
    }

    /// Checks the date window, then records `nonce`, failing if it was
    /// already recorded and is still live.
    pub fn admit(&self, nonce: &str, request_ms: u64, now_ms: u64) -> Result<(), SignatureError> {
        self.check_date(request_ms, now_ms)?;
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
            return Err(SignatureError::BadNonce);
        }
        let mut seen = self.seen.lock();
        seen.forget_expired(now_ms);
        if seen.forget_at.contains_key(nonce) {
            return Err(SignatureError::NonceReplayed);
        }
        if seen.forget_at.len() >= self.capacity {
            return Err(SignatureError::NonceStoreFull);
        }
        let forget_at = request_ms.saturating_add(self.window_ms);
        seen.forget_at.insert(nonce.to_owned(), forget_at);
        seen.by_forget_time.insert((forget_at, nonce.to_owned()));
        Ok(())
    }
}

impl SeenNonces {
    fn forget_expired(&mut self, now_ms: u64) {
        while let Some(first) = self.by_forget_time.first() {
            if first.0 >= now_ms {
                break;
            }
            if let Some((_, nonce)) = self.by_forget_time.pop_first() {
                self.forget_at.remove(&nonce);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_window_is_inclusive_both_ways() {
        let guard = NonceGuard::new(1_000, 10);
        let table = [
            (5_000, 5_000, true),
            (4_000, 5_000, true),
            (6_000, 5_000, true),
            (3_999, 5_000, false),
            (6_001, 5_000, false),
            (0, u64::MAX, false),
        ];
        for (request, now, ok) in table {
            assert_eq!(
                guard.check_date(request, now).is_ok(),
                ok,
                "{request} {now}"
            );
        }
    }

    #[test]
    fn nonce_is_forgotten_once_its_date_leaves_the_window() {
        let guard = NonceGuard::new(1_000, 10);
        guard.admit("a", 10_000, 10_000).unwrap();
        assert_eq!(
            guard.admit("a", 10_500, 10_900),
            Err(SignatureError::NonceReplayed)
        );
        // Still live at the window's edge.
        assert_eq!(
            guard.admit("a", 10_500, 11_000),
            Err(SignatureError::NonceReplayed)
        );
        guard.admit("a", 11_000, 11_001).unwrap();
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn full_store_refuses_instead_of_forgetting_live_nonces() {
        let guard = NonceGuard::new(1_000, 2);
        guard.admit("a", 0, 0).unwrap();
        guard.admit("b", 0, 0).unwrap();
        assert_eq!(guard.admit("c", 0, 0), Err(SignatureError::NonceStoreFull));
        assert_eq!(guard.admit("a", 0, 500), Err(SignatureError::NonceReplayed));
        // Once a and b expire there is room again.
        guard.admit("c", 1_500, 1_500).unwrap();
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn rejects_empty_and_oversized_nonces() {
        let guard = NonceGuard::default();
        assert_eq!(guard.admit("", 0, 0), Err(SignatureError::BadNonce));
        let long = "n".repeat(MAX_NONCE_LEN + 1);
        assert_eq!(guard.admit(&long, 0, 0), Err(SignatureError::BadNonce));
        assert!(guard.is_empty());
    }
}
