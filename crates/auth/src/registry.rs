//! Where groups, tokens, device credentials and the custom rules live: a trait the broker's
//! durable store implements, and an in-memory implementation.

use std::fmt;
use std::sync::Arc;

use hashbrown::HashMap;
use parking_lot::RwLock;

use crate::custom::{ConnectBlack, CustomIdentity, CustomPermission, IdentityKey, PermissionKey};
use crate::{DeviceCredential, GroupRecord, TokenRecord};

/// A registry backend failed (the in-memory one never does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The storage behind the registry could not be read or written; the
    /// text says why, for the log.
    #[error("registry storage failed: {0}")]
    Storage(String),
}

/// Storage for groups, tokens, device credentials, and the custom identities, permissions
/// and connect blacklist.
///
/// Methods take `&self`: the broker shares one registry between every
/// connection task, so implementations synchronise internally. Every method
/// may fail so that a durable backend can report I/O errors.
pub trait Registry: Send + Sync {
    /// The group named `group_id`, if registered.
    fn group(&self, group_id: &str) -> Result<Option<GroupRecord>, RegistryError>;
    /// Registers or replaces a group.
    fn put_group(&self, group: GroupRecord) -> Result<(), RegistryError>;
    /// Removes a group, returning it if it existed.
    fn remove_group(&self, group_id: &str) -> Result<Option<GroupRecord>, RegistryError>;
    /// Every registered group, in no particular order.
    fn groups(&self) -> Result<Vec<GroupRecord>, RegistryError>;

    /// The token record for `token`, valid or not.
    fn token(&self, token: &str) -> Result<Option<TokenRecord>, RegistryError>;
    /// Stores or replaces a token record.
    fn put_token(&self, record: TokenRecord) -> Result<(), RegistryError>;
    /// Forgets a token entirely (revoking keeps it; see [`TokenRecord::revoked`]).
    fn remove_token(&self, token: &str) -> Result<Option<TokenRecord>, RegistryError>;

    /// The device credential of `client_id`, if any.
    fn device_credential(&self, client_id: &str)
        -> Result<Option<DeviceCredential>, RegistryError>;
    /// Stores or replaces the credential of `record.client_id`.
    fn put_device_credential(&self, record: DeviceCredential) -> Result<(), RegistryError>;
    /// Removes the credential of `client_id`, returning it if it existed.
    fn remove_device_credential(
        &self,
        client_id: &str,
    ) -> Result<Option<DeviceCredential>, RegistryError>;
    /// Client ids that have a device credential, sorted.
    fn device_client_ids(&self) -> Result<Vec<String>, RegistryError>;

    /// Every custom identity, in no particular order.
    fn custom_identities(&self) -> Result<Vec<CustomIdentity>, RegistryError>;
    /// Stores or replaces the custom identity of `identity.key()`.
    fn put_custom_identity(&self, identity: CustomIdentity) -> Result<(), RegistryError>;
    /// Removes the custom identity of `key`, returning it if it existed.
    fn remove_custom_identity(
        &self,
        key: &IdentityKey,
    ) -> Result<Option<CustomIdentity>, RegistryError>;

    /// Every custom permission, in no particular order.
    fn custom_permissions(&self) -> Result<Vec<CustomPermission>, RegistryError>;
    /// Stores or replaces the custom permission of `permission.key()`.
    fn put_custom_permission(&self, permission: CustomPermission) -> Result<(), RegistryError>;
    /// Removes the custom permission of `key`, returning it if it existed.
    fn remove_custom_permission(
        &self,
        key: &PermissionKey,
    ) -> Result<Option<CustomPermission>, RegistryError>;

    /// Every client id on the connect blacklist, in no particular order.
    fn connect_blacklist(&self) -> Result<Vec<ConnectBlack>, RegistryError>;
    /// Puts `record.client_id` on the connect blacklist.
    fn put_connect_black(&self, record: ConnectBlack) -> Result<(), RegistryError>;
    /// Takes `client_id` off the connect blacklist, returning its entry if it was there.
    fn remove_connect_black(&self, client_id: &str) -> Result<Option<ConnectBlack>, RegistryError>;
}

/// A [`Registry`] in memory, behind read-write locks. Never fails.
///
/// ```
/// use mqgate_auth::{GroupRecord, InMemoryRegistry, Registry};
/// let registry = InMemoryRegistry::new();
/// registry.put_group(GroupRecord::new("GID_shop", 0))?;
/// assert!(registry.group("GID_shop")?.is_some());
/// # Ok::<(), mqgate_auth::RegistryError>(())
/// ```
#[derive(Default)]
pub struct InMemoryRegistry {
    groups: RwLock<HashMap<String, GroupRecord>>,
    tokens: RwLock<HashMap<String, TokenRecord>>,
    devices: RwLock<HashMap<String, DeviceCredential>>,
    identities: RwLock<HashMap<IdentityKey, CustomIdentity>>,
    permissions: RwLock<HashMap<PermissionKey, CustomPermission>>,
    blacklist: RwLock<HashMap<String, ConnectBlack>>,
}

