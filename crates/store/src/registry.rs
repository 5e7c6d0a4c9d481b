//! [`DurableRegistry`]: the auth crate's [`Registry`] kept in a [`Store`].

use std::sync::Arc;

use mqgate_auth::{
    ConnectBlack, CustomIdentity, CustomPermission, DeviceCredential, GroupRecord, IdentityKey,
    InMemoryRegistry, PermissionKey, Registry, RegistryError, TokenRecord,
};

use crate::{Op, Store, StoreError};

/// A [`Registry`] whose writes go to a [`Store`] first and whose reads are served from
/// memory: logins look records up on every CONNECT, so they must not touch the disk, and
/// the API's changes must survive a restart.
///
/// ```
/// use std::sync::Arc;
/// use mqgate_auth::{GroupRecord, Registry};
/// use mqgate_store::{DurableRegistry, MemoryStore, Store};
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let registry = DurableRegistry::load(Arc::clone(&store))?;
/// registry.put_group(GroupRecord::new("GID_shop", 0)).unwrap();
/// assert_eq!(store.load_groups()?.len(), 1);
/// // After a restart, loading from the same store brings the group back.
/// assert!(DurableRegistry::load(store)?.group("GID_shop").unwrap().is_some());
/// # Ok::<(), mqgate_store::StoreError>(())
/// ```
pub struct DurableRegistry {
    store: Arc<dyn Store>,
    cache: InMemoryRegistry,
    /// Held from commit to cache update, so two writers of one key leave memory in the
    /// order the disk has.
    writer: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for DurableRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableRegistry")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl DurableRegistry {
    /// Loads every group, token, device credential and custom rule from `store`.
    ///
    /// # Errors
    /// The store's load errors.
    pub fn load(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let cache = InMemoryRegistry::new();
        let fill = |r: Result<(), RegistryError>| r.map_err(|e| StoreError::Io(e.to_string()));
        for group in store.load_groups()? {
            fill(cache.put_group(group))?;
        }
        for token in store.load_tokens()? {
            fill(cache.put_token(token))?;
        }
        for credential in store.load_device_credentials()? {
            fill(cache.put_device_credential(credential))?;
        }
        for identity in store.load_custom_identities()? {
            fill(cache.put_custom_identity(identity))?;
        }
        for permission in store.load_custom_permissions()? {
            fill(cache.put_custom_permission(permission))?;
        }
        for black in store.load_connect_blacklist()? {
            fill(cache.put_connect_black(black))?;
        }
        Ok(DurableRegistry {
            store,
            cache,
            writer: parking_lot::Mutex::new(()),
        })
    }

    /// Commits `op`, then lets `update` change the cache: memory never holds what the
    /// disk does not.
    fn write<T>(
        &self,
        op: Op,
        update: impl FnOnce(&InMemoryRegistry) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let _order = self.writer.lock();
        self.store
            .apply(&[op])
            .map_err(|e| RegistryError::Storage(e.to_string()))?;
        update(&self.cache)
    }
}

