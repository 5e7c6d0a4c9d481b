//! [`Replicated`]: the durable registry, with every change made through it stamped and handed
//! to a [`ChangeFeed`] (the cluster, which sends it to the other nodes), and the other nodes'
//! changes applied to it when their stamp is newer than what this node has for the record.
//!
//! The rule (`docs/cluster.md`, registries): every record has a stamp, the time of its last
//! change (ms since the epoch, at the node that made it) and that node's id as the tie
//! break. A change is applied when its stamp is greater than the stamp this node has for
//! the record's key; a removal leaves a tombstone with its stamp for [`TOMBSTONE_MS`], so an
//! older put (a snapshot in flight, a node that had not heard of the removal) does not bring
//! the record back. Records loaded from the store at start have the stamp zero: any stamped
//! change wins over them, and a snapshot's unstamped copy does not replace them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mqgate_auth::{
    ConnectBlack, CustomIdentity, CustomPermission, DeviceCredential, GroupRecord, IdentityKey,
    PermissionKey, Registry, RegistryError, TokenRecord,
};
use mqgate_store::{DurableRegistry, Store};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

/// How long a removal is remembered: a put older than the removal, arriving within this
/// time, does not bring the record back. Snapshots older than this are not taken in.
pub(crate) const TOMBSTONE_MS: u64 = 10 * 60 * 1000;

/// One record of the registry, as it crosses between nodes (the JSON the store keeps, with
/// its kind).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub(crate) enum Record {
    /// A group.
    Group(GroupRecord),
    /// A token (a revoked one too).
    Token(TokenRecord),
    /// A device credential.
    Device(DeviceCredential),
    /// A custom-auth identity.
    Identity(CustomIdentity),
    /// A custom-auth permission.
    Permission(CustomPermission),
    /// A client id on the connect blacklist.
    Black(ConnectBlack),
}

/// Kinds and keys only: tokens and secrets stay out of logs.
impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl Record {
    /// The record's kind, as its key begins.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Record::Group(_) => "group",
            Record::Token(_) => "token",
            Record::Device(_) => "device",
            Record::Identity(_) => "identity",
            Record::Permission(_) => "permission",
            Record::Black(_) => "black",
        }
    }

    /// The key its stamp is kept under: the kind and the store's key of the record.
    pub(crate) fn key(&self) -> String {
        let key = match self {
            Record::Group(group) => group.group_id.clone(),
            Record::Token(token) => token.token.clone(),
            Record::Device(device) => device.client_id.clone(),
            Record::Identity(identity) => identity.key().to_store_key(),
            Record::Permission(permission) => permission.key().to_store_key(),
            Record::Black(black) => black.client_id.clone(),
        };
        format!("{}/{key}", self.kind())
    }

    /// Whether it is a custom-auth record (the live rules are made from them).
    pub(crate) fn is_custom(&self) -> bool {
        matches!(
            self,
            Record::Identity(_) | Record::Permission(_) | Record::Black(_)
        )
    }
}

/// When a record last changed, and where: ordered by time, then node id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub(crate) struct Stamp {
    /// Ms since the epoch at the node that made the change (0: loaded from a store, no
    /// change seen since the node started).
    pub(crate) ms: u64,
    /// That node's id.
    pub(crate) node: String,
}

/// One change: the record put (or removed) and its stamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Change {
    /// The change's stamp.
    pub(crate) stamp: Stamp,
    /// Removed (else put).
    pub(crate) removed: bool,
    /// The record (as removed, for a removal).
    pub(crate) record: Record,
}

/// Where local changes go: the cluster, which sends them to the other nodes.
pub(crate) trait ChangeFeed: Send + Sync {
    /// A change this node made, applied here already.
    fn changed(&self, change: Change);
}

/// The stamp kept for one key.
#[derive(Debug, Clone)]
struct Known {
    stamp: Stamp,
    /// A removal: forgotten [`TOMBSTONE_MS`] after `noted_ms`.
    removed: bool,
    noted_ms: u64,
}

