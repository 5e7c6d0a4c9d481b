//! Console sessions and the sign-in throttle.
//!
//! A session is a random id (public, the map's key) and a random secret (compared in
//! constant time), sent together as the cookie `mqgate_console={id}.{secret}`, plus a CSRF
//! token that every write must carry. Sessions expire `console_session_ms` after sign-in
//! and end at sign-out. Failed sign-ins are counted per address; past the limit, that
//! address is refused until its window has passed.

use std::collections::HashMap;
use std::net::IpAddr;

use mqgate_auth::secrets_equal;
use parking_lot::Mutex;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "mqgate_console";

/// Most sessions at once; a sign-in beyond it ends the oldest.
const MAX_SESSIONS: usize = 64;

/// Most addresses whose failed sign-ins are remembered; the stalest are forgotten first.
const MAX_THROTTLED: usize = 4096;

/// One signed-in operator.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The AccessKey the operator signed in with: every action runs as it.
    pub(crate) access_key_id: String,
    /// The token writes must carry (header `x-csrf-token` or form field `csrf`).
    pub(crate) csrf: String,
    secret: String,
    /// Monotonic ms at which the session ends.
    pub(crate) expires_at_ms: u64,
}

impl Session {
    /// Whether `token` is this session's CSRF token (constant time).
    pub(crate) fn csrf_matches(&self, token: &str) -> bool {
        secrets_equal(self.csrf.as_bytes(), token.as_bytes())
    }
}

/// Failed sign-ins from one address.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    window_start_ms: u64,
}

/// The sessions and the throttle of one console.
#[derive(Debug)]
pub(crate) struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    ttl_ms: u64,
    max_failures: u32,
    lockout_ms: u64,
}

/// A fresh random token: `bytes` random bytes as hex. `None` without randomness.
fn random_hex(bytes: usize) -> Option<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).ok()?;
    Some(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    pub(crate) fn new(ttl_ms: u64, max_failures: u32, lockout_ms: u64) -> Self {
        Sessions {
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            ttl_ms: ttl_ms.max(1000),
            max_failures: max_failures.max(1),
            lockout_ms,
        }
    }

    /// How long a session lasts, in ms.
    pub(crate) fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    /// Whether `peer` may try to sign in now (not locked out by earlier failures).
    pub(crate) fn may_try(&self, peer: IpAddr, now_ms: u64) -> bool {
        let failures = self.failures.lock();
        match failures.get(&peer) {
            Some(f) if now_ms.saturating_sub(f.window_start_ms) < self.lockout_ms => {
                f.count < self.max_failures
            }
            _ => true,
        }
    }

    /// Counts a failed sign-in from `peer`.
    pub(crate) fn failed(&self, peer: IpAddr, now_ms: u64) {
        let mut failures = self.failures.lock();
        let lockout = self.lockout_ms;
        if failures.len() >= MAX_THROTTLED && !failures.contains_key(&peer) {
            failures.retain(|_, f| now_ms.saturating_sub(f.window_start_ms) < lockout);
            if failures.len() >= MAX_THROTTLED {
                let stalest = failures
                    .iter()
                    .min_by_key(|(_, f)| f.window_start_ms)
                    .map(|(ip, _)| *ip);
                if let Some(ip) = stalest {
                    failures.remove(&ip);
                }
            }
        }
        let entry = failures.entry(peer).or_insert(Failures {
            count: 0,
            window_start_ms: now_ms,
        });
        if now_ms.saturating_sub(entry.window_start_ms) >= lockout {
            *entry = Failures {
                count: 0,
                window_start_ms: now_ms,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }

    /// A new session for `access_key_id`: the cookie value and the session. `None` when the
    /// system has no randomness.
    pub(crate) fn open(&self, access_key_id: &str, now_ms: u64) -> Option<(String, Session)> {
        let id = random_hex(12)?;
        let session = Session {
            access_key_id: access_key_id.to_owned(),
            csrf: random_hex(24)?,
            secret: random_hex(24)?,
            expires_at_ms: now_ms.saturating_add(self.ttl_ms),
        };
        let cookie = format!("{id}.{}", session.secret);
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, s| s.expires_at_ms > now_ms);
        while sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires_at_ms)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => sessions.remove(&id),
                None => break,
            };
        }
        sessions.insert(id, session.clone());
        Some((cookie, session))
    }

    /// The live session the cookie value names, if any.
    pub(crate) fn find(&self, cookie: &str, now_ms: u64) -> Option<Session> {
        let (id, secret) = cookie.split_once('.')?;
        let sessions = self.sessions.lock();
        let session = sessions.get(id)?;
        let genuine = secrets_equal(session.secret.as_bytes(), secret.as_bytes());
        (genuine && session.expires_at_ms > now_ms).then(|| session.clone())
    }

    /// Ends the session the cookie value names (sign-out).
    pub(crate) fn close(&self, cookie: &str) {
        if let Some((id, secret)) = cookie.split_once('.') {
            let mut sessions = self.sessions.lock();
            if sessions
                .get(id)
                .is_some_and(|s| secrets_equal(s.secret.as_bytes(), secret.as_bytes()))
            {
                sessions.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_close_and_need_their_secret() {
        let sessions = Sessions::new(10_000, 3, 60_000);
        let (cookie, session) = sessions.open("AK", 1_000).unwrap();
        assert_eq!(session.access_key_id, "AK");
        assert!(sessions.find(&cookie, 5_000).is_some());
        assert!(sessions.find(&cookie, 11_000).is_none(), "expired");
        let (id, _) = cookie.split_once('.').unwrap();
        assert!(sessions.find(&format!("{id}.wrong"), 5_000).is_none());
        assert!(sessions.find("garbage", 5_000).is_none());
        sessions.close(&format!("{id}.wrong"));
        assert!(
            sessions.find(&cookie, 5_000).is_some(),
            "a wrong secret closes nothing"
        );
        sessions.close(&cookie);
        assert!(sessions.find(&cookie, 5_000).is_none());
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
    }

    #[test]
    fn failures_lock_an_address_out_for_a_window() {
        let sessions = Sessions::new(10_000, 2, 1_000);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        assert!(sessions.may_try(ip, 0));
        sessions.failed(ip, 0);
        assert!(sessions.may_try(ip, 10));
        sessions.failed(ip, 10);
        assert!(!sessions.may_try(ip, 20));
        assert!(sessions.may_try(other, 20));
        assert!(sessions.may_try(ip, 1_000), "the window passed");
    }

    #[test]
    fn sessions_are_bounded() {
        let sessions = Sessions::new(10_000, 2, 1_000);
        let first = sessions.open("AK", 0).unwrap().0;
        for n in 1..=MAX_SESSIONS as u64 {
            sessions.open("AK", n).unwrap();
        }
        assert!(sessions.find(&first, 100).is_none(), "the oldest went");
        assert!(sessions.sessions.lock().len() <= MAX_SESSIONS);
    }
}