impl Registry for DurableRegistry {
    fn group(&self, group_id: &str) -> Result<Option<GroupRecord>, RegistryError> {
        self.cache.group(group_id)
    }
    fn put_group(&self, group: GroupRecord) -> Result<(), RegistryError> {
        self.write(Op::PutGroup(group.clone()), |c| c.put_group(group))
    }
    fn remove_group(&self, group_id: &str) -> Result<Option<GroupRecord>, RegistryError> {
        self.write(Op::RemoveGroup(group_id.into()), |c| {
            c.remove_group(group_id)
        })
    }
    fn groups(&self) -> Result<Vec<GroupRecord>, RegistryError> {
        self.cache.groups()
    }
    fn token(&self, token: &str) -> Result<Option<TokenRecord>, RegistryError> {
        self.cache.token(token)
    }
    fn put_token(&self, record: TokenRecord) -> Result<(), RegistryError> {
        self.write(Op::PutToken(record.clone()), |c| c.put_token(record))
    }
    fn remove_token(&self, token: &str) -> Result<Option<TokenRecord>, RegistryError> {
        self.write(Op::RemoveToken(token.into()), |c| c.remove_token(token))
    }
    fn device_credential(
        &self,
        client_id: &str,
    ) -> Result<Option<DeviceCredential>, RegistryError> {
        self.cache.device_credential(client_id)
    }
    fn put_device_credential(&self, record: DeviceCredential) -> Result<(), RegistryError> {
        self.write(Op::PutDeviceCredential(record.clone()), |c| {
            c.put_device_credential(record)
        })
    }
    fn remove_device_credential(
        &self,
        client_id: &str,
    ) -> Result<Option<DeviceCredential>, RegistryError> {
        self.write(Op::RemoveDeviceCredential(client_id.into()), |c| {
            c.remove_device_credential(client_id)
        })
    }
    fn device_client_ids(&self) -> Result<Vec<String>, RegistryError> {
        self.cache.device_client_ids()
    }
    fn custom_identities(&self) -> Result<Vec<CustomIdentity>, RegistryError> {
        self.cache.custom_identities()
    }
    fn put_custom_identity(&self, identity: CustomIdentity) -> Result<(), RegistryError> {
        self.write(Op::PutCustomIdentity(identity.clone()), |c| {
            c.put_custom_identity(identity)
        })
    }
    fn remove_custom_identity(
        &self,
        key: &IdentityKey,
    ) -> Result<Option<CustomIdentity>, RegistryError> {
        self.write(Op::RemoveCustomIdentity(key.to_store_key()), |c| {
            c.remove_custom_identity(key)
        })
    }
    fn custom_permissions(&self) -> Result<Vec<CustomPermission>, RegistryError> {
        self.cache.custom_permissions()
    }
    fn put_custom_permission(&self, permission: CustomPermission) -> Result<(), RegistryError> {
        self.write(Op::PutCustomPermission(permission.clone()), |c| {
            c.put_custom_permission(permission)
        })
    }
    fn remove_custom_permission(
        &self,
        key: &PermissionKey,
    ) -> Result<Option<CustomPermission>, RegistryError> {
        self.write(Op::RemoveCustomPermission(key.to_store_key()), |c| {
            c.remove_custom_permission(key)
        })
    }
    fn connect_blacklist(&self) -> Result<Vec<ConnectBlack>, RegistryError> {
        self.cache.connect_blacklist()
    }
    fn put_connect_black(&self, record: ConnectBlack) -> Result<(), RegistryError> {
        self.write(Op::PutConnectBlack(record.clone()), |c| {
            c.put_connect_black(record)
        })
    }
    fn remove_connect_black(&self, client_id: &str) -> Result<Option<ConnectBlack>, RegistryError> {
        self.write(Op::RemoveConnectBlack(client_id.into()), |c| {
            c.remove_connect_black(client_id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RedbStore, StoreLimits};

    #[test]
    fn survives_a_reopen_of_the_redb_file() {
        let dir = tempfile::tempdir().unwrap();
        let open = || -> Arc<dyn Store> {
            Arc::new(RedbStore::open(dir.path(), StoreLimits::default()).unwrap())
        };
        {
            let registry = DurableRegistry::load(open()).unwrap();
            for op in crate::suite::registry_ops() {
                match op {
                    Op::PutGroup(g) => registry.put_group(g).unwrap(),
                    Op::PutToken(t) => registry.put_token(t).unwrap(),
                    Op::PutDeviceCredential(c) => registry.put_device_credential(c).unwrap(),
                    Op::PutCustomIdentity(i) => registry.put_custom_identity(i).unwrap(),
                    Op::PutCustomPermission(p) => registry.put_custom_permission(p).unwrap(),
                    Op::PutConnectBlack(b) => registry.put_connect_black(b).unwrap(),
                    other => panic!("unexpected {other:?}"),
                }
            }
            registry.put_group(GroupRecord::new("GID_gone", 0)).unwrap();
            assert!(registry.remove_group("GID_gone").unwrap().is_some());
        }
        let registry = DurableRegistry::load(open()).unwrap();
        assert!(registry.group("GID_shop").unwrap().is_some());
        assert!(registry.group("GID_gone").unwrap().is_none());
        assert!(registry.token("tok").unwrap().is_some());
        assert_eq!(registry.device_client_ids().unwrap(), ["GID_shop@@@1"]);
        assert_eq!(
            registry.custom_identities().unwrap(),
            [crate::suite::custom_identity()]
        );
        assert_eq!(
            registry.custom_permissions().unwrap(),
            [crate::suite::custom_permission()]
        );
        assert_eq!(registry.connect_blacklist().unwrap().len(), 1);
        let key = crate::suite::custom_identity().key();
        assert!(registry.remove_custom_identity(&key).unwrap().is_some());
        drop(registry);
        let registry = DurableRegistry::load(open()).unwrap();
        assert!(registry.custom_identities().unwrap().is_empty());
    }

    /// The store keeps auth's records as the JSON their `Serialize` writes, so auth's serde
    /// layout is part of the file format. These are the exact bytes files written so far
    /// hold: a change to the records that would stop them from opening fails here.
    #[test]
    fn registry_records_keep_their_on_disk_json() {
        use mqgate_auth::{DeviceCredential, TokenActions, TokenRecord};

        let mut group = GroupRecord::new("GID_shop", 5);
        group.update_time_ms = 6;
        group.tags.insert("k".into(), "v".into());
        let token = TokenRecord {
            token: "tok".into(),
            access_key_id: "AK".into(),
            instance_id: "inst".into(),
            resources: vec!["a/#".into()],
            actions: TokenActions::ReadWrite,
            create_time_ms: 1,
            expire_time_ms: 2,
            revoked: false,
        };
        let credential = DeviceCredential {
            client_id: "GID_shop@@@1".into(),
            instance_id: "inst".into(),
            device_access_key_id: "DK".into(),
            device_access_key_secret: "DS".into(),
            create_time_ms: 3,
            update_time_ms: 4,
        };
        let group_json = r#"{"group_id":"GID_shop","create_time_ms":5,"update_time_ms":6,"independent_naming":true,"tags":{"k":"v"}}"#;
        let token_json = r#"{"token":"tok","access_key_id":"AK","instance_id":"inst","resources":["a/#"],"actions":"R,W","create_time_ms":1,"expire_time_ms":2,"revoked":false}"#;
        let credential_json = r#"{"client_id":"GID_shop@@@1","instance_id":"inst","device_access_key_id":"DK","device_access_key_secret":"DS","create_time_ms":3,"update_time_ms":4}"#;

        assert_eq!(serde_json::to_string(&group).unwrap(), group_json);
        assert_eq!(serde_json::to_string(&token).unwrap(), token_json);
        assert_eq!(serde_json::to_string(&credential).unwrap(), credential_json);
        assert_eq!(
            serde_json::from_str::<GroupRecord>(group_json).unwrap(),
            group
        );
        assert_eq!(
            serde_json::from_str::<TokenRecord>(token_json).unwrap(),
            token
        );
        assert_eq!(
            serde_json::from_str::<DeviceCredential>(credential_json).unwrap(),
            credential
        );

        let identity_json = r#"{"identity_type":"CLIENT","username":"user","client_id":"GID_shop@@@1","secret":"sec","sign_mode":"SIGNED","create_time_ms":5,"update_time_ms":6}"#;
        let permission_json = r#"{"identity_type":"USER","identity":"user","topic":"shop/#","permit_action":"PUB_SUB","effect":"DENY","create_time_ms":8,"update_time_ms":9}"#;
        let black_json = r#"{"client_id":"GID_shop@@@bad","create_time_ms":7}"#;
        let identity = crate::suite::custom_identity();
        let permission = crate::suite::custom_permission();
        let black = mqgate_auth::ConnectBlack {
            client_id: "GID_shop@@@bad".into(),
            create_time_ms: 7,
        };
        assert_eq!(serde_json::to_string(&identity).unwrap(), identity_json);
        assert_eq!(serde_json::to_string(&permission).unwrap(), permission_json);
        assert_eq!(serde_json::to_string(&black).unwrap(), black_json);
        assert_eq!(
            serde_json::from_str::<CustomIdentity>(identity_json).unwrap(),
            identity
        );
        assert_eq!(
            serde_json::from_str::<CustomPermission>(permission_json).unwrap(),
            permission
        );

        // And through a store: what goes in comes back out.
        let store = crate::MemoryStore::new();
        store
            .apply(&[
                Op::PutGroup(group.clone()),
                Op::PutToken(token.clone()),
                Op::PutDeviceCredential(credential.clone()),
            ])
            .unwrap();
        assert_eq!(store.load_groups().unwrap(), [group]);
        assert_eq!(store.load_tokens().unwrap(), [token]);
        assert_eq!(store.load_device_credentials().unwrap(), [credential]);
    }
}