/// Counts only: tokens and device secrets stay out of logs.
impl fmt::Debug for InMemoryRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryRegistry")
            .field("groups", &self.groups.read().len())
            .field("tokens", &self.tokens.read().len())
            .field("device_credentials", &self.devices.read().len())
            .field("custom_identities", &self.identities.read().len())
            .field("custom_permissions", &self.permissions.read().len())
            .field("connect_blacklist", &self.blacklist.read().len())
            .finish()
    }
}

impl InMemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops token records that expired before `before_ms`, so that memory
    /// does not grow with every token ever issued. Returns how many went.
    pub fn purge_tokens_expired_before(&self, before_ms: u64) -> usize {
        let mut tokens = self.tokens.write();
        let count = tokens.len();
        tokens.retain(|_, record| record.expire_time_ms >= before_ms);
        count.saturating_sub(tokens.len())
    }
}

impl Registry for InMemoryRegistry {
    fn group(&self, group_id: &str) -> Result<Option<GroupRecord>, RegistryError> {
        Ok(self.groups.read().get(group_id).cloned())
    }
    fn put_group(&self, group: GroupRecord) -> Result<(), RegistryError> {
        self.groups.write().insert(group.group_id.clone(), group);
        Ok(())
    }
    fn remove_group(&self, group_id: &str) -> Result<Option<GroupRecord>, RegistryError> {
        Ok(self.groups.write().remove(group_id))
    }
    fn groups(&self) -> Result<Vec<GroupRecord>, RegistryError> {
        Ok(self.groups.read().values().cloned().collect())
    }

    fn token(&self, token: &str) -> Result<Option<TokenRecord>, RegistryError> {
        Ok(self.tokens.read().get(token).cloned())
    }
    fn put_token(&self, record: TokenRecord) -> Result<(), RegistryError> {
        self.tokens.write().insert(record.token.clone(), record);
        Ok(())
    }
    fn remove_token(&self, token: &str) -> Result<Option<TokenRecord>, RegistryError> {
        Ok(self.tokens.write().remove(token))
    }