/// The registry of a node: the store's, stamped, with a feed for the cluster.
pub(crate) struct Replicated {
    inner: DurableRegistry,
    /// The store `inner` keeps its records in (for the tokens, which it does not list).
    store: Arc<dyn Store>,
    /// This node's id (with `[cluster]`; empty without).
    node: RwLock<String>,
    feed: RwLock<Option<Arc<dyn ChangeFeed>>>,
    /// The stamp of every record (zero for those loaded at start) and tombstone. Held from
    /// a change's check to its write, so a change and its stamp go together.
    known: Mutex<HashMap<String, Known>>,
    /// When the tombstones were last pruned (at most once a second: a snapshot of many
    /// records is applied one record at a time).
    pruned_ms: AtomicU64,
}

impl std::fmt::Debug for Replicated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicated")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Replicated {
    /// `inner` (kept in `store`), every record it holds stamped zero.
    pub(crate) fn new(
        inner: DurableRegistry,
        store: Arc<dyn Store>,
    ) -> Result<Self, RegistryError> {
        let replicated = Replicated {
            inner,
            store,
            node: RwLock::new(String::new()),
            feed: RwLock::new(None),
            known: Mutex::new(HashMap::new()),
            pruned_ms: AtomicU64::new(0),
        };
        let records = replicated.records()?;
        let mut known = replicated.known.lock();
        for record in records {
            known.insert(
                record.key(),
                Known {
                    stamp: Stamp::default(),
                    removed: false,
                    noted_ms: 0,
                },
            );
        }
        drop(known);
        Ok(replicated)
    }

    /// From now on, changes made through this registry are stamped with `node` and handed to
    /// `feed`.
    pub(crate) fn set_feed(&self, node: &str, feed: Arc<dyn ChangeFeed>) {
        node.clone_into(&mut self.node.write());
        *self.feed.write() = Some(feed);
    }

    /// Every record held now.
    fn records(&self) -> Result<Vec<Record>, RegistryError> {
        let mut records: Vec<Record> = Vec::new();
        records.extend(self.inner.groups()?.into_iter().map(Record::Group));
        for id in self.inner.device_client_ids()? {
            if let Some(device) = self.inner.device_credential(&id)? {
                records.push(Record::Device(device));
            }
        }
        records.extend(
            self.inner
                .custom_identities()?
                .into_iter()
                .map(Record::Identity),
        );
        records.extend(
            self.inner
                .custom_permissions()?
                .into_iter()
                .map(Record::Permission),
        );
        records.extend(
            self.inner
                .connect_blacklist()?
                .into_iter()
                .map(Record::Black),
        );
        // The registry lists no tokens: the store does.
        let tokens = self
            .store
            .load_tokens()
            .map_err(|e| RegistryError::Storage(e.to_string()))?;
        records.extend(tokens.into_iter().map(Record::Token));
        Ok(records)
    }

    /// Every record held now with its stamp, as puts: what a joining node is sent.
    pub(crate) fn snapshot(&self) -> Result<Vec<Change>, RegistryError> {
        let records = self.records()?;
        let known = self.known.lock();
        Ok(records
            .into_iter()
            .map(|record| {
                let stamp = known
                    .get(&record.key())
                    .map(|known| known.stamp.clone())
                    .unwrap_or_default();
                Change {
                    stamp,
                    removed: false,
                    record,
                }
            })
            .collect())
    }

    /// Applies another node's `change` when its stamp is newer than what this node has for
    /// the record (see the module's rule). `Ok(true)` when applied. Not handed to the feed.
    ///
    /// # Errors
    /// The store's.
    pub(crate) fn apply_remote(&self, change: &Change, now: u64) -> Result<bool, RegistryError> {
        let key = change.record.key();
        let mut known = self.known.lock();
        self.prune(&mut known, now);
        if known
            .get(&key)
            .is_some_and(|known| known.stamp >= change.stamp)
        {
            return Ok(false);
        }
        match (&change.record, change.removed) {
            (Record::Group(r), false) => self.inner.put_group(r.clone())?,
            (Record::Group(r), true) => drop(self.inner.remove_group(&r.group_id)?),
            (Record::Token(r), false) => self.inner.put_token(r.clone())?,
            (Record::Token(r), true) => drop(self.inner.remove_token(&r.token)?),
            (Record::Device(r), false) => self.inner.put_device_credential(r.clone())?,
            (Record::Device(r), true) => {
                drop(self.inner.remove_device_credential(&r.client_id)?);
            }
            (Record::Identity(r), false) => self.inner.put_custom_identity(r.clone())?,
            (Record::Identity(r), true) => drop(self.inner.remove_custom_identity(&r.key())?),
            (Record::Permission(r), false) => self.inner.put_custom_permission(r.clone())?,
            (Record::Permission(r), true) => {
                drop(self.inner.remove_custom_permission(&r.key())?);
            }
            (Record::Black(r), false) => self.inner.put_connect_black(r.clone())?,
            (Record::Black(r), true) => drop(self.inner.remove_connect_black(&r.client_id)?),
        }
        known.insert(
            key,
            Known {
                stamp: change.stamp.clone(),
                removed: change.removed,
                noted_ms: now,
            },
        );
        Ok(true)
    }

    /// Forgets the tombstones older than [`TOMBSTONE_MS`], at most once a second.
    fn prune(&self, known: &mut HashMap<String, Known>, now: u64) {
        let last = self.pruned_ms.load(Ordering::Relaxed);
        if now.abs_diff(last) < 1_000 {
            return;
        }
        self.pruned_ms.store(now, Ordering::Relaxed);
        known
            .retain(|_, known| !known.removed || now.saturating_sub(known.noted_ms) < TOMBSTONE_MS);
    }

    /// Runs `write` (a change of this node) with the stamps held; once it succeeded, stamps
    /// the change later than anything known for the record and hands it to the feed.
    fn local<T>(
        &self,
        write: impl FnOnce(&DurableRegistry) -> Result<T, RegistryError>,
        change: impl FnOnce(&T) -> Option<(Record, bool)>,
    ) -> Result<T, RegistryError> {
        let mut known = self.known.lock();
        let out = write(&self.inner)?;
        let Some((record, removed)) = change(&out) else {
            return Ok(out);
        };
        let now = crate::clock::unix_time_ms();
        self.prune(&mut known, now);
        let key = record.key();
        let after = known.get(&key).map_or(0, |known| known.stamp.ms);
        let stamp = Stamp {
            ms: now.max(after.saturating_add(1)),
            node: self.node.read().clone(),
        };
        known.insert(
            key,
            Known {
                stamp: stamp.clone(),
                removed,
                noted_ms: now,
            },
        );
        drop(known);
        let feed = self.feed.read().clone();
        if let Some(feed) = feed {
            feed.changed(Change {
                stamp,
                removed,
                record,
            });
        }
        Ok(out)
    }
}

