//! Device credentials ("one device, one secret"): register, get, refresh,
//! unregister, list.

use crate::manage::random_text;
use crate::{Authenticator, DeviceCredential, ManageError, Registry};

/// Random bytes in a DeviceAccessKeyId (public, but still unguessable).
const KEY_ID_RANDOM_BYTES: usize = 18;
/// Random bytes in a DeviceAccessKeySecret (256 bits).
const SECRET_RANDOM_BYTES: usize = 32;

impl<R: Registry> Authenticator<R> {
    /// Registers a credential for `client_id` (whose group must be
    /// registered) at `now_ms`. If it already has one, that one is returned
    /// unchanged, so retrying a registration is harmless.
    ///
    /// ```
    /// use mqgate_auth::*;
    /// let registry = InMemoryRegistry::new();
    /// registry.put_group(GroupRecord::new("GID_a", 0))?;
    /// let auth = Authenticator::new(AuthConfig::new("inst"), registry);
    /// let credential = auth.register_device_credential("GID_a@@@d1", 1_000)?;
    /// let username = format!("DeviceCredential|{}|inst", credential.device_access_key_id);
    /// let password = sign_client_id(&credential.device_access_key_secret, "GID_a@@@d1");
    /// assert!(auth.authenticate("GID_a@@@d1", Some(&username), Some(password.as_bytes()), 2_000).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn register_device_credential(
        &self,
        client_id: &str,
        now_ms: u64,
    ) -> Result<DeviceCredential, ManageError> {
        self.require_registered_group(client_id)?;
        if let Some(existing) = self.registry.device_credential(client_id)? {
            return Ok(existing);
        }
        let credential = DeviceCredential {
            client_id: client_id.to_owned(),
            instance_id: self.config.instance_id.clone(),
            device_access_key_id: random_text(KEY_ID_RANDOM_BYTES)?,
            device_access_key_secret: random_text(SECRET_RANDOM_BYTES)?,
            create_time_ms: now_ms,
            update_time_ms: now_ms,
        };
        self.registry.put_device_credential(credential.clone())?;
        Ok(credential)
    }

    /// The credential of `client_id`.
    pub fn device_credential(&self, client_id: &str) -> Result<DeviceCredential, ManageError> {
        self.registry
            .device_credential(client_id)?
            .ok_or_else(|| ManageError::UnknownDeviceCredential(client_id.to_owned()))
    }

    /// Gives `client_id` a new secret at `now_ms`; the old one stops working
    /// at once. The DeviceAccessKeyId stays.
    pub fn refresh_device_credential(
        &self,
        client_id: &str,
        now_ms: u64,
    ) -> Result<DeviceCredential, ManageError> {
        let mut credential = self.device_credential(client_id)?;
        credential.device_access_key_secret = random_text(SECRET_RANDOM_BYTES)?;
        credential.update_time_ms = now_ms;
        self.registry.put_device_credential(credential.clone())?;
        Ok(credential)
    }

    /// Removes the credential of `client_id`, returning it.
    pub fn unregister_device_credential(
        &self,
        client_id: &str,
    ) -> Result<DeviceCredential, ManageError> {
        self.registry
            .remove_device_credential(client_id)?
            .ok_or_else(|| ManageError::UnknownDeviceCredential(client_id.to_owned()))
    }

    /// The client ids that have a credential, sorted.
    pub fn device_credential_client_ids(&self) -> Result<Vec<String>, ManageError> {
        Ok(self.registry.device_client_ids()?)
    }
}