    fn device_credential(
        &self,
        client_id: &str,
    ) -> Result<Option<DeviceCredential>, RegistryError> {
        Ok(self.devices.read().get(client_id).cloned())
    }
    fn put_device_credential(&self, record: DeviceCredential) -> Result<(), RegistryError> {
        self.devices
            .write()
            .insert(record.client_id.clone(), record);
        Ok(())
    }
    fn remove_device_credential(
        &self,
        client_id: &str,
    ) -> Result<Option<DeviceCredential>, RegistryError> {
        Ok(self.devices.write().remove(client_id))
    }
    fn device_client_ids(&self) -> Result<Vec<String>, RegistryError> {
        let mut ids: Vec<String> = self.devices.read().keys().cloned().collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn custom_identities(&self) -> Result<Vec<CustomIdentity>, RegistryError> {
        Ok(self.identities.read().values().cloned().collect())
    }
    fn put_custom_identity(&self, identity: CustomIdentity) -> Result<(), RegistryError> {
        self.identities.write().insert(identity.key(), identity);
        Ok(())
    }
    fn remove_custom_identity(
        &self,
        key: &IdentityKey,
    ) -> Result<Option<CustomIdentity>, RegistryError> {
        Ok(self.identities.write().remove(key))
    }
    fn custom_permissions(&self) -> Result<Vec<CustomPermission>, RegistryError> {
        Ok(self.permissions.read().values().cloned().collect())
    }
    fn put_custom_permission(&self, permission: CustomPermission) -> Result<(), RegistryError> {
        self.permissions
            .write()
            .insert(permission.key(), permission);
        Ok(())
    }
    fn remove_custom_permission(
        &self,
        key: &PermissionKey,
    ) -> Result<Option<CustomPermission>, RegistryError> {
        Ok(self.permissions.write().remove(key))
    }
    fn connect_blacklist(&self) -> Result<Vec<ConnectBlack>, RegistryError> {
        Ok(self.blacklist.read().values().cloned().collect())
    }
    fn put_connect_black(&self, record: ConnectBlack) -> Result<(), RegistryError> {
        self.blacklist
            .write()
            .insert(record.client_id.clone(), record);
        Ok(())
    }
    fn remove_connect_black(&self, client_id: &str) -> Result<Option<ConnectBlack>, RegistryError> {
        Ok(self.blacklist.write().remove(client_id))
    }
}

/// Shares one registry between an [`Authenticator`](crate::Authenticator)
/// and the rest of the broker.
impl<R: Registry + ?Sized> Registry for Arc<R> {
    fn group(&self, group_id: &str) -> Result<Option<GroupRecord>, RegistryError> {
        (**self).group(group_id)
    }
    fn put_group(&self, group: GroupRecord) -> Result<(), RegistryError> {
        (**self).put_group(group)
    }
    fn remove_group(&self, group_id: &str) -> Result<Option<GroupRecord>, RegistryError> {
        (**self).remove_group(group_id)
    }
    fn groups(&self) -> Result<Vec<GroupRecord>, RegistryError> {
        (**self).groups()
    }
    fn token(&self, token: &str) -> Result<Option<TokenRecord>, RegistryError> {
        (**self).token(token)
    }
    fn put_token(&self, record: TokenRecord) -> Result<(), RegistryError> {
        (**self).put_token(record)
    }
    fn remove_token(&self, token: &str) -> Result<Option<TokenRecord>, RegistryError> {
        (**self).remove_token(token)
    }
    fn device_credential(
        &self,
        client_id: &str,
    ) -> Result<Option<DeviceCredential>, RegistryError> {
        (**self).device_credential(client_id)
    }
    fn put_device_credential(&self, record: DeviceCredential) -> Result<(), RegistryError> {
        (**self).put_device_credential(record)
    }
    fn remove_device_credential(
        &self,
        client_id: &str,
    ) -> Result<Option<DeviceCredential>, RegistryError> {
        (**self).remove_device_credential(client_id)
    }
    fn device_client_ids(&self) -> Result<Vec<String>, RegistryError> {
        (**self).device_client_ids()
    }
    fn custom_identities(&self) -> Result<Vec<CustomIdentity>, RegistryError> {
        (**self).custom_identities()
    }
    fn put_custom_identity(&self, identity: CustomIdentity) -> Result<(), RegistryError> {
        (**self).put_custom_identity(identity)
    }
    fn remove_custom_identity(
        &self,
        key: &IdentityKey,
    ) -> Result<Option<CustomIdentity>, RegistryError> {
        (**self).remove_custom_identity(key)
    }
    fn custom_permissions(&self) -> Result<Vec<CustomPermission>, RegistryError> {
        (**self).custom_permissions()
    }
    fn put_custom_permission(&self, permission: CustomPermission) -> Result<(), RegistryError> {
        (**self).put_custom_permission(permission)
    }
    fn remove_custom_permission(
        &self,
        key: &PermissionKey,
    ) -> Result<Option<CustomPermission>, RegistryError> {
        (**self).remove_custom_permission(key)
    }
    fn connect_blacklist(&self) -> Result<Vec<ConnectBlack>, RegistryError> {
        (**self).connect_blacklist()
    }
    fn put_connect_black(&self, record: ConnectBlack) -> Result<(), RegistryError> {
        (**self).put_connect_black(record)
    }
    fn remove_connect_black(&self, client_id: &str) -> Result<Option<ConnectBlack>, RegistryError> {
        (**self).remove_connect_black(client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenActions;

    #[test]
    fn records_round_trip_through_json() {
        let token = TokenRecord {
            token: "t".into(),
            access_key_id: "AK".into(),
            instance_id: "i".into(),
            resources: vec!["a/#".into()],
            actions: TokenActions::ReadWrite,
            create_time_ms: 1,
            expire_time_ms: 2,
            revoked: false,
        };
        let json = serde_json::to_string(&token).unwrap();
        assert!(json.contains("\"R,W\""), "{json}");
        assert_eq!(serde_json::from_str::<TokenRecord>(&json).unwrap(), token);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let registry = InMemoryRegistry::new();
        let credential = DeviceCredential {
            client_id: "GID_a@@@d".into(),
            instance_id: "i".into(),
            device_access_key_id: "key-id".into(),
            device_access_key_secret: "very-secret".into(),
            create_time_ms: 0,
            update_time_ms: 0,
        };
        registry.put_device_credential(credential.clone()).unwrap();
        for text in [format!("{credential:?}"), format!("{registry:?}")] {
            assert!(!text.contains("very-secret"), "{text}");
        }
        assert!(format!("{credential:?}").contains("key-id"));
    }

    #[test]
    fn token_validity() {
        let mut token: TokenRecord = serde_json::from_str(
            r#"{"token":"t","access_key_id":"AK","instance_id":"i","resources":[],
                "actions":"R","create_time_ms":0,"expire_time_ms":100,"revoked":false}"#,
        )
        .unwrap();
        assert!(token.is_valid(99));
        assert!(!token.is_valid(100));
        token.revoked = true;
        assert!(!token.is_valid(0));
    }

    #[test]
    fn purge_drops_only_long_expired_tokens() {
        let registry = InMemoryRegistry::new();
        for (name, expiry) in [("old", 10), ("new", 1_000)] {
            registry
                .put_token(TokenRecord {
                    token: name.into(),
                    access_key_id: "AK".into(),
                    instance_id: "i".into(),
                    resources: vec![],
                    actions: TokenActions::Read,
                    create_time_ms: 0,
                    expire_time_ms: expiry,
                    revoked: false,
                })
                .unwrap();
        }
        assert_eq!(registry.purge_tokens_expired_before(500), 1);
        assert!(registry.token("old").unwrap().is_none());
        assert!(registry.token("new").unwrap().is_some());
    }
}