impl Registry for Replicated {
    fn group(&self, group_id: &str) -> Result<Option<GroupRecord>, RegistryError> {
        self.inner.group(group_id)
    }
    fn put_group(&self, group: GroupRecord) -> Result<(), RegistryError> {
        let record = Record::Group(group.clone());
        self.local(|r| r.put_group(group), |_| Some((record, false)))
    }
    fn remove_group(&self, group_id: &str) -> Result<Option<GroupRecord>, RegistryError> {
        self.local(
            |r| r.remove_group(group_id),
            |out| out.clone().map(|r| (Record::Group(r), true)),
        )
    }
    fn groups(&self) -> Result<Vec<GroupRecord>, RegistryError> {
        self.inner.groups()
    }
    fn token(&self, token: &str) -> Result<Option<TokenRecord>, RegistryError> {
        self.inner.token(token)
    }
    fn put_token(&self, record: TokenRecord) -> Result<(), RegistryError> {
        let change = Record::Token(record.clone());
        self.local(|r| r.put_token(record), |_| Some((change, false)))
    }
    fn remove_token(&self, token: &str) -> Result<Option<TokenRecord>, RegistryError> {
        self.local(
            |r| r.remove_token(token),
            |out| out.clone().map(|r| (Record::Token(r), true)),
        )
    }
    fn device_credential(
        &self,
        client_id: &str,
    ) -> Result<Option<DeviceCredential>, RegistryError> {
        self.inner.device_credential(client_id)
    }
    fn put_device_credential(&self, record: DeviceCredential) -> Result<(), RegistryError> {
        let change = Record::Device(record.clone());
        self.local(
            |r| r.put_device_credential(record),
            |_| Some((change, false)),
        )
    }
    fn remove_device_credential(
        &self,
        client_id: &str,
    ) -> Result<Option<DeviceCredential>, RegistryError> {
        self.local(
            |r| r.remove_device_credential(client_id),
            |out| out.clone().map(|r| (Record::Device(r), true)),
        )
    }
    fn device_client_ids(&self) -> Result<Vec<String>, RegistryError> {
        self.inner.device_client_ids()
    }
    fn custom_identities(&self) -> Result<Vec<CustomIdentity>, RegistryError> {
        self.inner.custom_identities()
    }
    fn put_custom_identity(&self, identity: CustomIdentity) -> Result<(), RegistryError> {
        let change = Record::Identity(identity.clone());
        self.local(
            |r| r.put_custom_identity(identity),
            |_| Some((change, false)),
        )
    }
    fn remove_custom_identity(
        &self,
        key: &IdentityKey,
    ) -> Result<Option<CustomIdentity>, RegistryError> {
        self.local(
            |r| r.remove_custom_identity(key),
            |out| out.clone().map(|r| (Record::Identity(r), true)),
        )
    }
    fn custom_permissions(&self) -> Result<Vec<CustomPermission>, RegistryError> {
        self.inner.custom_permissions()
    }
    fn put_custom_permission(&self, permission: CustomPermission) -> Result<(), RegistryError> {
        let change = Record::Permission(permission.clone());
        self.local(
            |r| r.put_custom_permission(permission),
            |_| Some((change, false)),
        )
    }
    fn remove_custom_permission(
        &self,
        key: &PermissionKey,
    ) -> Result<Option<CustomPermission>, RegistryError> {
        self.local(
            |r| r.remove_custom_permission(key),
            |out| out.clone().map(|r| (Record::Permission(r), true)),
        )
    }
    fn connect_blacklist(&self) -> Result<Vec<ConnectBlack>, RegistryError> {
        self.inner.connect_blacklist()
    }
    fn put_connect_black(&self, record: ConnectBlack) -> Result<(), RegistryError> {
        let change = Record::Black(record.clone());
        self.local(|r| r.put_connect_black(record), |_| Some((change, false)))
    }
    fn remove_connect_black(&self, client_id: &str) -> Result<Option<ConnectBlack>, RegistryError> {
        self.local(
            |r| r.remove_connect_black(client_id),
            |out| out.clone().map(|r| (Record::Black(r), true)),
        )
    }
}

