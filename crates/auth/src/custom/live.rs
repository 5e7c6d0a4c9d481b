//! [`LiveRules`]: the current [`CustomRules`] snapshot behind an `Arc`, swapped whole on every
//! change and versioned, so that a connection checks "still current?" with one atomic load
//! and rebuilds its own rule list only after a change.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::rules::{CustomRules, Rule};

/// The current custom rules, shared by the authenticator, the API and every connection that
/// logged in with a custom identity.
///
/// Readers never wait for a writer on the publish path: a connection keeps its own rule list
/// and the version it was built from, and compares that version with [`version`](Self::version)
/// (one atomic load) before each decision; only after a change does it take the snapshot
/// again. Writers build a new snapshot and [`replace`](Self::replace) the old one.
#[derive(Default)]
pub struct LiveRules {
    version: AtomicU64,
    current: RwLock<Arc<CustomRules>>,
    /// Whether `current` reflects the registry (false until the first successful load).
    loaded: AtomicBool,
    /// Serialises writers: a change is stored and swapped in before the next one starts.
    writer: Mutex<()>,
}

impl fmt::Debug for LiveRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveRules")
            .field("version", &self.version())
            .field("counts", &self.snapshot().counts())
            .finish()
    }
}

impl LiveRules {
    /// Rules holding `rules`, marked loaded.
    pub fn new(rules: CustomRules) -> Self {
        let live = LiveRules::default();
        live.replace(rules);
        live
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<CustomRules> {
        Arc::clone(&self.current.read())
    }

    /// A number that changes with every [`replace`](Self::replace).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Whether the rules were loaded from their registry (see [`replace`](Self::replace)).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Makes `rules` current (and marks the rules loaded); the version changes after the
    /// snapshot, so whoever sees the new version finds the new snapshot.
    pub fn replace(&self, rules: CustomRules) {
        *self.current.write() = Arc::new(rules);
        self.loaded.store(true, Ordering::Release);
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Runs `change` with writers excluded: read the snapshot, store, then
    /// [`replace`](Self::replace), without another writer in between.
    pub(crate) fn write<T>(&self, change: impl FnOnce(&Self) -> T) -> T {
        let _one_at_a_time = self.writer.lock();
        change(self)
    }
}

/// The live rights of one connection that logged in with a custom identity: its username,
/// and its own rule list with the version it was built from.
pub(crate) struct CustomGrant {
    live: Arc<LiveRules>,
    username: Arc<str>,
    cached: Mutex<Cached>,
}

struct Cached {
    version: u64,
    rules: Arc<[Rule]>,
}

impl CustomGrant {
    /// The grant of `username` on `client_id`, its rules taken now.
    pub(crate) fn new(live: Arc<LiveRules>, username: &str, client_id: &str) -> Self {
        let version = live.version();
        let rules = live.snapshot().rules_for(username, client_id);
        CustomGrant {
            live,
            username: Arc::from(username),
            cached: Mutex::new(Cached { version, rules }),
        }
    }

    /// The username it logged in with.
    pub(crate) fn username(&self) -> &str {
        &self.username
    }

    /// Runs `decide` on the current rules of this connection. The lock is the connection's
    /// own (uncontended); the shared state is read only after a change.
    pub(crate) fn decide(&self, client_id: &str, decide: impl FnOnce(&[Rule]) -> bool) -> bool {
        let version = self.live.version();
        let mut cached = self.cached.lock();
        if cached.version != version {
            cached.rules = self.live.snapshot().rules_for(&self.username, client_id);
            cached.version = version;
        }
        decide(&cached.rules)
    }
}

impl Clone for CustomGrant {
    fn clone(&self) -> Self {
        let cached = self.cached.lock();
        CustomGrant {
            live: Arc::clone(&self.live),
            username: Arc::clone(&self.username),
            cached: Mutex::new(Cached {
                version: cached.version,
                rules: Arc::clone(&cached.rules),
            }),
        }
    }
}

/// Two grants are equal when they are the same username over the same rules.
impl PartialEq for CustomGrant {
    fn eq(&self, other: &Self) -> bool {
        self.username == other.username && Arc::ptr_eq(&self.live, &other.live)
    }
}

impl Eq for CustomGrant {}

impl fmt::Debug for CustomGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomGrant")
            .field("username", &self.username)
            .field("version", &self.cached.lock().version)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custom::records::{CustomPermission, Effect, IdentityType, PermitAction};
    use crate::publish_allowed;

    fn allow(topic: &str) -> CustomPermission {
        CustomPermission {
            identity_type: IdentityType::User,
            identity: "u".into(),
            topic: topic.into(),
            permit_action: PermitAction::Pub,
            effect: Effect::Allow,
            create_time_ms: 0,
            update_time_ms: 0,
        }
    }

    #[test]
    fn a_grant_follows_every_replacement() {
        let live = Arc::new(LiveRules::new(CustomRules::new([], [allow("a")], [])));
        let grant = CustomGrant::new(live.clone(), "u", "GID_a@@@1");
        let copy = grant.clone();
        assert!(grant.decide("GID_a@@@1", |r| publish_allowed(r, "a")));
        live.replace(CustomRules::new([], [allow("b")], []));
        assert!(!grant.decide("GID_a@@@1", |r| publish_allowed(r, "a")));
        assert!(grant.decide("GID_a@@@1", |r| publish_allowed(r, "b")));
        assert!(copy.decide("GID_a@@@1", |r| publish_allowed(r, "b")));
        live.replace(CustomRules::default());
        assert!(!grant.decide("GID_a@@@1", |r| publish_allowed(r, "b")));
        assert_eq!(grant, copy);
        assert!(LiveRules::default().version() == 0 && !LiveRules::default().is_loaded());
        assert!(live.is_loaded());
    }
}