#[cfg(test)]
mod tests {
    use mqgate_store::MemoryStore;

    use super::*;

    struct Sent(Mutex<Vec<Change>>);

    impl ChangeFeed for Sent {
        fn changed(&self, change: Change) {
            self.0.lock().push(change);
        }
    }

    fn registry(store: &Arc<dyn Store>) -> Replicated {
        let inner = DurableRegistry::load(store.clone()).unwrap();
        Replicated::new(inner, store.clone()).unwrap()
    }

    fn change(ms: u64, node: &str, removed: bool, group: &str) -> Change {
        Change {
            stamp: Stamp {
                ms,
                node: node.into(),
            },
            removed,
            record: Record::Group(GroupRecord::new(group, 1)),
        }
    }

    #[test]
    fn the_newer_stamp_wins_and_a_removal_is_not_undone_by_an_older_put() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let registry = registry(&store);
        let sent = Arc::new(Sent(Mutex::new(Vec::new())));
        registry.set_feed("n1", sent.clone());
        // A local change is stored, stamped and handed on.
        registry.put_group(GroupRecord::new("GID_a", 1)).unwrap();
        let local = sent.0.lock()[0].clone();
        assert_eq!((local.stamp.node.as_str(), local.removed), ("n1", false));
        assert_eq!(store.load_groups().unwrap().len(), 1);
        // An older change of another node is not applied; a newer one is, and not sent on.
        let older = change(local.stamp.ms - 1, "n2", true, "GID_a");
        assert!(!registry.apply_remote(&older, local.stamp.ms).unwrap());
        let removal = change(local.stamp.ms + 5, "n2", true, "GID_a");
        assert!(registry.apply_remote(&removal, local.stamp.ms).unwrap());
        assert!(registry.group("GID_a").unwrap().is_none());
        assert_eq!(
            sent.0.lock().len(),
            1,
            "another node's change is not sent again"
        );
        // A put older than the removal (a snapshot in flight) does not bring it back; a
        // newer one does; an unstamped copy does not replace a stamped record.
        let stale = change(local.stamp.ms + 4, "n3", false, "GID_a");
        assert!(!registry.apply_remote(&stale, local.stamp.ms).unwrap());
        assert!(registry.group("GID_a").unwrap().is_none());
        let unstamped = change(0, "", false, "GID_a");
        assert!(!registry.apply_remote(&unstamped, local.stamp.ms).unwrap());
        let newer = change(local.stamp.ms + 6, "n3", false, "GID_a");
        assert!(registry.apply_remote(&newer, local.stamp.ms).unwrap());
        assert!(registry.group("GID_a").unwrap().is_some());
        // Ties go to the higher node id.
        let tie = change(local.stamp.ms + 6, "n4", true, "GID_a");
        assert!(registry.apply_remote(&tie, local.stamp.ms).unwrap());
        // A local change after a remote one is stamped after it, even against the clock.
        registry.put_group(GroupRecord::new("GID_a", 2)).unwrap();
        let last = sent.0.lock().last().cloned().unwrap();
        assert_eq!(last.stamp.ms, local.stamp.ms + 7);
        // A tombstone is forgotten after TOMBSTONE_MS: then any put is taken.
        let removal = change(local.stamp.ms + 8, "n2", true, "GID_a");
        assert!(registry.apply_remote(&removal, local.stamp.ms).unwrap());
        assert!(!registry.apply_remote(&unstamped, local.stamp.ms).unwrap());
        let later = local.stamp.ms + TOMBSTONE_MS + 10;
        assert!(registry.apply_remote(&unstamped, later).unwrap());
        assert!(registry.group("GID_a").unwrap().is_some());
    }

    #[test]
    fn records_loaded_at_start_are_stamped_zero_and_a_snapshot_holds_every_kind() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        {
            let first = registry(&store);
            first.put_group(GroupRecord::new("GID_b", 1)).unwrap();
            first
                .put_connect_black(ConnectBlack {
                    client_id: "GID_b@@@x".into(),
                    create_time_ms: 1,
                })
                .unwrap();
        }
        let again = registry(&store);
        let snapshot = again.snapshot().unwrap();
        assert_eq!(snapshot.len(), 2);
        assert!(snapshot.iter().all(|c| c.stamp == Stamp::default()));
        // An unstamped copy from elsewhere does not replace what was loaded.
        let copy = change(0, "", true, "GID_b");
        assert!(!again.apply_remote(&copy, 1).unwrap());
    }
}
